"""Causal-LM LoRA fine-tuning of SmolLM2-135M-Instruct (peft, on ``q_proj`` and ``v_proj``).

Each example is ``"<signature>\\n→ <docstring><eos>"`` in ``CONTEXT`` tokens; the loss counts only
the docstring tokens (labels are -100 on the prompt and the padding). LoRA keeps its standard
initialisation (B = 0, A random), so every A's first gradient is zero; the evaluation reports
whether the A matrices trained anyway (:mod:`~sgdsai_lab.tasks.lora_metrics`). The base
model is frozen; only the LoRA factors reach the optimizer. ``size`` sets the rank (alpha = 2 x rank).

Data: ``docstrings`` (stdlib signature -> first docstring paragraph, 7.3k pairs; validation on 64
pairs from held-out files; needs ``sgdsai data fetch smollm2``) or ``synthetic`` (a random
2-layer Llama, vocabulary 64, learning to map 8 random tokens through a fixed permutation: no
files).
"""

from __future__ import annotations

from typing import Any

import torch

from sgdsai_lab.tasks import Task, TaskSpec, length_sorted_chunks, row_batches, trim_padding
from sgdsai_lab.tasks.lora_metrics import lora_metrics, lora_snapshot

RANKS = {"tiny": 8, "small": 16, "base": 32}
CONTEXT = 64
EVAL_EXAMPLES = 64
EVAL_CHUNK = 16
SPEC = TaskSpec(
    data=("docstrings", "synthetic"),
    sizes=tuple(RANKS),
    metric="val_loss",
    eval_size=f"{EVAL_EXAMPLES} held-out examples",
    floor="none",
    floor_computed=False,
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


def _synthetic_model() -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    s = SYNTHETIC
    config = LlamaConfig(
        vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=2 * s["hidden"], num_hidden_layers=2,
        num_attention_heads=s["heads"], num_key_value_heads=s["heads"] // 2, max_position_embeddings=s["context"],
        bos_token_id=1, eos_token_id=3, pad_token_id=0, initializer_range=0.1,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def build(data: str, size: str, seed: int, batch_size: int | None = None) -> Task:
    from peft import LoraConfig, get_peft_model

    from sgdsai_lab.sources import pretrained

    if size not in RANKS:
        raise ValueError(f"lora size must be one of {', '.join(SPEC.sizes)}, not {size!r}")
    rank, batch_size = RANKS[size], batch_size or 4
    torch.manual_seed(seed)
    if data == "docstrings":
        tokenizer, base = pretrained.load_smollm2()
        train_pairs, val_pairs = pretrained.docstring_pairs()
        val_pairs = val_pairs[:: max(1, len(val_pairs) // EVAL_EXAMPLES)][:EVAL_EXAMPLES]  # spread over files
        context, pad = CONTEXT, tokenizer.pad_token_id
        train = pack(docstring_examples(tokenizer, train_pairs), context, pad)
        val = pack(docstring_examples(tokenizer, val_pairs), context, pad)
    elif data == "synthetic":
        base = _synthetic_model()
        examples = synthetic_examples(SYNTHETIC["examples"] + EVAL_EXAMPLES)
        context, pad = SYNTHETIC["context"], 0
        train = pack(examples[EVAL_EXAMPLES:], context, pad)
        val = pack(examples[:EVAL_EXAMPLES], context, pad)
    else:
        raise ValueError(f"lora data must be one of {', '.join(SPEC.data)}, not {data!r}")

    base.config.use_cache = False  # training needs no key/value cache
    val_chunks = length_sorted_chunks(val, EVAL_CHUNK)
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                      task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(base, lora)
    initial = lora_snapshot(model)

    draw = row_batches(train, batch_size, seed)

    def batch(step: int) -> Batch:
        return trim_padding(draw(step))

    def loss(model: torch.nn.Module, b: Batch) -> torch.Tensor:
        return model(input_ids=b[0], attention_mask=b[1], labels=b[2]).loss

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        """Token-weighted mean loss over the held-out targets, and the LoRA factors' drift."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for chunk in val_chunks:
            ids, mask, labels = (t.to(device) for t in chunk)
            tokens = int((labels[:, 1:] != IGNORE).sum())  # the model shifts labels by one
            total += loss(model, (ids, mask, labels)).item() * tokens
            count += tokens
        model.train(was_training)
        return {"val_loss": total / count, **lora_metrics(model, initial)}

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
            "dim": config.hidden_size,
            "n_heads": config.num_attention_heads,
            "adam_mini": {"adam_block_names": ["lora_"]},
        },
        description=f"LoRA r={rank} (q,v) on {'SmolLM2-135M' if data == 'docstrings' else 'a tiny Llama'}, "
        f"{data}, batch {batch_size} x {context} tokens",
    )
