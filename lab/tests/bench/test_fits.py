"""``sgdsai bench fits``: a capped child either completes a training step or reports that it cannot."""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("transformers")
from sgdsai_lab.bench import fits, memory

TINY = ("GPT2Config", dict(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2), (16, 2))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(memory.MODELS, "tiny", TINY)
    return "tiny"


def test_generous_cap_fits_and_steps(tiny: str) -> None:
    report = fits.attempt("sgdsai", tiny, 64.0, 8)
    assert report["fits"], report
    assert len(report["losses"]) == 2
    tied = memory.build_meta(tiny)
    assert report["params"] == sum(p.numel() for p in tied.parameters())  # the output embedding stays tied


def test_cap_below_the_interpreter_is_a_clean_does_not_fit(tiny: str) -> None:
    report = fits.attempt("adamw", tiny, 0.05, 8)
    assert report["fits"] is False
    assert report["error"]


def test_run_writes_record_and_table(tiny: str, tmp_path) -> None:
    fits.run(argparse.Namespace(model=tiny, limit_gib=64.0, context=8, only=["sgd-momentum"], out=tmp_path))
    (path,) = (tmp_path / "bench").glob("*.json")
    rec = json.loads(path.read_text())
    assert rec["results"][0]["fits"]
    assert fits.markdown(rec)[2].startswith("| sgd-momentum | yes |")
