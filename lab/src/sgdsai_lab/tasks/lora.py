"""Causal-LM LoRA fine-tuning of SmolLM2-135M-Instruct (peft, on ``q_proj`` and ``v_proj``).

Each example is ``"<signature>\\n→ <docstring><eos>"`` in ``CONTEXT`` tokens; the loss counts only
the docstring tokens (labels are -100 on the prompt and the padding). LoRA keeps its standard
initialisation (B = 0, A random), so every A's first gradient is zero; the evaluation reports
whether the A matrices trained anyway (`lora_metrics`). The base
model is frozen; only the LoRA factors reach the optimizer. ``size`` sets the rank (alpha = 2 x rank).

Data: ``docstrings`` (stdlib signature -> first docstring paragraph, 7.3k training pairs; needs
``sgdsai data fetch smollm2``) or ``synthetic`` (a random 2-layer Llama, vocabulary 64, learning
to map 8 random tokens through a fixed permutation: no files).

The evaluation reports ``val_loss`` (which sweeps select on) and ``test_loss`` (which verdicts
report) on `EVAL_EXAMPLES` pairs each, spread over held-out files: the validation and the
test pairs come from different files, and neither shares a file with a training pair. The floor
is the untrained model's loss on the same targets (B = 0, so the base model's own), in
``info["floors"]`` as ``untrained_val`` and ``untrained_test``; for ``docstrings`` it is computed
once and cached (`sgdsai_lab.fetch.cached_json`).
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from typing import Any

import torch

from sgdsai_lab.tasks import Task, TaskSpec, length_sorted_chunks, row_batches, trim_padding
from sgdsai_lab.tasks.lora_metrics import lora_metrics, lora_snapshot

RANKS = {"tiny": 8, "small": 16, "base": 32}
CONTEXT = 64
EVAL_EXAMPLES = {"val": 64, "test": 128}  #: evaluation pairs of each split
EVAL_CHUNK = 16
SPEC = TaskSpec(
    data=("docstrings", "synthetic"),
    sizes=tuple(RANKS),
    metric="val_loss",
    eval_size=f"{EVAL_EXAMPLES['val']} held-out examples for validation, {EVAL_EXAMPLES['test']} "
    "from other held-out files for test",
    floor="untrained",
    floor_computed=True,
)
IGNORE = -100  #: label of positions the loss skips
SYNTHETIC = {"vocab": 64, "hidden": 32, "heads": 4, "context": 24, "length": 8, "examples": 2000}

Example = tuple[list[int], list[int]]  #: (prompt ids, target ids)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  #: input_ids, attention_mask, labels


def pack(examples: list[Example], context: int, pad: int) -> Batch:
    """Right-padded ``(input_ids, attention_mask, labels)``. A prompt keeps at most half the
    context so that some target tokens always remain; the target is cut at the context's end."""
    ids, mask, labels = [], [], []
    for prompt, target in examples:
        prompt = prompt[-(context // 2) :]  # keep the end: it holds the "→" that cues the answer
        row = (prompt + target)[:context]
        fill = context - len(row)
        ids.append(row + [pad] * fill)
        mask.append([1] * len(row) + [0] * fill)
        labels.append(([IGNORE] * len(prompt) + target)[:context] + [IGNORE] * fill)
    return torch.tensor(ids), torch.tensor(mask), torch.tensor(labels)


def docstring_examples(tokenizer: Any, pairs: tuple[tuple[str, str], ...]) -> list[Example]:
    """Prompt ``"<signature>\\n→"``, target ``" <docstring><eos>"`` (byte-level BPE merges a word's
    leading space into it, so the space starts the target)."""
    prompts = tokenizer([f"{s}\n→" for s, _ in pairs], add_special_tokens=False)["input_ids"]
    targets = tokenizer([f" {d}" for _, d in pairs], add_special_tokens=False)["input_ids"]
    return [(p, [*t, tokenizer.eos_token_id]) for p, t in zip(prompts, targets)]


def synthetic_examples(n: int, seed: int = 0) -> list[Example]:
    """``1, x_1..x_L, 2`` -> ``perm(x_1)..perm(x_L), 3`` over tokens 4..63 with a fixed permutation."""
    vocab, length = SYNTHETIC["vocab"], SYNTHETIC["length"]
    gen = torch.Generator().manual_seed(seed)
    perm = 4 + torch.randperm(vocab - 4, generator=gen)
    x = torch.randint(4, vocab, (n, length), generator=gen)
    return [([1, *row.tolist(), 2], [*perm[row - 4].tolist(), 3]) for row in x]


def spread(pairs: tuple[Any, ...], n: int) -> tuple[Any, ...]:
    """``n`` of ``pairs`` at an even stride (all of them if there are fewer): spread over the files
    they come from, in order."""
    return pairs[:: max(1, len(pairs) // n)][:n]


Chunks = list[Batch]  #: one evaluation split, as `length_sorted_chunks`


@torch.no_grad()
def split_loss(model: torch.nn.Module, chunks: Chunks) -> float:
    """Token-weighted mean loss over the targets of one evaluation split (eval mode, restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for chunk in chunks:
        ids, mask, labels = (t.to(device) for t in chunk)
        tokens = int((labels[:, 1:] != IGNORE).sum())  # the model shifts labels by one
        total += model(input_ids=ids, attention_mask=mask, labels=labels).loss.item() * tokens
        count += tokens
    model.train(was_training)
    return total / count


def untrained_floors(model: torch.nn.Module, splits: dict[str, Chunks]) -> dict[str, float]:
    """``untrained_<split>``: `split_loss` of ``model`` as it is, before any training."""
    return {f"untrained_{name}": split_loss(model, chunks) for name, chunks in splits.items()}


def data_digest(splits: dict[str, Batch]) -> str:
    """sha256 of the evaluation tensors, in split order: what a cached floor was computed on."""
    digest = hashlib.sha256()
    for name, tensors in splits.items():
        digest.update(name.encode())
        for t in tensors:
            digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def _synthetic_model() -> Any:
    """The stand-in for a pretrained model: a random 2-layer Llama drawn from a fixed seed, so that
    like a downloaded model it is the same for every run seed (which draws LoRA's A and the batches),
    and the untrained floor is one value per setting."""
    from transformers import LlamaConfig, LlamaForCausalLM

    s = SYNTHETIC
    config = LlamaConfig(
        vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=2 * s["hidden"], num_hidden_layers=2,
        num_attention_heads=s["heads"], num_key_value_heads=s["heads"] // 2, max_position_embeddings=s["context"],
        bos_token_id=1, eos_token_id=3, pad_token_id=0, initializer_range=0.1,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LlamaForCausalLM(config)


def build(data: str, size: str, seed: int, batch_size: int | None = None) -> Task:
    from peft import LoraConfig, get_peft_model

    from sgdsai_lab import fetch
    from sgdsai_lab.sources import pretrained

    if size not in RANKS:
        raise ValueError(f"lora size must be one of {', '.join(SPEC.sizes)}, not {size!r}")
    rank, batch_size = RANKS[size], batch_size or 4
    torch.manual_seed(seed)
    if data == "docstrings":
        tokenizer, base = pretrained.load_smollm2()
        train_pairs, *held = pretrained.docstring_pairs()
        context, pad = CONTEXT, tokenizer.pad_token_id
        train = pack(docstring_examples(tokenizer, train_pairs), context, pad)
        evaluation = {
            name: pack(docstring_examples(tokenizer, spread(pairs, EVAL_EXAMPLES[name])), context, pad)
            for name, pairs in zip(EVAL_EXAMPLES, held)
        }
    elif data == "synthetic":
        base = _synthetic_model()
        n_val, n_test = EVAL_EXAMPLES.values()
        examples = synthetic_examples(SYNTHETIC["examples"] + n_val + n_test)
        context, pad = SYNTHETIC["context"], 0
        train = pack(examples[n_val + n_test :], context, pad)
        evaluation = {"val": pack(examples[:n_val], context, pad),
                      "test": pack(examples[n_val : n_val + n_test], context, pad)}  # fmt: skip
    else:
        raise ValueError(f"lora data must be one of {', '.join(SPEC.data)}, not {data!r}")

    base.config.use_cache = False  # training needs no key/value cache
    splits = {name: length_sorted_chunks(b, EVAL_CHUNK) for name, b in evaluation.items()}
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                      task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(base, lora)
    initial = lora_snapshot(model)
    if data == "docstrings":  # the same for every rank and seed (B = 0): computed once
        key = {"model": pretrained.SMOLLM2_FILES, "data": data_digest(evaluation), "chunk": EVAL_CHUNK,
               "torch": torch.__version__, "transformers": version("transformers")}  # fmt: skip
        floors = fetch.cached_json("lora-floors", key, lambda: untrained_floors(model, splits))
    else:  # the small random base model costs nothing to evaluate
        floors = untrained_floors(model, splits)

    draw = row_batches(train, batch_size, seed)

    def batch(step: int) -> Batch:
        return trim_padding(draw(step))

    def loss(model: torch.nn.Module, b: Batch) -> torch.Tensor:
        return model(input_ids=b[0], attention_mask=b[1], labels=b[2]).loss

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        """``val_loss`` and ``test_loss`` (`split_loss`), and the LoRA factors' drift."""
        losses = {f"{name}_loss": split_loss(model, chunks) for name, chunks in splits.items()}
        return {**losses, **lora_metrics(model, initial)}

    config = base.config
    layer = "base_model.model.model.layers.{}.self_attn.{}_proj.lora_{}.default.weight"
    last = config.num_hidden_layers - 1
    return Task(
        model=model,
        batch=batch,
        loss=loss,
        evaluate=evaluate,
        traced=[
            layer.format(0, "q", "A"),
            layer.format(0, "q", "B"),
            layer.format(0, "v", "A"),
            layer.format(last, "v", "B"),
        ],
        info={  # Adam-mini's per-head blocks do not fit rank-r factors: it treats them as plain Adam
            "floors": floors,
            "dim": config.hidden_size,
            "n_heads": config.num_attention_heads,
            "adam_mini": {"adam_block_names": ["lora_"]},
        },
        description=f"LoRA r={rank} (q,v) on {'SmolLM2-135M' if data == 'docstrings' else 'a tiny Llama'}, "
        f"{data}, batch {batch_size} x {context} tokens",
    )
