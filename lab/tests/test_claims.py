"""Claim rows take their verdicts from the stats rules: equivalence, intervals, and the guards; floors come
from the records of the reported split; mechanical facts are one properties table, stated once."""

from __future__ import annotations

import pytest

from sgdsai_lab import records
from sgdsai_lab.analysis import group, setting
from sgdsai_lab.claims import (
    RULES,
    Stated,
    claims_markdown,
    evaluate,
    label,
    properties,
    recorded_eval_digest,
    recorded_eval_size,
    recorded_floor,
    recorded_outcomes,
)
from sgdsai_lab.stats import Margin, paired_eval_var

from .fake_records import accuracy_record, lm_cell, lm_record, run_record

KEY = setting(accuracy_record("sgdsai", 0.1, 0.01, 0.8))


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
    runs = [run_record("sgdsai", 0.1, 3.0, seed) for seed in range(3)]  # gpt2: the bigram floor
    assert recorded_floor(runs, "val_loss") is None
    for r in runs:
        r["floors"] = {"bigram_val": 4.81, "bigram_test": 4.83}
    assert recorded_floor(runs, "val_loss") == 4.81 and recorded_floor(runs, "test_loss") == 4.83


def test_a_floor_evaluated_again_in_its_last_digits_is_one_floor_and_a_different_one_is_refused():
    runs = [run_record("sgdsai", 0.1, 3.0, seed) for seed in range(3)]
    for r, bigram in zip(runs, (4.303757727146149, 4.3037577867507935, 4.303757727146149)):
        r["floors"] = {"bigram_test": bigram}  # 1 and 2 threads evaluating one model
    assert recorded_floor(runs, "test_loss") == 4.303757727146149
    # as far apart as two machines' LoRA floors: one floor, the lowest
    runs[1]["floors"]["bigram_test"] = 4.3863764850136535 * 4.303757727146149 / 4.386385823292024
    assert recorded_floor(runs, "test_loss") == min(r["floors"]["bigram_test"] for r in runs)
    runs[1]["floors"]["bigram_test"] = 4.31
    with pytest.raises(ValueError, match="different test floors"):
        recorded_floor(runs, "test_loss")


def test_an_accuracy_counts_the_noise_of_the_evaluation_set_its_records_declare() -> None:
    runs = _bracketed("sgdsai", 0.805) + _bracketed("adamw", 0.81)
    assert recorded_eval_size(runs, "val_accuracy") is None  # older records: not counted, and said so
    assert "(evaluation-set noise not counted)" in _matches_row(runs)
    for r in runs:
        r["eval_sizes"] = {"val": 500, "test": 1000}
    assert recorded_eval_size(runs, "val_accuracy") == 500 and recorded_eval_size(runs, "val_loss") is None
    ev = evaluate(runs)
    assert ev.stated.eval_size == 500
    assert ev.arms["adamw"].cell.eval_se == pytest.approx((0.81 * 0.19 / 500) ** 0.5, rel=1e-2)
    assert "(evaluation-set noise not counted)" not in _matches_row(runs)
    runs[0]["eval_sizes"] = {"val": 400, "test": 1000}
    with pytest.raises(ValueError, match="different val set sizes"):
        recorded_eval_size(runs, "val_accuracy")
    del runs[1]["eval_sizes"]  # an older record does not hide the conflict of two others
    with pytest.raises(ValueError, match="different val set sizes"):
        recorded_eval_size(runs, "val_accuracy")


def test_recorded_outcomes_pair_the_evaluation_noise_of_two_cells() -> None:
    runs = _bracketed("sgdsai", 0.805) + _bracketed("adamw", 0.81)
    for r in runs:  # each run gets the first `hits` of 200 examples right: errors shared, as is typical
        hits = round(200 * r["metrics"]["val_accuracy"])
        r["metrics"]["val_accuracy"] = hits / 200
        r["eval_sizes"] = {"val": 200}
        r["eval_correct"] = {"val": records.pack_flags([i < hits for i in range(200)])}
        r["eval_digests"] = {"val": "0123456789abcdef"}
    ev = evaluate(runs)
    assert set(ev.outcomes) == {"sgdsai", "adamw"} and len(ev.outcomes["adamw"]) == 3
    c = ev.compare("sgdsai", "adamw")
    a, b = ev.arms["sgdsai"].cell, ev.arms["adamw"].cell
    eval_var = paired_eval_var(ev.outcomes["sgdsai"], ev.outcomes["adamw"])
    assert c.paired and c.se == pytest.approx((a.seed_se**2 + b.seed_se**2 + eval_var) ** 0.5)
    assert eval_var < (a.eval_se**2 + b.eval_se**2) / 4  # shared errors cancel
    assert "(evaluation-set noise paired over the 200 examples)" in _matches_row(runs)
    del runs[0]["eval_correct"]  # a best-cell seed without outcomes: that arm falls back to binomial
    assert recorded_outcomes(runs[:3], "val_accuracy", 200) is None


def test_outcomes_are_paired_only_over_one_declared_evaluation_set() -> None:
    runs = _bracketed("sgdsai", 0.805) + _bracketed("adamw", 0.81)
    for r in runs:
        hits = round(200 * r["metrics"]["val_accuracy"])
        r["metrics"]["val_accuracy"] = hits / 200
        r["eval_sizes"] = {"val": 200}
        r["eval_correct"] = {"val": records.pack_flags([i < hits for i in range(200)])}
    assert recorded_eval_digest(runs, "val_accuracy") is None
    assert evaluate(runs).outcomes == {}  # no digest: not known to be one set, so binomial terms
    for r in runs:
        r["eval_digests"] = {"val": "0123456789abcdef"}
    assert recorded_eval_digest(runs, "val_accuracy") == "0123456789abcdef"
    assert recorded_eval_digest(runs, "val_loss") is None
    assert set(evaluate(runs).outcomes) == {"sgdsai", "adamw"}
    runs[-1]["eval_digests"] = {"val": "fedcba9876543210"}
    with pytest.raises(ValueError, match="different val set digests"):
        evaluate(runs)
    del runs[0]["eval_digests"]  # an older record does not hide the conflict of two others
    with pytest.raises(ValueError, match="different val set digests"):
        evaluate(runs)


@pytest.mark.parametrize(
    ("packed", "accuracy", "message"),
    [
        ("ff", 1.0, "2 hex digits cannot hold exactly 9 flags"),
        ("ff8", 0.5, "counts 9/9 correct, not its val_accuracy 0.5"),
        (None, 0.5, ""),  # no outcomes: no pairing, no error
    ],
)
def test_outcomes_that_do_not_fit_their_record_are_refused_by_name(packed, accuracy, message) -> None:
    (run,) = _cell("sgdsai", 0.1, [accuracy])
    run["eval_correct"] = None if packed is None else {"val": packed}
    if not message:
        assert recorded_outcomes([run], "val_accuracy", 9) is None
        return
    with pytest.raises(ValueError, match=f"record {run['id']}: eval_correct.val:? {message}"):
        recorded_outcomes([run], "val_accuracy", 9)


def _matches_row(runs: list[dict]) -> str:
    return next(line for line in claims_markdown(group(runs)) if line.startswith("| matches AdamW"))


def test_the_test_floor_of_the_records_gates_the_verdict() -> None:
    below = lm_cell("sgdsai", 1.0, 1.40) + lm_cell("adamw", 1e-3, 1.40)
    ev = evaluate(below)
    assert ev.metric == "test_loss" and ev.stated.floor == 2.42  # floors.bigram_test
    assert _matches_row(below).endswith("| held |")
    above = lm_cell("sgdsai", 1.0, 2.50) + lm_cell("adamw", 1e-3, 2.50)
    assert "| below floor: not informative" in _matches_row(above)


def test_mechanical_facts_are_one_row_each_over_every_setting() -> None:
    two_settings = [
        *(r for b in (16, 128) for r in (lm_record("sgdsai", 1.0, 1.5, 1.5, batch_size=b),
                                          lm_record("adamw", 1e-3, 1.5, 1.5, batch_size=b))),
    ]  # fmt: skip
    for r in two_settings:
        r["state_bytes"] = 100 if r["config"]["optimizer"] == "sgdsai" else 200
    rows = properties(group(two_settings))
    assert [p for p, *_ in rows].count("half of AdamW's optimizer state") == 1
    assert "over 2 settings" in rows[0][2] and rows[0][3] == "held"
    lines = claims_markdown(group(two_settings))
    assert sum(line.startswith("| half of AdamW") for line in lines) == 1


def test_a_small_tensor_that_drifts_fails_the_g_snr_property() -> None:
    run = run_record("sgdsai", 0.1, 3.0)
    run["gsnr_trace"] = {"steps": [0, 2], "tensors": {"big": [40.0, 40.1], "ln": [3.0, 2.1]},
                         "numel": {"big": 1600, "ln": 8}}  # fmt: skip
    rows = {p.split(" (")[0]: (o, v) for p, _, o, v in properties(group([run]))}
    text, verdict = rows["g-SNR nearly constant through training"]
    assert verdict == "**not held**" and "under 1,000 elements: up to 30.0%" in text
    assert rows["g-SNR ≈ √numel"][1] == "held"  # 40 / √1600 = 1: the small tensor is not in that median


def test_lora_a_trains_is_one_row_over_the_lora_settings() -> None:
    runs = []
    for task in ("lora", "lora-cls"):
        for opt, moved in (("sgdsai", 1e-3), ("sgd-sai-1.0.3", 1e-8)):
            r = run_record(opt, 0.1, 3.0)
            r["config"]["task"] = task
            r["metrics"]["lora_A_orth_change_min"] = moved
            runs.append(r)
    (row,) = [p for p in properties(group(runs)) if p[0].startswith("LoRA A")]
    assert row[3] == "held" and row[2].count("ours 0.001") == 2


def _image_cell(optimizer: str, lr: float, accuracy: float) -> list[dict]:
    """A bracketed vit cell that records a test accuracy and both kinds of floor keys."""
    runs = _bracketed(optimizer, accuracy) if lr == 0.1 else []
    for r in runs:
        r["metrics"]["test_accuracy"] = r["metrics"]["val_accuracy"]
        r["floors"] = {"linear_val": 0.84, "linear_test": 0.83, "bigram_val": 0.99, "bigram_test": 0.99}
    return runs


def test_image_settings_are_judged_against_the_linear_floor_of_the_test_split() -> None:
    runs = _image_cell("sgdsai", 0.1, 0.865) + _image_cell("adamw", 0.1, 0.87)
    ev = evaluate(runs)
    assert ev.metric == "test_accuracy" and ev.stated.floor == 0.83  # floors.linear_test, not bigram
    assert recorded_floor(runs, "val_accuracy") == 0.84
    assert _matches_row(runs).endswith("| held |")


def test_an_accuracy_at_or_under_its_floor_is_below_it_and_one_above_is_not() -> None:
    def judged(floor: float) -> str:
        runs = _image_cell("sgdsai", 0.1, 0.865) + _image_cell("adamw", 0.1, 0.87)
        for r in runs:
            r["floors"]["linear_test"] = floor
        return _matches_row(runs)

    adamw = evaluate(_image_cell("sgdsai", 0.1, 0.865) + _image_cell("adamw", 0.1, 0.87)).arms["adamw"]
    assert "below floor" not in judged(adamw.cell.mean - 0.001)
    for floor in (adamw.cell.mean, adamw.cell.mean + 0.03):  # a loss-style reading would pass the second
        assert "| below floor: not informative" in judged(floor), floor


def _lora_cell(optimizer: str, loss: float) -> list[dict]:
    """A bracketed lora cell (losses 3 seeds at lr 0.1, worse at 0.01 and 1) recording the untrained floor."""
    runs = [run_record(optimizer, 0.1, loss + d, seed) for seed, d in enumerate([0.0, -0.002, 0.002])]
    runs += [run_record(optimizer, lr, loss + 0.5) for lr in (0.01, 1.0)]
    for r in runs:
        r["config"]["task"] = r["group"] = "lora"
        r["metrics"]["test_loss"] = r["metrics"]["val_loss"]
        r["floors"] = {"untrained_val": 4.0, "untrained_test": 4.3}
    return runs


def test_lora_settings_are_judged_against_the_untrained_floor_a_loss_under_it_beating_it() -> None:
    runs = _lora_cell("sgdsai", 3.0) + _lora_cell("adamw", 3.0)
    assert recorded_floor(runs, "val_loss") == 4.0 and evaluate(runs).stated.floor == 4.3
    assert _matches_row(runs).endswith("| held |")
    above = _lora_cell("sgdsai", 4.4) + _lora_cell("adamw", 4.4)  # no better than the base model
    assert "| below floor: not informative" in _matches_row(above)


def test_a_setting_of_a_superseded_task_revision_says_so_in_its_label() -> None:
    old, new = lm_record("adamw", 1e-3, 2.0, 2.0), lm_record("adamw", 1e-3, 1.5, 1.5)
    old["task_revision"] = new["task_revision"] - 1
    assert "task revision 2 (now 3)" in label(setting(old), [old])
    assert "task revision" not in label(setting(new), [new])
