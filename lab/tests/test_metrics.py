"""A metric's quantity says which way it is better, on every split; a diverged run is the worst."""

from __future__ import annotations

import pytest

from sgdsai_lab.metrics import METRICS, goal, metric_value


def test_a_test_split_twin_is_read_the_way_its_validation_metric_is() -> None:
    assert METRICS == {"val_loss": "min", "val_accuracy": "max"}
    assert [goal(m) for m in ("test_loss", "final_train_loss", "test_accuracy")] == ["min", "min", "max"]
    with pytest.raises(ValueError, match="'val_bleu' must end in one of loss, accuracy"):
        goal("val_bleu")


def test_a_diverged_or_unevaluated_run_is_never_the_best_point() -> None:
    diverged = {"metrics": {"diverged": True, "val_accuracy": 0.9}}
    fine = {"metrics": {"diverged": False, "val_accuracy": 0.1, "val_loss": 2.0}}
    assert metric_value(diverged, "val_accuracy") < metric_value(fine, "val_accuracy")
    assert metric_value(fine, "val_loss") == -2.0 and metric_value(fine, "test_loss") == -float("inf")
