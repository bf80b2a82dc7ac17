"""A sweep runs its grid once: rerunning it trains nothing, and a killed run is redone alone."""

from __future__ import annotations

import dataclasses

import pytest

from sgdsai_lab import sweep
from sgdsai_lab.config import RunConfig, task_revision
from sgdsai_lab.run import record_path


def _record(config: RunConfig, **metrics) -> dict:
    """A valid run record carrying only ``metrics``, as a fake training run returns it."""
    return {"schema": 2, "kind": "run", "id": config.run_id, "group": config.task, "created_utc": "2026-01-01",
            "git": {}, "versions": {}, "machine": {}, "config": dataclasses.asdict(config.resolved()), "notes": "",
            "metrics": metrics, "loss_curve": [], "state_bytes": 0,
            "task_revision": task_revision(config.task)}  # fmt: skip


SETTINGS = {"task": "vit", "steps": 3, "data": "synthetic", "batch_size": 8, "preset": "test"}


def _configs():
    return sweep.grid(SETTINGS, ["sgdsai", "adamw"], {"sgdsai": [0.1], "adamw": [1e-3, 1e-2]},
                      {"sgdsai": [0.01], "adamw": [0.1]}, [0, 1])  # fmt: skip


def test_grid_is_every_combination_seed_major() -> None:
    configs = _configs()
    assert len(configs) == 6 and len({c.run_id for c in configs}) == 6
    assert [c.seed for c in configs] == [0, 0, 0, 1, 1, 1]


def test_sweep_resumes_without_redoing_finished_runs(tmp_path, monkeypatch) -> None:
    configs = _configs()[:3]
    assert sweep.run_sweep(configs, tmp_path) == (3, 0)
    mtimes = {c.run_id: record_path(c, tmp_path).stat().st_mtime_ns for c in configs}

    def no_training(*args, **kwargs):
        pytest.fail("a finished run was trained again")

    monkeypatch.setattr(sweep, "run", no_training)
    assert sweep.run_sweep(configs, tmp_path) == (0, 3)
    assert {c.run_id: record_path(c, tmp_path).stat().st_mtime_ns for c in configs} == mtimes

    killed = configs[1]
    record_path(killed, tmp_path).unlink()  # a run cut off before its atomic write left no record
    trained = []
    monkeypatch.setattr(sweep, "run", lambda config, *args: trained.append(config) or _record(config))
    assert sweep.run_sweep(configs, tmp_path) == (1, 2)
    assert trained == [killed]


def test_best_seeds_run_at_each_optimizers_best_grid_point(tmp_path, monkeypatch) -> None:
    configs = _configs()[:3]  # seed 0: sgdsai lr 0.1; adamw lr 1e-3 and 1e-2
    accuracy = {1e-3: 0.2, 1e-2: 0.7, 0.1: 0.5}

    def fake_run(config, *args):
        return _record(config, diverged=False, val_accuracy=accuracy[config.lr])

    monkeypatch.setattr(sweep, "run", fake_run)
    assert sweep.best_seed_configs(configs, tmp_path, "val_accuracy", [1, 2]) == []  # grid not run yet
    sweep.run_sweep(configs, tmp_path)
    extra = sweep.best_seed_configs(configs, tmp_path, "val_accuracy", [1, 2])
    assert sorted((c.optimizer, c.lr, c.seed) for c in extra) == [
        ("adamw", 1e-2, 1), ("adamw", 1e-2, 2), ("sgdsai", 0.1, 1), ("sgdsai", 0.1, 2)
    ]  # fmt: skip
    by_loss = sweep.best_points(configs, tmp_path, "val_loss")  # no val_loss: every run counts as worst
    assert set(by_loss) == {"sgdsai", "adamw"}


def test_grid_extends_past_an_edge_until_the_best_is_bracketed(tmp_path, monkeypatch) -> None:
    """A loss that falls until lr 10 then diverges: the grid (0.316, 1, 3.16) grows by one
    lattice step at a time, to 10 and then 31.6 (diverged, which brackets 10), and stops."""
    configs = sweep.grid(SETTINGS, ["sgdsai"], {"sgdsai": [0.316, 1.0, 3.16]}, {"sgdsai": [1e-4]}, [0])

    def fake_run(config, *args):
        diverged = config.lr > 20
        return _record(config, diverged=diverged, val_loss=None if diverged else 1 / config.lr)

    monkeypatch.setattr(sweep, "run", fake_run)
    sweep.run_sweep(configs, tmp_path)
    added = []
    for _ in range(5):
        more = sweep.extension(configs, tmp_path, "val_loss")
        if not more:
            break
        added += [c.lr for c in more]
        configs = [*configs, *more]
        sweep.run_sweep(more, tmp_path)
    assert added == [10.0, 31.6]
    assert sweep.best_points(configs, tmp_path, "val_loss")["sgdsai"].lr == 10.0


def test_grid_extends_downwards_when_the_smallest_lr_is_best(tmp_path, monkeypatch) -> None:
    configs = sweep.grid(SETTINGS, ["adamw"], {"adamw": [3.16e-4, 1e-3, 3.16e-3]}, {"adamw": [0.1]}, [0])
    monkeypatch.setattr(sweep, "run", lambda c, *args: _record(c, diverged=False, val_loss=c.lr))
    sweep.run_sweep(configs, tmp_path)
    assert [c.lr for c in sweep.extension(configs, tmp_path, "val_loss")] == [1e-4]


#: the next lrs the study presets' grids took before the extension came from stats.bracket:
#: optimizer -> (past the top edge, past the bottom edge)
STUDY_NEXT = {"sgdsai": (10.0, 0.1), "adamw": (0.01, 0.0001), "nesterov": (1.0, 0.01), "muon": (0.01, 0.0001),
              "sgdsai-numel": (10.0, 0.1), "sgdsai-blocks-m": (10.0, 0.1), "sgdsai-m0": (10.0, 0.1)}  # fmt: skip
#: where a preset centres an optimizer elsewhere (study-a16: Muon on AdamW's best there, 1e-2, and
#: sgdsai-vec1 on sgdsai's, 3.16)
STUDY_NEXT_IN = {"study-a16": {"muon": (0.1, 0.001), "sgdsai-vec1": (31.6, 0.316)}}


@pytest.mark.parametrize("name", ["study-a16", "study-a128"])
@pytest.mark.parametrize("best", ["top", "bottom"])
def test_the_study_grids_extend_to_the_same_next_lrs_as_before(tmp_path, monkeypatch, name, best) -> None:
    from sgdsai_lab import presets

    preset = presets.find(name)
    settings = {"task": "vit", "steps": 3, "data": "synthetic", "preset": "test"}
    configs = sweep.grid(settings, list(preset.grid), *({o: g[i] for o, g in preset.grid.items()} for i in (0, 1)),
                         [0])  # fmt: skip
    loss = (lambda lr: 1 / lr) if best == "top" else (lambda lr: lr)
    monkeypatch.setattr(sweep, "run", lambda c, *args: _record(c, diverged=False, val_loss=loss(c.lr)))
    sweep.run_sweep(configs, tmp_path)
    found = {c.optimizer: c.lr for c in sweep.extension(configs, tmp_path, preset.metric)}
    next_lrs = STUDY_NEXT | STUDY_NEXT_IN.get(name, {})
    assert found == {o: next_lrs[o][best == "bottom"] for o in preset.grid}
    assert (
        STUDY_NEXT["sgdsai"] == (10.0, 0.1) and STUDY_NEXT["adamw"][0] == 0.01
    )  # the brief's 3.16, 0.316, 0.00316
