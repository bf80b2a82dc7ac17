"""``sgdsai bench memory``: state counted on ``meta`` equals state allocated for real."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

pytest.importorskip("transformers")
from sgdsai_lab import zoo
from sgdsai_lab.bench import memory

TINY = ("GPT2Config", dict(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2), (16, 2))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(memory.MODELS, "tiny", TINY)
    return "tiny"


def real_state_bytes(name: str, opt_name: str) -> dict:
    """The same model allocated on the CPU and stepped with a real gradient."""
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(transformers.GPT2Config(**TINY[1]))
    named = list(model.named_parameters())
    opt = memory.candidates(name)[opt_name](named)
    model(torch.randint(64, (2, 8)), labels=torch.randint(64, (2, 8))).loss.backward()
    opt.step()
    return zoo.state_breakdown(opt, torch.device("cpu"))


@pytest.mark.parametrize("opt_name", ["sgdsai", "sgdsai bf16 momentum", "adamw", "sgd-momentum", "adam-mini"])
def test_meta_count_matches_real_allocation(tiny: str, opt_name: str) -> None:
    if opt_name == "adam-mini":
        pytest.importorskip("adam_mini")
    counted = memory.measure(memory.build_meta(tiny), memory.candidates(tiny)[opt_name])
    real = real_state_bytes(tiny, opt_name)
    assert (counted["total"], counted["per_key"]) == (real["total"], real["per_key"])


@pytest.mark.parametrize(
    ("opt_name", "buffers"), [("sgdsai", 1), ("sgdsai bf16 momentum", 0.5), ("sgd-momentum", 1), ("adamw", 2)]
)
def test_state_is_buffers_per_param_plus_a_scalar_per_tensor(tiny: str, opt_name: str, buffers: int) -> None:
    model = memory.build_meta(tiny)
    params = list(model.parameters())
    got = memory.measure(model, memory.candidates(tiny)[opt_name])
    scalars = 0 if opt_name == "sgd-momentum" else 4 * len(params)  # gsnr / step: one float32 per tensor
    assert got["device"] == buffers * sum(p.numel() * 4 for p in params)
    assert got["host"] == scalars


def test_run_writes_record_plot_and_table(tiny: str, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    memory.run(argparse.Namespace(models=[tiny], out=tmp_path))
    (path,) = (tmp_path / "bench").glob("*.json")
    rec = json.loads(path.read_text())
    assert {r["optimizer"] for r in rec["results"]} >= {"sgdsai", "adamw", "sgd-momentum"}
    assert rec["git"]["sha"] is None or len(rec["git"]["sha"]) >= 40
    assert (tmp_path / "bench" / f"{path.stem}-memory.png").stat().st_size > 0
    table = memory.markdown(rec)
    assert table[2].startswith("| tiny |") and "GiB" in table[2]
