"""Claim rows take their verdicts from the stats rules: equivalence, intervals, and the guards."""

from __future__ import annotations

from sgdsai_lab.analysis import group
from sgdsai_lab.claims import RULES, Stated, claims_markdown, recorded_floor
from sgdsai_lab.stats import Margin

from .fake_records import accuracy_record

KEY = ("vit", "stdlib", "tiny", 4, "quick")


def _cell(optimizer: str, lr: float, accuracies: list[float]) -> list[dict]:
    return [accuracy_record(optimizer, lr, 0.01, acc, seed=seed) for seed, acc in enumerate(accuracies)]


def _bracketed(optimizer: str, peak: float, seeds: int = 3) -> list[dict]:
    """Seeds at lr 0.1 of peak, −0.002 and +0.002 about it; single runs at lrs 0.01 and 1, 10 points down."""
    spread = [0.0, -0.002, 0.002][:seeds]
    return [*_cell(optimizer, 0.1, [peak + d for d in spread]),
            *_cell(optimizer, 0.01, [peak - 0.1]), *_cell(optimizer, 1.0, [peak - 0.1])]  # fmt: skip


def _rows(runs: list[dict], floor: float | None = 0.5) -> dict[str, str]:
    lines = claims_markdown(group(runs), {KEY: Stated(Margin(0.01), floor)})
    return {line.split(" — ")[0].strip("| "): line for line in lines if " — " in line}


def test_close_seeds_match_adamw_and_a_clear_lead_beats_sgd_momentum():
    rows = _rows(_bracketed("sgdsai", 0.805) + _bracketed("adamw", 0.81) + _bracketed("nesterov", 0.70))
    assert rows["matches AdamW at its best"].endswith("| held |")
    assert (
        "n 3 vs 3" in rows["matches AdamW at its best"]
        and "margin ±1.00 pt" in rows["matches AdamW at its best"]
    )
    assert rows["beats SGD with momentum"].endswith("| held |")


def test_a_clear_deficit_does_not_match():
    rows = _rows(_bracketed("sgdsai", 0.76) + _bracketed("adamw", 0.81))
    assert rows["matches AdamW at its best"].endswith("| **not held** |")


def test_one_seed_an_edge_or_a_missing_floor_leave_the_claim_inconclusive():
    one_seed = _rows(_bracketed("sgdsai", 0.805, seeds=1) + _bracketed("adamw", 0.81))
    assert "| inconclusive: sgdsai: 1 seed(s)" in one_seed["matches AdamW at its best"]
    edge = (
        _cell("sgdsai", 0.1, [0.805, 0.80, 0.81]) + _cell("sgdsai", 0.01, [0.7]) + _bracketed("adamw", 0.81)
    )
    assert "not bracketed" in _rows(edge)["matches AdamW at its best"]
    no_floor = _rows(_bracketed("sgdsai", 0.805) + _bracketed("adamw", 0.81), floor=None)
    assert "inconclusive: no floor stated" in no_floor["matches AdamW at its best"]


def test_adamw_short_of_the_floor_is_not_informative():
    rows = _rows(_bracketed("sgdsai", 0.805) + _bracketed("adamw", 0.81), floor=0.9)
    assert "| below floor: not informative: the best AdamW run" in rows["matches AdamW at its best"]


def test_the_rules_under_the_table_are_the_stats_rules():
    lines = claims_markdown(group(_bracketed("sgdsai", 0.805) + _bracketed("adamw", 0.81)))
    assert lines[-1] == "Verdict rules: " + "; ".join(RULES) + "."
    assert "two one-sided Welch tests" in lines[-1] and "bracketed" in lines[-1]


def test_the_floor_comes_from_the_records_of_the_split():
    runs = _bracketed("sgdsai", 0.805)
    assert recorded_floor(runs, "val_loss") is None
    for r in runs:
        r["floors"] = {"bigram_val": 4.81, "bigram_test": 4.83}
    assert recorded_floor(runs, "val_loss") == 4.81 and recorded_floor(runs, "test_loss") == 4.83
