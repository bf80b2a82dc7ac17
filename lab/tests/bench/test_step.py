"""``sgdsai bench step`` and ``sgdsai bench table``: shapes, summary arithmetic, record, table."""

from __future__ import annotations

import argparse
import math

import pytest

from sgdsai_lab import records
from sgdsai_lab.bench import step, table


def test_gpt2_shapes_have_gpt2_small_parameter_count() -> None:
    shapes = step.gpt2_shapes(*step.MODELS["gpt2-124m"])
    numel = sum(math.prod(shape) for _, shape in shapes)
    assert numel == 124_439_808  # GPT2LMHeadModel("gpt2"), tied output embedding
    assert len(shapes) == 2 + 12 * 12 + 2


def test_summary_ratios_and_floor() -> None:
    times = {"probe": [1.0, 2.0, 3.0], "adamw fused": [4.0, 5.0, 6.0], "sgdsai single": [2.0, 2.5, 9.0]}
    kinds = {"probe": "probe", "adamw fused": "adamw", "sgdsai single": "sgdsai"}
    out = step.summarize(times, {"sgdsai single": 7.0}, kinds, numel=10)
    rows = out["candidates"]
    assert out["probe_bandwidth_gb_s"] == pytest.approx(12 * 10 / 2.0 / 1e9)
    assert rows["adamw fused"]["over_reference"] == 1.0
    assert rows["sgdsai single"]["over_reference"] == pytest.approx(2.5 / 5.0)
    assert rows["sgdsai single"]["min_over_reference"] == pytest.approx(2.0 / 4.0)
    # floor: 20 bytes per element at the probe's bandwidth (12 bytes per element in 2 s)
    assert rows["sgdsai single"]["over_floor"] == pytest.approx(2.5 / (20 * 2.0 / 12))
    assert rows["sgdsai single"]["first_step_ms"] == 7000.0


def test_run_writes_record_and_table_renders_it(monkeypatch, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    monkeypatch.setitem(step.MODELS, "tiny", (8, 1))
    only = ["sgdsai single", "sgdsai foreach", "adamw fused"]
    args = argparse.Namespace(
        model="tiny",
        rounds=2,
        steps=1,
        warmup=0,
        only=only,
        device="cpu",
        threads=None,
        note="test",
        out=tmp_path,
        plot=True,
    )
    step.run(args)
    (path,) = (tmp_path / "bench").glob("*.json")
    rec = records.read(path).to_dict()
    assert set(rec["results"]["candidates"]) == {"probe", "g-SNR pass", *only}
    assert all(len(r["samples_ms"]) == 2 for r in rec["results"]["candidates"].values())
    assert (tmp_path / "bench" / f"{path.stem}-step.png").stat().st_size > 0
    text = table.render(tmp_path)
    assert "| sgdsai single |" in text and path.stem in text and "test" in text
    step.run(args)  # a rerun of the same benchmark supersedes the first in the README's table
    newer = sorted((tmp_path / "bench").glob("*.json"))[-1]  # the rerun gets the suffixed id
    assert table.render(tmp_path).count("Record [") == 2
    latest = table.render(tmp_path, latest=True)
    assert latest.count("Record [") == 1 and newer.stem in latest


def test_records_are_never_overwritten(tmp_path) -> None:
    first = records.write(records.bench_record("x", {}, [1], root=tmp_path), tmp_path)
    second = records.write(records.bench_record("x", {}, [2], root=tmp_path), tmp_path)
    assert first != second
    assert records.read(first).body["results"] == [1] and records.read(second).body["results"] == [2]


def test_figure1_plots_state_and_step_time_from_the_records(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from pathlib import Path

    records = Path(__file__).parents[3] / "experiments" / "records"
    assert table.figure(records, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    assert not table.figure(tmp_path / "empty", tmp_path / "none.png")  # no records: nothing drawn


def test_no_plot_writes_the_record_without_a_plot(monkeypatch, tmp_path) -> None:
    pytest.importorskip("tqdm")
    monkeypatch.setitem(step.MODELS, "tiny", (8, 1))
    parser = argparse.ArgumentParser()
    step.register(parser.add_subparsers())
    args = parser.parse_args(
        ["step", "--model", "tiny", "--rounds", "1", "--warmup", "0", "--only", "sgdsai single", "--out",
         str(tmp_path), "--no-plot"]
    )  # fmt: skip
    args.run(args)
    (path,) = (tmp_path / "bench").iterdir()
    assert path.suffix == ".json" and records.read(path).body["name"] == "step_tiny_cpu"
