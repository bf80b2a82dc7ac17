"""The analysis layer: settings are problems, not presets; best cells chosen on validation as the sweep chose
them and reported on test; grid statistics, curve lags."""

from __future__ import annotations

import pytest

from sgdsai_lab.analysis import group, report_metric, reported_runs, setting, summarise
from sgdsai_lab.claims import evaluate

from .fake_records import accuracy_record, lm_record


def test_table2_statistics_peak_over_seeds_average_over_grid_with_divergence_at_chance() -> None:
    from sgdsai_lab.analysis import best_rows, grid_stats, summarise

    one_seed_luck = [accuracy_record("adamw", 0.1, 0.01, 0.80), accuracy_record("adamw", 0.1, 0.01, 0.70, seed=1),
                     accuracy_record("adamw", 0.01, 0.01, 0.79)]  # fmt: skip
    # chosen by seed 0 (0.80 > 0.79), as the sweep chose it, though its mean (0.75) is lower
    assert best_rows(summarise(one_seed_luck), "val_accuracy")["adamw"]["lr"] == 0.1
    runs = [
        accuracy_record("sgdsai", 0.1, 0.01, 0.80),
        accuracy_record("sgdsai", 0.1, 0.01, 0.82, seed=1),
        accuracy_record("sgdsai", 0.01, 0.01, 0.60),
        accuracy_record("adamw", 0.1, 0.01, None),  # diverged: counts as chance in the average
        accuracy_record("adamw", 0.01, 0.01, 0.85),
    ]
    stats = grid_stats(summarise(runs), "val_accuracy")
    assert stats["sgdsai"]["peak"] == pytest.approx(0.81) and stats["sgdsai"]["peak_seeds"] == 2
    assert stats["sgdsai"]["peak_std"] == pytest.approx(0.0141421, rel=1e-4)
    assert stats["sgdsai"]["avg"] == pytest.approx(0.70)  # seed 0 of each cell: (0.80 + 0.60) / 2
    assert stats["adamw"]["peak"] == pytest.approx(0.85) and stats["adamw"]["lr"] == 0.01
    assert stats["adamw"]["avg"] == pytest.approx(0.475) and stats["adamw"]["diverged"] == 1


def test_lag_is_the_first_step_the_slower_run_reaches_the_reference_loss() -> None:
    from sgdsai_lab.analysis import lag

    fast = {"loss_curve": [[i, 10.0 - i, 1.0] for i in range(8)]}
    slow = {"loss_curve": [[i, 10.0 - i / 2, 1.0] for i in range(16)]}
    at, reached = lag(fast, slow, 0.5)
    assert at == 3 and reached is not None and reached > at
    assert lag(slow, fast, 0.5)[1] < lag(slow, fast, 0.5)[0]  # the faster run gets there first
    assert lag(fast, {"loss_curve": [[0, 99.0, 1.0]]}, 0.5)[1] is None


def test_presets_of_one_problem_are_one_setting_and_batch_size_is_another() -> None:
    runs = [
        lm_record("adamw", 1e-3, 2.0, 2.0, preset="old", eval_every=100),
        lm_record("adamw", 1e-2, 1.5, 1.5, preset="new", eval_every=500),
        lm_record("adamw", 1e-2, 1.5, 1.5, batch_size=128),
    ]
    assert setting(runs[0]) == setting(runs[1]) != setting(runs[2])
    groups = group(runs)
    assert len(groups) == 2
    # the best AdamW cell of the first setting is the other preset's, never the stale point of its own
    assert evaluate(groups[setting(runs[0])]).best["adamw"]["lr"] == 1e-2


def test_a_task_revision_is_another_setting_whatever_the_config() -> None:
    old, new = lm_record("adamw", 1e-3, 2.0, 2.0), lm_record("adamw", 1e-3, 1.5, 1.5)
    old["task_revision"] = new["task_revision"] - 1  # the task's data changed between the two
    assert old["config"] == new["config"] and setting(old) != setting(new)
    assert len(group([old, new])) == 2


def test_a_cell_repeated_by_two_presets_counts_once_per_seed() -> None:
    runs = [lm_record("adamw", 1e-2, 1.5, 1.5, preset=p, eval_every=e) for p, e in (("a", 100), ("b", 500))]
    (row,) = summarise(runs)
    assert row["seeds"] == 1


def test_the_cell_chosen_on_validation_is_reported_on_test() -> None:
    # lr 1e-2 wins on validation, lr 1e-3 would win on test: the reported cell is lr 1e-2, on test
    runs = [lm_record("adamw", 1e-2, 1.50, 1.70), lm_record("adamw", 1e-3, 1.60, 1.40)]
    runs += [lm_record("adamw", 1e-2, 1.55, 1.72, seed=s) for s in (1, 2)]
    ev = evaluate(runs)
    assert (ev.selection, ev.metric) == ("val_loss", "test_loss")
    assert ev.best["adamw"]["lr"] == 1e-2
    assert abs(ev.arms["adamw"].cell.mean - (1.70 + 1.72 + 1.72) / 3) < 1e-12
    assert ev.chooser_reported == {"adamw": True} and "seed 0 chose the cell" in ev.caveats


def test_seed_0_leaves_the_reported_mean_once_three_other_seeds_exist() -> None:
    runs = [lm_record("adamw", 1e-2, 1.5, 9.0)] + [
        lm_record("adamw", 1e-2, 1.5, 1.0, seed=s) for s in (1, 2, 3)
    ]
    (row,) = summarise(runs)
    reported, with_chooser = reported_runs(row)
    assert [r["config"]["seed"] for r in reported] == [1, 2, 3] and not with_chooser
    assert evaluate(runs).arms["adamw"].cell.mean == 1.0


def test_without_a_test_split_the_validation_metric_is_reported_with_the_caveat() -> None:
    runs = [lm_record("adamw", 1e-2, 1.5, None), lm_record("adamw", 1e-3, 1.6, 1.4)]
    assert report_metric(runs, "val_loss") == "val_loss"
    assert "no held-out test split" in evaluate(runs).caveats
    diverged = [lm_record("adamw", 1e-2, None, None), lm_record("adamw", 1e-3, 1.6, 1.4)]
    assert report_metric(diverged, "val_loss") == "test_loss"  # a diverged run has no test to miss
