"""``sgdsai demo``: a tiny GPT-2 trained on the Python standard library, SGD-SaI against AdamW.

The corpus is the installed standard library's own source (no download), read as bytes, so the
vocabulary is 256 and there is no tokenizer to train; every 10th file is held out for validation.
Both optimizers see the same batches.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import torch

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="train a tiny GPT-2 on the stdlib with SGD-SaI and AdamW")
    p.add_argument("--steps", type=int, default=150, help="optimizer steps per run (default: 150)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--context", type=int, default=128, help="tokens (bytes) per sequence")
    p.add_argument("--corpus-bytes", type=int, default=4_000_000, help="stdlib bytes to read")
    p.add_argument("--sgdsai-lr", type=float, default=1.0)
    p.add_argument("--adamw-lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def tiny_gpt2(context: int) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=256, n_positions=context, n_embd=128, n_layer=2, n_head=4,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config)


def batches(tokens: torch.Tensor, steps: int, batch: int, context: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(tokens) - context, (steps, batch), generator=gen)
    return [torch.stack([tokens[s : s + context] for s in row]) for row in starts]


def build_optimizer(name: str, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    from sgdsai import SGDSaI

    if name == "SGD-SaI":
        return SGDSaI(model.named_parameters(), lr, momentum=0.9, weight_decay=1e-4)
    return torch.optim.AdamW(model.parameters(), lr, betas=(0.9, 0.95), weight_decay=0.1)


def train(name: str, lr: float, args: argparse.Namespace, train_batches, val_batches) -> dict:
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    model = tiny_gpt2(args.context)
    opt = build_optimizer(name, model, lr)
    warmup = max(1, args.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: min(1.0, (t + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * t / args.steps))
    )
    step_times = []
    bar = tqdm(train_batches, desc=f"{name:8s}", unit="step", leave=False)
    for x in bar:
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        start = time.perf_counter()
        opt.step()
        step_times.append(time.perf_counter() - start)
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    with torch.no_grad():
        val = sum(model(input_ids=x, labels=x).loss.item() for x in val_batches) / len(val_batches)
    state_bytes = sum(
        t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if torch.is_tensor(t)
    )
    return {
        "optimizer": name,
        "lr": lr,
        "train_loss": loss.item(),
        "val_loss": val,
        "state_bytes": state_bytes,
        "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "median_step_ms": 1e3 * sorted(step_times)[len(step_times) // 2],
    }


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from sgdsai.experiments.data import stdlib_split

    train_tokens, val_tokens = stdlib_split(args.corpus_bytes)  # every 10th file held out
    train_batches = batches(train_tokens, args.steps, args.batch_size, args.context, args.seed)
    val_batches = batches(val_tokens, 20, args.batch_size, args.context, args.seed + 1)
    logger.info("corpus: %d + %d bytes of stdlib source (train + held-out files); %d steps of %dx%d bytes",
                len(train_tokens), len(val_tokens), args.steps, args.batch_size, args.context)  # fmt: skip
    results = [
        train("SGD-SaI", args.sgdsai_lr, args, train_batches, val_batches),
        train("AdamW", args.adamw_lr, args, train_batches, val_batches),
    ]
    logger.info("\n%-8s %8s %10s %8s %14s %13s", "", "lr", "train loss", "val loss", "state (bytes)",
                "step (median)")  # fmt: skip
    for r in results:
        logger.info("%-8s %8.0e %10.3f %8.3f %14s %10.2f ms", r["optimizer"], r["lr"], r["train_loss"],
                    r["val_loss"], f"{r['state_bytes']:,}", r["median_step_ms"])  # fmt: skip
    ratio = results[0]["state_bytes"] / results[1]["state_bytes"]
    logger.info("\nSGD-SaI keeps %.1f%% of AdamW's optimizer state (parameters: %s bytes).",
                100 * ratio, f"{results[0]['param_bytes']:,}")  # fmt: skip
    return 0
