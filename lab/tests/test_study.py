"""The study's block: a paragraph per workload from records, "not run yet" where none, the answers."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from sgdsai_lab import stats
from sgdsai_lab.analysis import group
from sgdsai_lab.study import (
    WORKLOADS,
    against_adamw_plot,
    against_adamw_rows,
    batch_plot,
    brief_diff,
    lr_table,
    m_setter,
    scale_gap,
    study_markdown,
)

from .fake_records import accuracy_record, lm_cell, lm_record


def _study(batch_128: bool = True) -> list[dict]:
    runs = lm_cell("sgdsai", 1.0, 1.40) + lm_cell("adamw", 1e-3, 1.40) + lm_cell("nesterov", 0.1, 1.60)
    runs += lm_cell("sgdsai-numel", 1.0, 1.41)
    if batch_128:
        big = dict(batch_size=128, preset="study-a128", steps=2)
        runs += lm_cell("sgdsai", 1.0, 1.60, **big) + lm_cell("adamw", 1e-3, 1.40, **big)
        runs += lm_cell("nesterov", 0.1, 1.70, **big)
    return runs


def test_each_workload_gets_its_numbers_and_verdict_or_not_run_yet() -> None:
    text = "\n".join(study_markdown(group(_study()), None))
    a16 = next(line for line in text.splitlines() if line.startswith(f"**{WORKLOADS[0].name}**"))
    assert "test loss, floor (bigram, test) 2.4200" in a16
    assert "sgdsai 1.4000 (n 3, lr 1) vs adamw 1.4000 (n 3, lr 0.001)" in a16 and "— **matches**" in a16
    assert "nesterov 1.6000 (n 3, lr 0.1) vs adamw" in a16 and "**trails**" in a16
    assert "Time to AdamW's final smoothed training loss" in a16 and "peak RSS 500 MiB" in a16
    assert "20 runs so far, 0.0 h of wall-clock in all." in a16  # 20 fake runs of 2 s each
    for name in ("BPE LM", "ViT", "LoRA"):
        assert f"**{name}" in text and "not run yet (no records of its study preset;" in text


def test_the_readme_paragraph_is_the_brief_one_with_the_95_interval_and_the_same_verdicts() -> None:
    full = "\n".join(study_markdown(group(_study()), None))
    brief = "\n".join(study_markdown(group(_study()), None, brief=True))
    a16 = next(line for line in brief.splitlines() if line.startswith(f"**{WORKLOADS[0].name}**"))
    assert "test loss, floor (bigram, test) 2.4200; 20 runs, 0.0 h. `adamw` 1.400 (lr 0.001, n 3)." in a16
    assert "`nesterov` 1.600 (lr 0.1, n 3): Δ +0.200 [+0.198, +0.202] — **trails**" in a16
    assert "90% [" not in brief and "90% [" in full and "margin" not in a16
    assert [line.count("**trails**") for line in brief.splitlines()] == [
        line.count("**trails**") for line in full.splitlines()
    ]
    assert len(brief) < len(full)


def test_the_answers_follow_the_verdicts() -> None:
    text = "\n".join(study_markdown(group(_study()), None))
    sgd = next(line for line in text.splitlines() if "over plain SGD?" in line)
    assert "Char-level LM, 16 × 128 tokens per step: sgdsai 1.4000 (n 3, lr 1) vs nesterov 1.6000" in sgd
    assert "128 × 128 tokens per step: sgdsai 1.6000 (n 3, lr 1) vs nesterov 1.7000" in sgd
    assert sgd.count("**beats**") == 2 and "ViT on Fashion-MNIST: not run yet" in sgd
    assert "`sgdsai-numel` against `sgdsai`: Char-level LM, 16 × 128 tokens per step: sgdsai-numel" in text
    assert "128 × 128 tokens per step: not run yet (sgdsai-numel has no records)" in text
    assert (
        "where the embedding sets M: Char-level LM, 16 × 128 tokens per step: no `sgdsai` record with the"
        in text
    )
    assert "BPE LM (GPT-2 on English BPE-8k): not run yet." in text
    assert "`sgdsai-m0` (no state beyond the scales) against `sgdsai`: Char-level LM, 16 × 128" in text
    # matches AdamW at 16 x 128, trails it at 128 x 128; beats Nesterov at both
    assert (
        "So far: against adamw the verdict changes; the gap moves by +0.2000, 95% [+0.1973, +0.2027]: it moves "
        "against SGD-SaI; against nesterov the verdict does not change; the gap moves by +0.1000" in text
    )  # beating Nesterov by less at the larger batch is a move against SGD-SaI too
    alone = "\n".join(study_markdown(group(_study(batch_128=False)), None))
    assert "not answerable yet" in alone


def test_the_vectors_answer_sets_vec1_against_sgdsai_and_against_nesterov() -> None:
    text = "\n".join(study_markdown(group(_study(batch_128=False) + lm_cell("sgdsai-vec1", 1.0, 1.30)), None))
    vectors = next(line for line in text.splitlines() if "small scales" in line)
    assert "16 × 128 tokens per step: sgdsai-vec1 1.3000 (n 3, lr 1) vs sgdsai 1.4000 (n 3, lr 1)" in vectors
    assert "sgdsai-vec1 1.3000 (n 3, lr 1) vs nesterov 1.6000 (n 3, lr 0.1)" in vectors
    assert vectors.count("**beats**") == 2
    without = "\n".join(study_markdown(group(_study(batch_128=False)), None))
    assert "not run yet (sgdsai-vec1 has no records)" in next(
        line for line in without.splitlines() if "small scales" in line
    )


def test_the_embedding_m_answer_names_the_tensor_that_set_m_and_compares_where_blocks_m_ran() -> None:
    runs = lm_cell("sgdsai", 1.0, 1.40, preset="study-b", data="english") + lm_cell(
        "sgdsai-blocks-m", 1.0, 1.30, preset="study-b", data="english"
    )
    runs += lm_cell("adamw", 1e-3, 1.20, preset="study-b", data="english")
    runs[0]["sgdsai_scales"] = {"h.0.mlp": 0.18, "transformer.wte.weight": 1.0, "wpe": 0.09, "ln": 0.01}
    text = "\n".join(study_markdown(group(runs), None))
    assert (
        "BPE LM (GPT-2 on English BPE-8k): M is set by `transformer.wte.weight`; the embedding "
        "(`transformer.wte.weight`) gets 1 of the rate and the largest other tensor 0.18; "
        "sgdsai-blocks-m 1.3000 (n 3, lr 1) vs sgdsai 1.4000 (n 3, lr 1)" in text
    )
    char = lm_cell("sgdsai", 1.0, 1.40) + lm_cell("adamw", 1e-3, 1.20)
    char[0]["sgdsai_scales"] = {"h.0.mlp": 1.0, "transformer.wte.weight": 0.71}
    text = "\n".join(study_markdown(group(char), None))
    assert (
        "16 × 128 tokens per step: M is set by `h.0.mlp`; the embedding (`transformer.wte.weight`) gets 0.71 of "
        "the rate and the largest other tensor 1, so `sgdsai-blocks-m` is `sgdsai` here and was not run;"
        in text
    )


def test_a_workload_of_two_settings_answers_for_each_of_them() -> None:
    from sgdsai_lab.config import task_revision

    runs = []
    for steps, sgdsai in ((60, 1.40), (150, 1.20)):  # as the two LoRA tasks are two settings
        config = dict(task="lora", preset="study-d-lora", steps=steps)
        for record in lm_cell("sgdsai", 1.0, sgdsai, **config) + lm_cell("adamw", 1e-3, 1.20, **config):
            record["task_revision"] = task_revision("lora")
            record["floors"] = {"untrained_val": 3.0, "untrained_test": 3.0}
            runs.append(record)
    text = "\n".join(study_markdown(group(runs), None))
    headline = next(line for line in text.splitlines() if line.startswith("**So far"))
    assert "**trails** in 1 (LoRA (lora tiny / stdlib, 60 steps" in headline
    assert "**matches** in 1 (LoRA (lora tiny / stdlib, 150 steps" in headline
    rows = [line.split(" | ")[0] for line in lr_table(group(runs))[2:]]
    for steps in (60, 150):  # each setting's two optimizers, under its own name
        assert sum(r.startswith(f"| LoRA (lora tiny / stdlib, {steps} steps") for r in rows) == 2
    for record in runs:
        record["config"]["preset"] += "-cls" if record["config"]["steps"] == 150 else ""
    ticks = sorted(name for name, *_ in against_adamw_rows(group(runs)))
    assert ticks == ["LoRA (study-d-lora): sgdsai", "LoRA (study-d-lora-cls): sgdsai"]


def test_the_batch_size_plot_is_written_only_with_both_batch_sizes(tmp_path) -> None:
    assert batch_plot(group(_study(batch_128=False)), tmp_path) is None
    name = batch_plot(group(_study()), tmp_path)
    assert name and (tmp_path / name).stat().st_size > 0
    assert f"![batch size]({name})" in study_markdown(group(_study()), tmp_path)


def test_time_to_target_counts_seconds_at_the_median_iteration_not_the_wall_clock() -> None:
    runs = lm_cell("sgdsai", 1.0, 1.40) + lm_cell("adamw", 1e-3, 1.40)
    for run in runs:  # a run paused by a shared machine: its wall-clock says nothing of its speed
        run["median_iter_ms"], run["wall_clock_s"] = 2000.0, 1e6
    text = "\n".join(study_markdown(group(runs), None))
    assert "adamw step 10 (≈ 20 s); sgdsai step 10 (≈ 20 s)." in text


def test_the_vit_paragraph_states_its_linear_floor_as_an_accuracy() -> None:
    runs = []
    for optimizer, accuracy in (("sgdsai", 0.865), ("adamw", 0.87)):
        for seed, delta in enumerate((0.0, -0.002, 0.002)):
            record = accuracy_record(optimizer, 0.1, 0.01, accuracy + delta, seed=seed)
            record["config"]["preset"] = "study-c"
            record["metrics"]["test_accuracy"] = accuracy + delta
            record["floors"] = {"linear_val": 0.845, "linear_test": 0.8412}
            runs.append(record)
    text = "\n".join(study_markdown(group(runs), None))
    vit = next(line for line in text.splitlines() if line.startswith("**ViT on Fashion-MNIST**"))
    assert "test accuracy, floor (linear, test) 84.12%" in vit


def test_an_interval_left_open_shows_the_margin_in_the_metrics_units() -> None:
    open_ = stats.Comparison(
        a="sgdsai", b="adamw", n_a=3, n_b=3, margin=0.01, difference=-0.0136, se=0.01, df=4.0,
        interval_90=(-0.03, 0.006), interval_95=(-0.031, 0.004), p_equivalence=0.4, p_difference=0.1,
        verdict=stats.INCONCLUSIVE, reason=stats.OPEN_INTERVAL,
    )  # fmt: skip
    accuracy = SimpleNamespace(metric="test_accuracy", stated=SimpleNamespace(eval_size=545))
    assert brief_diff(open_, accuracy) == "Δ -1.36 pt [-3.10, +0.40], margin ±1.00 pt"
    loss = SimpleNamespace(metric="test_loss", stated=SimpleNamespace(eval_size=None))
    assert brief_diff(open_, loss) == "Δ -0.014 [-0.031, +0.004], margin ±0.010"
    guarded = dataclasses.replace(open_, reason="sgdsai: 1 seed(s), fewer than 3")
    assert "margin" not in brief_diff(guarded, loss)  # a guard, not the interval, left it open


def test_the_lr_table_places_each_best_lr_against_its_default_and_its_bracket() -> None:
    runs = lm_cell("sgdsai", 3.0, 1.40) + lm_cell("adamw", 1e-3, 1.40)
    runs += [lm_record("adamw", 1.0, None, None)]  # diverged: it brackets, and says so
    runs += [lm_record("nesterov", 0.1, 1.5, 1.5), lm_record("nesterov", 0.3, 1.45, 1.45)]
    table = "\n".join(lr_table(group(runs)))
    a16 = WORKLOADS[0].name
    assert f"| {a16} | `sgdsai` | 1 | 0.3, 3, 30 | 3 | 3 | yes |" in table
    assert f"| {a16} | `adamw` | 0.001 | 0.0001, 0.001, 0.01, 1 (diverged) | 0.001 | 1 | yes |" in table
    assert f"| {a16} | `nesterov` | 0.1 | 0.1, 0.3 | 0.3 | 3 | no: best lr 0.3 at the high edge" in table
    assert lr_table(group([])) == []


def test_the_against_adamw_plot_is_written_once_a_workload_has_a_comparison(tmp_path) -> None:
    assert against_adamw_plot(group(lm_cell("sgdsai", 1.0, 1.40)), tmp_path) is None  # no AdamW
    name = against_adamw_plot(group(_study()), tmp_path)
    assert name and (tmp_path / name).stat().st_size > 0
    assert f"![against AdamW]({name})" in study_markdown(group(_study()), tmp_path)


def test_the_headline_tallies_sgdsai_against_adamw_then_nesterov_in_every_workload_losses_first() -> None:
    text = "\n".join(study_markdown(group(_study()), None))
    a16, a128 = WORKLOADS[0].name, WORKLOADS[1].name
    line = next(line for line in text.splitlines() if line.startswith("**So far"))
    assert line == (
        f"**So far, `sgdsai` against tuned AdamW:** **trails** in 1 ({a128}), **matches** in 1 ({a16}), "
        f"**not run yet** in 3 ({'; '.join(w.name for w in WORKLOADS[2:])}). **Against tuned Nesterov SGD** "
        f"(plain SGD, tuned alike): **beats** in 2 ({a16}; {a128}), **not run yet** in 3 "
        f"({'; '.join(w.name for w in WORKLOADS[2:])})."
    )


def test_a_block_tied_with_the_embedding_at_scale_one_sets_m_too() -> None:
    runs = lm_cell("sgdsai", 1.0, 1.40)[:3][::-1]  # seeds 2, 1, 0: the records in no helpful order
    runs[1]["sgdsai_scales"] = {"wte": 1.0, "h.0.mlp": 1.0, "ln": 0.04}  # seed 1
    runs[2]["sgdsai_scales"] = {"wte": 1.0, "h.0.mlp": 0.2, "ln": 0.04}  # seed 0 is the one read
    assert m_setter(runs, "wte") == (
        "M is set by `wte`; the embedding (`wte`) gets 1 of the rate and the largest other tensor 0.2",
        False,
    )
    runs[2]["sgdsai_scales"] = {"wte": 1.0, "h.0.mlp": 1.0}
    assert m_setter(runs, "wte")[1]  # M over the blocks is the same M
    runs[2]["sgdsai_scales"] = {"wte": 1.0}
    assert m_setter(runs, "wte") == (
        "M is set by `wte`; the embedding (`wte`) gets 1 of the rate and the largest other tensor none",
        False,
    )


def test_the_headline_counts_a_workload_once_though_a_superseded_revision_of_it_remains() -> None:
    old = _study(batch_128=False)
    for record in old:
        record["task_revision"] = 2
        record["id"] += "-old"
    text = "\n".join(study_markdown(group(_study(batch_128=False) + old), None))
    headline = next(line for line in text.splitlines() if line.startswith("**So far"))
    assert "**matches** in 1 (Char-level LM, 16 × 128 tokens per step)" in headline


def test_a_brief_difference_without_an_interval_says_so() -> None:
    runs = lm_cell("sgdsai", 1.0, 1.40)[:1] + lm_cell("sgdsai", 1.0, 1.40)[3:] + lm_cell("adamw", 1e-3, 1.40)
    text = "\n".join(study_markdown(group(runs), None, brief=True))
    assert "`sgdsai` 1.400 (lr 1, n 1): Δ +0.000 [—, —] — **inconclusive** (sgdsai: 1 seed(s)" in text


def test_the_numel_answer_says_how_far_the_two_sets_of_scales_lie_apart() -> None:
    runs = lm_cell("sgdsai", 1.0, 1.40) + lm_cell("sgdsai-numel", 1.0, 1.40)
    assert scale_gap(runs) == ""  # no scales recorded
    runs[0]["sgdsai_scales"] = {"w": 1.0, "b": 0.05, "ln": 0.04}
    runs[5]["sgdsai_scales"] = {"w": 1.0, "b": 0.0505, "ln": 0.044}
    assert scale_gap(runs) == "the scales differ by 1% (median over the tensors), at most 10% (`ln`)"
    text = "\n".join(study_markdown(group(runs), None))
    assert "vs sgdsai 1.4000 (n 3, lr 1): Δ +0.0000" in text and "; the scales differ by 1% (median" in text


def test_the_numel_answer_covers_every_workload_with_each_settings_own_scale_gap() -> None:
    bpe = dict(preset="study-b", data="english")
    runs = lm_cell("sgdsai", 1.0, 1.40) + lm_cell("sgdsai-numel", 1.0, 1.40)
    runs += lm_cell("sgdsai", 10.0, 1.40, **bpe) + lm_cell("sgdsai-numel", 10.0, 1.50, **bpe)
    runs[0]["sgdsai_scales"], runs[5]["sgdsai_scales"] = {"w": 1.0, "b": 0.05}, {"w": 1.0, "b": 0.05}
    runs[10]["sgdsai_scales"], runs[15]["sgdsai_scales"] = {"w": 1.0, "b": 0.05}, {"w": 1.0, "b": 0.1}
    numel = next(
        line for line in "\n".join(study_markdown(group(runs), None)).splitlines() if "(√numel)" in line
    )
    a16, bpe_part = numel.split("BPE LM (GPT-2 on English BPE-8k): ")
    assert "the scales differ by 0% (median over the tensors)" in a16
    assert (
        bpe_part.startswith("sgdsai-numel 1.5000 (n 3, lr 10) vs sgdsai 1.4000") and "**trails**" in bpe_part
    )
    assert "at most 100% (`b`)" in bpe_part and "ViT on Fashion-MNIST: not run yet" in bpe_part


def test_a_brief_paragraph_without_adamw_still_shows_the_best_cells() -> None:
    text = "\n".join(study_markdown(group(lm_cell("sgdsai", 1.0, 1.40)), None, brief=True))
    assert "AdamW not run yet: no verdict against it. Best cells so far: `sgdsai` 1.400 (lr 1, n 3)." in text
