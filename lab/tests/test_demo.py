"""`sgdsai demo` trains all three optimizers and leaves records, a plot and a table behind."""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("transformers")
pytest.importorskip("matplotlib")
pytest.importorskip("sgd_sai")


def test_demo_writes_records_plot_and_summary_with_the_released_package_at_lr_over_m(tmp_path) -> None:
    from sgdsai_lab import demo

    args = argparse.Namespace(steps=3, sgdsai_lr=1.0, sgdsai_weight_decay=1e-4, adamw_lr=2e-3,
                              adamw_weight_decay=0.1, seed=0, out=tmp_path)  # fmt: skip
    assert demo.run(args) == 0
    records = {
        r["config"]["optimizer"]: r for r in (json.loads(p.read_text()) for p in tmp_path.rglob("*.json"))
    }
    assert set(records) == {"sgdsai", "adamw", "sgd-sai-1.0.3"}
    m = records["sgdsai"]["sgdsai_gsnr_max"]
    assert m > 1 and records["sgd-sai-1.0.3"]["config"]["lr"] == pytest.approx(1.0 / m)
    assert records["sgd-sai-1.0.3"]["config"]["weight_decay"] == pytest.approx(1e-4 * m)
    assert records["sgdsai"]["state_bytes"] * 2 == pytest.approx(records["adamw"]["state_bytes"], rel=1e-3)
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("\n| ") == 3 and "sgd-sai 1.0.3" in summary  # three rows under the header
    assert (tmp_path / "demo.png").stat().st_size > 10_000
