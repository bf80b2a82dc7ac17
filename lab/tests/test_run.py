"""A training run writes one complete, valid JSON record; schedule and batches are as documented."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import pytest
import torch

from sgdsai_lab import records
from sgdsai_lab.cli import main
from sgdsai_lab.config import RunConfig
from sgdsai_lab.run import lr_factor, record_path, run
from sgdsai_lab.tasks import build_task


def test_train_cli_writes_a_valid_record(tmp_path) -> None:
    argv = ["train", "gpt2", "--data", "synthetic", "--optimizer", "sgdsai", "--lr", "0.1", "--steps", "6",
            "--gsnr-every", "2", "--batch-size", "4", "--records", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    (path,) = (tmp_path / "gpt2").glob("*.json")
    record = json.loads(path.read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN/Infinity
    assert record["config"]["optimizer"] == "sgdsai" and record["config"]["steps"] == 6
    assert record["preset"] == "cli"
    assert [s for s, _, _ in record["loss_curve"]] == list(range(6))
    assert all(math.isfinite(v) for _, v, _ in record["loss_curve"])
    assert record["gsnr_trace"]["steps"] == [0, 2, 4]
    assert all(len(v) == 3 for v in record["gsnr_trace"]["tensors"].values())
    assert math.isfinite(record["metrics"]["val_loss"]) and not record["metrics"]["diverged"]
    assert record["versions"]["torch"] == torch.__version__
    assert record["machine"]["device"] == "cpu" and record["wall_clock_s"] > 0
    assert record["state_bytes"] > 0 and record["sgdsai_scales"]
    assert "sha" in record["git"]
    assert path == record_path(RunConfig(**record["config"]), tmp_path)


def test_a_composite_with_an_sgdsai_part_records_that_parts_scales_and_m() -> None:
    record = run(RunConfig("gpt2", "sgdsai-vec1", 0.1, 0.0, 2, data="synthetic", batch_size=4))
    plain = run(RunConfig("gpt2", "sgdsai", 0.1, 0.0, 2, data="synthetic", batch_size=4))
    matrices = {n: v for n, v in plain["sgdsai_scales"].items() if n in record["sgdsai_scales"]}
    assert record["sgdsai_scales"] == matrices and len(matrices) < len(plain["sgdsai_scales"])  # no vectors
    assert record["sgdsai_gsnr_max"] == plain["sgdsai_gsnr_max"] > 0
    assert (
        run(RunConfig("vit", "muon", 1e-3, 0.0, 1, data="synthetic", batch_size=8))["sgdsai_scales"] is None
    )


def test_divergence_is_recorded_not_raised() -> None:
    config = RunConfig("vit", "sgdm", 1e12, 0.0, 5, data="synthetic", batch_size=8)
    record = run(config)
    assert record["metrics"]["diverged"]
    assert record["metrics"]["final_train_loss"] is None
    assert record["eval_correct"] is None  # nothing was evaluated
    json.dumps(record, allow_nan=False)


def test_a_classification_record_holds_its_final_outcomes_example_by_example() -> None:
    record = run(RunConfig("vit", "sgdsai", 0.3, 0.0, 3, data="synthetic", batch_size=8))
    assert set(record["eval_digests"]) == set(record["eval_sizes"])
    for split, m in record["eval_sizes"].items():
        flags = records.unpack_flags(record["eval_correct"][split], m)
        assert sum(flags) / m == pytest.approx(record["metrics"][f"{split}_accuracy"], abs=1e-6)


def test_lr_schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor() -> None:
    factors = [lr_factor(t, 100, 10, 0.1) for t in range(101)]
    assert factors[:10] == pytest.approx([(t + 1) / 10 for t in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert factors[55] == pytest.approx(0.55)  # half way through the cosine: (1 + r) / 2
    assert factors[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))


@pytest.mark.parametrize("task", ["gpt2", "vit", "lora", "lora-cls", "cnn"])
def test_batches_depend_on_seed_and_step_only(task: str) -> None:
    a, b, c = (build_task(task, "synthetic", "tiny", seed, batch_size=4) for seed in (0, 0, 1))
    for step in (0, 7, 3):
        xa, xb, xc = (torch.cat([t.reshape(-1) for t in (x if isinstance(x, tuple) else (x,))]) for x in
                      (a.batch(step), b.batch(step), c.batch(step)))  # fmt: skip
        assert torch.equal(xa, xb) and not torch.equal(xa, xc)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_run_id_changes_with_every_field() -> None:
    base = RunConfig("gpt2", "sgdsai", 0.1, 0.01, 10, data="synthetic")
    changed = {"optimizer": "adamw", "lr": 0.2, "weight_decay": 0.0, "steps": 11, "seed": 1, "size": "small",
               "batch_size": 3, "warmup_ratio": 0.2, "min_lr_ratio": 0.0, "grad_clip": 1.0, "eval_every": 5,
               "gsnr_every": 3, "preset": "x", "data": "stdlib"}  # fmt: skip
    assert set(changed) == {f.name for f in dataclasses.fields(RunConfig)} - {"task"}
    ids = {dataclasses.replace(base, **{k: v}).run_id for k, v in changed.items()}
    assert len(ids) == len(changed) and base.run_id not in ids
    assert (
        RunConfig("gpt2", "sgdsai", 0.1, 0.01, 10).run_id
        == RunConfig("gpt2", "sgdsai", 0.1, 0.01, 10, data="stdlib").run_id
    )  # the default dataset is resolved
