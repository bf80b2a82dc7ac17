"""Batch plumbing shared by the tasks: padding trimmed without changing what a model computes; each
task declares its choices and yardsticks."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from sgdsai_lab.tasks import (
    FLOORS,
    METRICS,
    TASKS,
    build_task,
    length_sorted_chunks,
    task_spec,
    tensors_digest,
    trim_padding,
)


def _padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0]])
    ids = torch.arange(24).reshape(4, 6) * mask
    return ids, mask, torch.where(mask.bool(), ids, -100)


def test_trim_padding_drops_only_columns_padded_in_every_row() -> None:
    ids, mask, labels = _padded_batch()
    short_ids, short_mask, short_labels = trim_padding((ids, mask, labels))
    assert torch.equal(short_ids, ids[:, :4]) and torch.equal(short_mask, mask[:, :4])
    assert torch.equal(short_labels, labels[:, :4])
    classes = torch.tensor([3, 1, 4, 1])
    assert torch.equal(trim_padding((ids, mask, classes))[2], classes)  # one label per row: kept


def test_length_sorted_chunks_hold_every_row_once_shortest_first() -> None:
    ids, mask, labels = _padded_batch()
    chunks = length_sorted_chunks((ids, mask, labels), 2)
    assert [c[0].shape for c in chunks] == [(2, 2), (2, 4)]
    rows = sorted(tuple(r[m.bool()].tolist()) for c in chunks for r, m in zip(c[0], c[1]))
    assert rows == sorted(tuple(r[m.bool()].tolist()) for r, m in zip(ids, mask))


@pytest.mark.parametrize("task", ["lora", "lora_cls"])
def test_trailing_padding_does_not_change_the_outputs_at_real_tokens(task: str) -> None:
    module = importlib.import_module(f"sgdsai_lab.tasks.{task}")
    torch.manual_seed(0)
    model = module._synthetic_model().eval()
    ids = torch.randint(4, 64, (3, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    padded = (torch.cat([ids * mask, torch.zeros(3, 5, dtype=torch.long)], 1),
              torch.cat([mask, torch.zeros(3, 5, dtype=torch.long)], 1))  # fmt: skip
    with torch.no_grad():
        short = model(input_ids=ids * mask, attention_mask=mask).logits
        long = model(input_ids=padded[0], attention_mask=padded[1]).logits
    if task == "lora":  # per-token logits: compare the real positions
        long, short = long[:, :10][mask.bool()], short[mask.bool()]
    torch.testing.assert_close(long, short, rtol=1e-5, atol=1e-5)


#: each task's default data before the declarations existed (run ids of older records depend on it)
OLD_DEFAULT_DATA = {
    "gpt2": "stdlib",
    "vit": "digits",
    "lora": "docstrings",
    "lora-cls": "fortunes",
    "cnn": "fashion-mnist",
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_declares_choices_a_metric_and_a_floor_from_the_known_ones(name: str) -> None:
    spec = task_spec(name)
    assert spec.data[0] == OLD_DEFAULT_DATA[name] and "synthetic" in spec.data
    assert spec.sizes and spec.metric in METRICS and spec.goal in ("min", "max") and spec.floor in FLOORS
    assert spec.eval_size


@pytest.mark.parametrize("name", ["gpt2", "vit", "cnn", "lora", "lora-cls"])
def test_a_floor_declared_computed_is_in_the_task_info_and_only_then(name: str) -> None:
    if name.startswith("lora"):
        pytest.importorskip("peft")
    task = build_task(name, "synthetic", "tiny", 0, 4)
    assert bool(task.info.get("floors")) == task_spec(name).floor_computed


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_computed_floor_names_the_model_verdicts_read_for_both_splits(name: str) -> None:
    """Else claims.recorded_floor finds no floor and every verdict of the task is *inconclusive*."""
    if name.startswith("lora"):
        pytest.importorskip("peft")
    spec = task_spec(name)
    if not spec.floor_computed:
        pytest.skip(f"{name} declares its floor but does not compute it")
    model = spec.floor_model
    assert model is not None, f"{name}: floor {spec.floor!r} has no entry in FLOOR_MODELS"
    floors = build_task(name, "synthetic", "tiny", 0, 4).info["floors"]
    assert {f"{model}_val", f"{model}_test"} <= set(floors)


@pytest.mark.parametrize("name", ["vit", "cnn", "lora-cls"])
def test_a_classification_task_says_what_a_diverged_run_scores(name: str) -> None:
    if name.startswith("lora"):
        pytest.importorskip("peft")
    task = build_task(name, "synthetic", "tiny", 0, 4)
    assert task_spec(name).goal == "max" and 0 < task.info["chance_accuracy"] < 1


@pytest.mark.parametrize("name", ["vit", "cnn", "lora-cls"])
def test_a_classification_task_declares_the_size_its_accuracies_are_counted_over(name: str) -> None:
    """Each accuracy is k / m for the declared m: the binomial noise the verdicts add depends on it."""
    if name.startswith("lora"):
        pytest.importorskip("peft")
    task = build_task(name, "synthetic", "tiny", 0, 4)
    sizes = task.info["eval_sizes"]
    assert set(sizes) == {"val", "test"} and all(isinstance(m, int) and m > 0 for m in sizes.values())
    metrics = task.evaluate(task.model)
    for split, m in sizes.items():
        hits = metrics[f"{split}_accuracy"] * m
        assert abs(hits - round(hits)) < 1e-2, (split, m, metrics[f"{split}_accuracy"])


@pytest.mark.parametrize("name", ["vit", "cnn", "lora-cls"])
def test_a_classification_task_s_outcomes_are_its_accuracies_example_by_example(name: str) -> None:
    if name.startswith("lora"):
        pytest.importorskip("peft")
    task = build_task(name, "synthetic", "tiny", 0, 4)
    assert task.outcomes is not None and task.outcomes() == {}  # nothing evaluated yet
    for _ in range(2):  # at the initial weights, then at other ones
        metrics, outcomes = task.evaluate(task.model), task.outcomes()
        assert {split: len(flags) for split, flags in outcomes.items()} == task.info["eval_sizes"]
        for split, flags in outcomes.items():
            assert flags.dtype == torch.bool
            assert flags.double().mean().item() == pytest.approx(metrics[f"{split}_accuracy"], abs=1e-6)
        with torch.no_grad():
            for p in task.model.parameters():
                p.add_(torch.randn_like(p), alpha=0.5)


def test_tensors_digest_tells_apart_order_values_and_shape() -> None:
    x, y = torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 2])
    assert tensors_digest((x, y)) == tensors_digest((x.clone(), y.clone()))
    assert len({
        tensors_digest((x, y)), tensors_digest((x[[1, 0, 2]], y[[1, 0, 2]])), tensors_digest((x, y.flip(0))),
        tensors_digest((x.reshape(2, 3), y)), tensors_digest((x.double(), y)),
    }) == 5  # fmt: skip


@pytest.mark.parametrize("name", ["vit", "cnn", "lora-cls"])
def test_a_classification_task_names_the_examples_it_scores_in_order(name: str) -> None:
    """Per-example outcomes are paired across runs only where their digests say the sets are one."""
    if name.startswith("lora"):
        pytest.importorskip("peft")
    a, b = (build_task(name, "synthetic", "tiny", seed, 4).info["eval_digests"] for seed in (0, 1))
    assert set(a) == {"val", "test"} and a["val"] != a["test"]
    assert a == b  # the run seed draws batches and initial weights, never the evaluation sets


@pytest.mark.parametrize("name", ["gpt2", "lora"])
def test_a_language_model_task_has_no_outcomes(name: str) -> None:
    if name.startswith("lora"):
        pytest.importorskip("peft")
    assert build_task(name, "synthetic", "tiny", 0, 4).outcomes is None


def test_the_docs_table_of_metrics_and_floors_equals_the_declarations() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "experiments.md").read_text()
    for name in TASKS:
        spec = task_spec(name)
        pending = "" if spec.floor_computed or spec.floor == "none" else " (declared, not yet computed)"
        row = f"| `{name}` | `{spec.metric}` ({spec.goal}) | {spec.eval_size} | {spec.floor}{pending} |"
        assert row in docs, row
