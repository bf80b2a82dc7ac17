"""Sequence classification by LoRA fine-tuning of all-MiniLM-L6-v2 (peft, on ``query``/``value``).

The 5-way classifier head is new and trained in full (peft's ``SEQ_CLS`` task keeps it in
``modules_to_save``); the encoder is frozen apart from the LoRA factors. Dropout is off, so the loss
is a function of the batch alone. As in `lora`, LoRA keeps its
standard initialisation (B = 0) and the evaluation reports whether the A matrices trained.
``size`` sets the rank (alpha = 2 x rank).

Data: ``fortunes`` (2,727 fortune-cookie texts from five categories, at most ``MAX_LEN`` tokens;
needs ``sgdsai data fetch minilm`` and ``sgdsai data fetch fortunes``) or ``synthetic`` (a random
2-layer BERT, vocabulary 64, on sequences whose class sets which band of tokens they are half made
of: no files).

A fixed stratified `HOLDOUT` of the examples is held out and cut, stratified again, into a
validation half (``val_loss``, ``val_accuracy``: what sweeps select on) and a test half
(``test_loss``, ``test_accuracy``: what verdicts report); on ``fortunes`` each half holds about
545 examples, as many as the whole 20% holdout of revision 2, so the accuracy's standard error
stays about 2 points. The floor is the accuracy of always answering the training split's most
frequent class, in ``info["floors"]`` as ``majority_val`` and ``majority_test``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from sgdsai_lab.tasks import (
    Task,
    TaskSpec,
    length_sorted_chunks,
    row_batches,
    tensors_digest,
    trim_padding,
)
from sgdsai_lab.tasks.lora_metrics import lora_metrics, lora_snapshot

RANKS = {"tiny": 8, "small": 16, "base": 32}
MAX_LEN = 64
HOLDOUT = 0.4  #: the held-out fraction, validation and test halves together
EVAL_CHUNK = 32
CLASSES = 5
SPEC = TaskSpec(
    data=("fortunes", "synthetic"),
    sizes=tuple(RANKS),
    metric="val_accuracy",
    eval_size=f"{HOLDOUT / 2:.0%} of the examples for validation, as many for test, stratified by class",
    floor="majority",
    floor_computed=True,
)
SYNTHETIC = {"vocab": 64, "hidden": 32, "length": 16, "examples": 1000}

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  #: input_ids, attention_mask, labels


def stratified_split(
    labels: torch.Tensor, fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, held-out)`` indices: ``round(fraction * n_c)`` random examples of every class ``c``
    are held out, so both parts keep the class proportions."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), not {fraction}")
    gen = torch.Generator().manual_seed(seed)
    train, held = [], []
    for c in labels.unique().tolist():
        rows = (labels == c).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=gen)]
        cut = round(fraction * len(rows))
        held.append(rows[:cut])
        train.append(rows[cut:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def three_way_split(labels: torch.Tensor, holdout: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train, val, test)`` indices: `stratified_split` holds out ``holdout`` of every
    class, then cuts that, stratified again, into halves (within one example of each class)."""
    train, held = stratified_split(labels, holdout)
    val, test = stratified_split(labels[held], 0.5, seed=1)
    return train, held[val], held[test]


def majority_floors(train_labels: torch.Tensor, splits: dict[str, torch.Tensor]) -> dict[str, float]:
    """``majority_<split>``: the accuracy on each split's labels of always answering the most
    frequent class of ``train_labels`` (the smallest such class on a tie)."""
    majority = int(train_labels.bincount().argmax())
    return {
        f"majority_{name}": (labels == majority).double().mean().item() for name, labels in splits.items()
    }


def synthetic_sequences(n: int, seed: int = 0) -> Batch:
    """Token 1 (a [CLS]) then ``length`` tokens, each from class ``c``'s band of 12 tokens
    (``4 + 12c`` to ``15 + 12c``) with probability 1/2 and uniform over 4..63 otherwise."""
    vocab, length = SYNTHETIC["vocab"], SYNTHETIC["length"]
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(CLASSES, (n,), generator=gen)
    band = 4 + 12 * labels[:, None] + torch.randint(12, (n, length), generator=gen)
    noise = torch.randint(4, vocab, (n, length), generator=gen)
    body = torch.where(torch.rand(n, length, generator=gen) < 0.5, band, noise)
    ids = torch.cat([torch.ones(n, 1, dtype=torch.long), body], 1)
    return ids, torch.ones_like(ids), labels


def _synthetic_model() -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    s = SYNTHETIC
    config = BertConfig(
        vocab_size=s["vocab"], hidden_size=s["hidden"], num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * s["hidden"], max_position_embeddings=s["length"] + 1,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0, initializer_range=0.1,
        num_labels=CLASSES,  # type: ignore[call-arg]
    )  # fmt: skip
    return BertForSequenceClassification(config)


def build(data: str, size: str, seed: int, batch_size: int | None = None) -> Task:
    from peft import LoraConfig, get_peft_model

    from sgdsai_lab.sources import pretrained

    if size not in RANKS:
        raise ValueError(f"lora-cls size must be one of {', '.join(SPEC.sizes)}, not {size!r}")
    rank, batch_size = RANKS[size], batch_size or 16
    torch.manual_seed(seed)  # the new classifier head (and, for synthetic, the whole model)
    if data == "fortunes":
        texts, labels, _ = pretrained.fortune_categories()
        tokenizer, base = pretrained.load_minilm(
            CLASSES, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        )
        encoded = tokenizer(
            texts, max_length=MAX_LEN, truncation=True, padding="max_length", return_tensors="pt"
        )
        examples = (encoded["input_ids"], encoded["attention_mask"], torch.tensor(labels))
    elif data == "synthetic":
        base = _synthetic_model()
        examples = synthetic_sequences(SYNTHETIC["examples"])
    else:
        raise ValueError(f"lora-cls data must be one of {', '.join(SPEC.data)}, not {data!r}")
    tokens, mask, classes = examples
    train_rows, *held = three_way_split(classes, HOLDOUT)
    train = (tokens[train_rows], mask[train_rows], classes[train_rows])
    held_rows = dict(zip(("val", "test"), held))
    splits = {
        name: length_sorted_chunks((tokens[rows], mask[rows], classes[rows]), EVAL_CHUNK)
        for name, rows in held_rows.items()
    }
    floors = majority_floors(train[2], {name: classes[rows] for name, rows in held_rows.items()})

    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["query", "value"], lora_dropout=0.0,
                      task_type="SEQ_CLS")  # fmt: skip
    model = get_peft_model(base, lora)
    initial = lora_snapshot(model)

    draw = row_batches(train, batch_size, seed)

    def batch(step: int) -> Batch:
        return trim_padding(draw(step))

    def loss(model: torch.nn.Module, b: Batch) -> torch.Tensor:
        return F.cross_entropy(model(input_ids=b[0], attention_mask=b[1]).logits, b[2])

    last: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        """Mean loss and accuracy on each of validation and test, and the LoRA factors' drift."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        out = {}
        for name, chunks in splits.items():
            logits = torch.cat(
                [
                    model(input_ids=chunk_ids.to(device), attention_mask=chunk_mask.to(device)).logits.cpu()
                    for chunk_ids, chunk_mask, _ in chunks
                ]
            )
            truth = torch.cat([chunk[2] for chunk in chunks])
            last[name] = logits.argmax(-1) == truth
            out[f"{name}_loss"] = F.cross_entropy(logits, truth).item()
            out[f"{name}_accuracy"] = last[name].float().mean().item()
        model.train(was_training)
        return {**out, **lora_metrics(model, initial)}

    def outcomes() -> dict[str, torch.Tensor]:
        """Per-example correctness at the last `evaluate`."""
        return dict(last)

    config = base.config
    layer = "base_model.model.bert.encoder.layer.0.attention.self.{}.lora_{}.default.weight"
    return Task(
        model=model,
        batch=batch,
        loss=loss,
        evaluate=evaluate,
        outcomes=outcomes,
        traced=[
            layer.format("query", "A"),
            layer.format("query", "B"),
            layer.format("value", "A"),
            "base_model.model.classifier.modules_to_save.default.weight",
        ],
        info={  # Adam-mini's per-head blocks do not fit rank-r factors: it treats them as plain Adam
            "floors": floors,
            "eval_sizes": {name: len(rows) for name, rows in held_rows.items()},
            "eval_digests": {
                name: tensors_digest(t for chunk in chunks for t in chunk) for name, chunks in splits.items()
            },
            "chance_accuracy": 1 / CLASSES,  # what a diverged run counts as in grid averages
            "dim": config.hidden_size,
            "n_heads": config.num_attention_heads,
            "adam_mini": {"adam_block_names": ["lora_"]},
        },
        description=f"LoRA r={rank} (query,value) + head on {'MiniLM-L6' if data == 'fortunes' else 'a tiny BERT'}, "
        f"{data} ({CLASSES} classes), batch {batch_size}",
    )
