"""The report is made from records alone: tables pick the best lr per optimizer, plots are written."""

from __future__ import annotations

import json

from sgdsai.experiments.report import load_records, render


def _record(optimizer: str, lr: float, val: float | None, seed: int = 0, state: int = 100) -> dict:
    diverged = val is None
    return {
        "schema": 1,
        "run_id": f"{optimizer}-{lr}-{seed}",
        "preset": "quick",
        "config": {
            "task": "gpt2",
            "data": "stdlib",
            "size": "tiny",
            "steps": 4,
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": 0.1,
            "seed": seed,
        },
        "task_description": "GPT-2 tiny",
        "versions": {"torch": "x"},
        "git": {"sha": "abc"},
        "machine": {"platform": "p", "torch_threads": 2, "device": "cpu"},
        "metrics": {
            "diverged": diverged,
            "val_loss": val,
            "final_train_loss": None if diverged else val + 0.1,
        },
        "state_bytes": state,
        "param_bytes": 100,
        "median_step_ms": 1.0,
        "loss_curve": [[0, 5.0, lr], [1, 4.0, lr], [2, None if diverged else 3.0, lr]],
        "gsnr_trace": {"steps": [0, 2], "tensors": {"w": [10.0, 11.0], "b": [None, None]}},
    }


def test_report_renders_from_records_only(tmp_path) -> None:
    records = tmp_path / "records"
    (records / "gpt2").mkdir(parents=True)
    runs = [
        _record("sgdsai", 0.1, 3.0, state=100),
        _record("sgdsai", 0.3, None),
        _record("adamw", 1e-3, 3.2, state=200),
        _record("adamw", 1e-2, 3.1, state=200),
        _record("adamw", 1e-2, 3.2, seed=1, state=200),
    ]
    for r in runs:
        (records / "gpt2" / f"{r['run_id']}.json").write_text(json.dumps(r))
    (records / "unrelated.json").write_text(json.dumps({"not": "a run"}))
    loaded = load_records(records)
    assert len(loaded) == 5

    path = render(loaded, tmp_path / "out")
    text = path.read_text()
    assert "| sgdsai | 0.1 | 0.1 | 1 | 3.0000 |" in text  # best sgdsai lr; the diverged lr is not chosen
    assert "| adamw | 0.01 | 0.1 | 2 | 3.1500 ± 0.0707 |" in text  # two-seed mean beats 3.2 at lr 1e-3
    assert "| 50.0% |" in text  # state relative to AdamW
    assert "| sgdsai | 0.3 | 0.1 | 1 | 1 | diverged |" in text
    assert "| `w` | 10.0 | 11.0 | 1.100 | 0.909 |" in text
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == [
        "gpt2-stdlib-tiny-4-quick-gsnr.png",
        "gpt2-stdlib-tiny-4-quick-loss.png",
        "gpt2-stdlib-tiny-4-quick-lr.png",
    ]
    assert all(f"]({name})" in text for name in pngs)
