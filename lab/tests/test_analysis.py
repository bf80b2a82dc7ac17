"""The analysis layer: best cells chosen as the sweep chose them, grid statistics, curve lags."""

from __future__ import annotations

import pytest

from .fake_records import accuracy_record


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
