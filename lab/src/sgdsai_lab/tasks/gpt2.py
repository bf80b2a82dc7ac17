"""Causal language modelling with a small GPT-2 (``GPT2LMHeadModel``) on bytes or BPE tokens.

Data: ``stdlib`` (the installed standard library's source as bytes, vocabulary 256, 4 MB, every
10th file held out), ``synthetic`` (20k tokens of a random first-order Markov chain over 16
symbols: learnable, no files; the last 10% held out), or a fetched text corpus in the ids of its
own 8192-token byte-level BPE (`sgdsai_lab.sources.bpe`, every 10th ~100 kB chunk held out):
``english`` (Austen, the King James Bible, Shakespeare; 3.7 M tokens), ``python-docs`` or
``english+python-docs``. The model's vocabulary is the data's.

The held-out tokens are cut in two: the first half gives the validation windows (``val_loss``,
which sweeps select on), the second the test windows (``test_loss``, which verdicts report). Both
are `EVAL_WINDOWS` fixed windows, the same whatever the training batch size, and the task
declares their n-gram floors (`sgdsai_lab.floors`) in ``info["floors"]``.
"""

from __future__ import annotations

import torch

from sgdsai_lab.floors import ngram_floors
from sgdsai_lab.tasks import Task, TaskSpec, sample_rows, step_generator

SIZES = {  # n_embd, n_layer, n_head, context
    "tiny": (32, 1, 2, 32),
    "mini": (64, 2, 2, 64),  # for BPE sweeps on 2 CPU cores: the 8k-vocabulary head dominates the cost
    "small": (128, 2, 4, 128),
    "base": (256, 4, 4, 128),
}
EVAL_WINDOWS = 256  #: windows in each of the validation and test sets
EVAL_CHUNK = 32  #: windows per evaluation forward pass
BPE_DATA = ("english", "python-docs", "english+python-docs")
BPE_VOCAB = 8192
SPEC = TaskSpec(
    data=("stdlib", "synthetic", *BPE_DATA),
    sizes=tuple(SIZES),
    metric="val_loss",
    eval_size=f"{EVAL_WINDOWS} windows of the context length for validation, as many for test",
    floor="n-gram",
    floor_computed=True,
)


def markov_tokens(n: int, symbols: int = 16, seed: int = 0) -> torch.Tensor:
    """``n`` tokens of a first-order Markov chain with sparse random transitions (entropy ~1 nat)."""
    gen = torch.Generator().manual_seed(seed)
    logits = 3.0 * torch.randn(symbols, symbols, generator=gen)
    probs = logits.softmax(-1)
    uniform = torch.rand(n, generator=gen)
    cumulative = probs.cumsum(-1)
    out = torch.empty(n, dtype=torch.long)
    state = 0
    for i in range(n):
        state = min(int(torch.searchsorted(cumulative[state], uniform[i])), symbols - 1)
        out[i] = state
    return out


def build(data: str, size: str, seed: int, batch_size: int | None = None) -> Task:
    from transformers import GPT2Config, GPT2LMHeadModel

    from sgdsai_lab.sources import bpe, stdlib

    n_embd, n_layer, n_head, context = SIZES[size]
    batch_size = batch_size or 16
    vocab, units = 256, "bytes"
    if data == "stdlib":
        train, held_out = stdlib.stdlib_split(4_000_000)
    elif data == "synthetic":
        tokens = markov_tokens(20_000)
        train, held_out = tokens[:16_000], tokens[16_000:]
    elif data in BPE_DATA:
        train, held_out, vocab = bpe.token_ids(data, BPE_VOCAB)
        units = f"BPE-{BPE_VOCAB} tokens"
    else:
        raise ValueError(f"gpt2 data must be one of {', '.join(SPEC.data)}, not {data!r}")

    def windows(source: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        return torch.stack([source[s : s + context] for s in starts.tolist()])

    def batch(step: int) -> torch.Tensor:
        return windows(train, sample_rows(len(train) - context, batch_size, seed, step))

    def eval_windows(source: torch.Tensor, offset: int) -> torch.Tensor:
        gen = step_generator(10_000 + offset, 0)
        return windows(source, torch.randint(len(source) - context, (EVAL_WINDOWS,), generator=gen))

    half = len(held_out) // 2
    val, test = eval_windows(held_out[:half], 0), eval_windows(held_out[half:], 1)

    def loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return model(input_ids=x, labels=x).loss

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        out = {
            f"{name}_loss": sum(loss(model, x).item() for x in split.split(EVAL_CHUNK))
            / (EVAL_WINDOWS / EVAL_CHUNK)
            for name, split in (("val", val), ("test", test))
        }
        model.train(was_training)
        return out

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab, n_positions=context, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    last = n_layer - 1
    return Task(
        model=model,
        batch=batch,
        loss=loss,
        evaluate=evaluate,
        traced=[
            "transformer.wte.weight",
            "transformer.h.0.attn.c_attn.weight",
            f"transformer.h.{last}.mlp.c_proj.weight",
            "transformer.h.0.ln_1.weight",
            "transformer.h.0.mlp.c_fc.bias",
        ],
        info={
            "floors": ngram_floors(train, val, test, vocab),
            "eval_windows": EVAL_WINDOWS,
            "tokens_per_step": batch_size * context,
            "io_names": ["transformer.wte.weight", "transformer.wpe.weight"],  # wte is the tied head too
            "dim": n_embd,
            "n_heads": n_head,
            "adam_mini": {"wqk_names": ["c_attn"], "attn_proj_names": ["attn.c_proj"]},
        },
        description=f"GPT-2 {size} ({n_layer}x{n_embd}, ctx {context}) on {data} {units}, batch {batch_size}",
    )
