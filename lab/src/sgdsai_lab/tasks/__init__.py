"""Training tasks: a model, a deterministic batch stream, a loss and an evaluation.

Each task module declares what it offers and how it is judged in one `TaskSpec`, its
``SPEC`` (`task_spec`), defines ``build(data, size, seed, batch_size) -> Task`` and supports
``data="synthetic"``, a tiny generated dataset that needs no files, for tests.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sgdsai_lab.metrics import METRICS, Goal

#: task name -> module that builds it
TASKS = {
    "gpt2": "sgdsai_lab.tasks.gpt2",
    "vit": "sgdsai_lab.tasks.vit",
    "lora": "sgdsai_lab.tasks.lora",
    "lora-cls": "sgdsai_lab.tasks.lora_cls",
    "cnn": "sgdsai_lab.tasks.cnn",
}


#: what a task's result is compared against to tell learning from memorised statistics
FLOORS = {
    "n-gram": "the unigram and bigram cross-entropy of the validation targets (task.info['floors'])",
    "linear": "the accuracy of a linear model on the same pixels",
    "majority": "the accuracy of always answering the most frequent class",
    "untrained": "the loss of the model before fine-tuning (LoRA's B = 0: the base model) on the same "
    "targets (task.info['floors'])",
    "none": "no floor is defined",
}
#: the model whose ``{model}_{split}`` value in ``task.info["floors"]`` verdicts are judged against, by floor
FLOOR_MODELS = {"n-gram": "bigram", "linear": "linear", "majority": "majority", "untrained": "untrained"}


@dataclass(frozen=True)
class TaskSpec:
    """One task's choices and yardsticks, declared once: the command line's ``--data`` and
    ``--size`` choices and a preset file's validation come from here."""

    data: tuple[str, ...]  #: its datasets, the default first
    sizes: tuple[str, ...]  #: its model sizes
    metric: str  #: the validation metric that picks the best run (a key of `METRICS`)
    eval_size: str  #: the evaluation set, in words
    floor: str  #: a key of FLOORS
    floor_computed: bool  #: whether runs record the floor's value (else it is declared, not yet computed)

    @property
    def floor_model(self) -> str | None:
        """The model of `FLOOR_MODELS` whose floor verdicts use (``None``: no floor)."""
        return FLOOR_MODELS.get(self.floor)

    @property
    def goal(self) -> Goal:
        """``"min"`` or ``"max"``: which way the metric is better."""
        return METRICS[self.metric]


def task_spec(name: str) -> TaskSpec:
    """The declaration of task ``name`` (its module's ``SPEC``)."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    spec: TaskSpec = importlib.import_module(TASKS[name]).SPEC
    return spec


@dataclass
class Task:
    model: nn.Module
    batch: Callable[[int], Any]  #: step -> batch; the same for every optimizer given the seed
    loss: Callable[[nn.Module, Any], Tensor]
    evaluate: Callable[[nn.Module], dict[str, float]]
    traced: list[str]  #: parameter names whose g-SNR is traced during training
    #: model facts some optimizers need (Adam-mini's ``dim``, ``n_heads``), and ``chance_accuracy``
    #: for classification (what a diverged run counts as in grid averages)
    info: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: classification: ``() -> {split: bool tensor}``, whether each evaluation example was
    #: classified correctly at the last ``evaluate``, in a fixed order (what pairs the
    #: evaluation-set noise of two optimizers in a verdict)
    outcomes: Callable[[], dict[str, Tensor]] | None = None


def build_task(name: str, data: str, size: str, seed: int, batch_size: int | None = None) -> Task:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name]).build(data, size, seed, batch_size)


def step_generator(seed: int, step: int) -> torch.Generator:
    """A generator for step ``step`` of a run with ``seed``: batches can be drawn in any order."""
    return torch.Generator().manual_seed(1_000_003 * seed + step)


def sample_rows(n: int, batch: int, seed: int, step: int) -> Tensor:
    """``batch`` indices in ``[0, n)`` drawn with replacement for one step."""
    return torch.randint(n, (batch,), generator=step_generator(seed, step))


def trim_padding(batch: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """``(input_ids, attention_mask, labels)`` without the trailing columns that are padding in
    every row. With right padding the outputs at real tokens do not change, and the cost falls
    with the longest row instead of the padded length. Per-token labels are cut alike."""
    ids, mask, labels = batch
    length = int(mask.sum(1).max())
    return ids[:, :length], mask[:, :length], labels[:, :length] if labels.dim() == 2 else labels


def length_sorted_chunks(
    batch: tuple[Tensor, Tensor, Tensor], size: int
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """An evaluation set as chunks of ``size`` rows sorted by length, each trimmed of its shared
    padding: rows of similar length share a chunk, so little padding is computed."""
    order = batch[1].sum(1).argsort(stable=True)
    return [trim_padding(chunk) for chunk in zip(*(t[order].split(size) for t in batch))]


def tensors_digest(tensors: Iterable[Tensor]) -> str:
    """The first 16 hex digits of a sha256 of ``tensors``' shapes, dtypes and values, in order: an
    evaluation set's identity, so that runs whose per-example outcomes are paired are known to have
    scored the same examples in the same order."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def row_batches(
    columns: tuple[Tensor, ...], batch_size: int, seed: int
) -> Callable[[int], tuple[Tensor, ...]]:
    """step -> the same ``batch_size`` rows of every tensor in ``columns``, drawn with
    `sample_rows`."""

    def batch(step: int) -> tuple[Tensor, ...]:
        rows = sample_rows(len(columns[0]), batch_size, seed, step)
        return tuple(column[rows] for column in columns)

    return batch
