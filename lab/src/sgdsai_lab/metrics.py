"""What a run is judged by: the metrics a sweep may select on, and which way each one is better.

Every metric is ``<split>_<quantity>`` (``val_loss``, ``test_accuracy``, ``final_train_loss``); its
quantity alone says which way is better, so a test-split twin is read the way its validation metric is.
"""

from __future__ import annotations

import math
from typing import Any

from sgdsai_lab.stats import Goal

#: quantity -> which way is better
QUANTITIES: dict[str, Goal] = {"loss": "min", "accuracy": "max"}
#: the metrics a run can be selected by (the validation split's), and which way is better
METRICS: dict[str, Goal] = {f"val_{quantity}": goal for quantity, goal in QUANTITIES.items()}


def goal(metric: str) -> Goal:
    """``"min"`` or ``"max"``: which way ``metric`` is better."""
    quantity = metric.rsplit("_", 1)[-1]
    if quantity not in QUANTITIES:
        raise ValueError(f"metric {metric!r} must end in one of {', '.join(QUANTITIES)}")
    return QUANTITIES[quantity]


def metric_value(record: dict[str, Any], metric: str) -> float:
    """A record's ``metric`` oriented so that larger is better (losses negated); a diverged or
    unevaluated run is the worst possible."""
    value = record["metrics"].get(metric)
    if value is None or record["metrics"].get("diverged"):
        return -math.inf
    return value if goal(metric) == "max" else -value
