r"""``sgdsai bench memory``: optimizer-state bytes of GPT-2 and Llama-2 models, with no allocation.

Each model is built from a hand-written transformers config on the ``meta`` device (no download,
no memory), each optimizer takes one real step on it with ``meta`` gradients, and the state it
created is counted: per-element buffers live on ``meta`` and are counted by shape; per-tensor
scalars (SGD-SaI's ``lr_scale``, AdamW's ``step``) are real CPU tensors. SGD-SaI's scales cannot be
measured from ``meta`` gradients, so they are imposed (``state[p]["lr_scale"] = 1``), which creates
exactly the state a measurement would. Expected, for :math:`N` float32 parameters in :math:`B`
tensors: SGD-SaI and SGD-momentum :math:`4N + 4B` bytes (SGD-SaI with a bfloat16 buffer
:math:`2N + 4B`), AdamW :math:`8N + 4B`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sgdsai_lab import records, zoo

logger = logging.getLogger(__name__)

GIB = 1 << 30

#: name -> (config class, kwargs, Adam-mini's (dim, n_heads)). Sizes are the published ones.
MODELS: dict[str, tuple[str, dict[str, Any], tuple[int, int]]] = {
    "gpt2-124m": ("GPT2Config", dict(n_embd=768, n_layer=12, n_head=12), (768, 12)),
    "gpt2-355m": ("GPT2Config", dict(n_embd=1024, n_layer=24, n_head=16), (1024, 16)),
    "gpt2-774m": ("GPT2Config", dict(n_embd=1280, n_layer=36, n_head=20), (1280, 20)),
    "gpt2-1.5b": ("GPT2Config", dict(n_embd=1600, n_layer=48, n_head=25), (1600, 25)),
    "llama-2-7b": (
        "LlamaConfig",
        dict(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            tie_word_embeddings=False,
        ),
        (4096, 32),
    ),
}

#: Table 1 of the paper (A100, "GB" = GiB, from the torch profiler's OPTIMIZER_STATE category).
PAPER_GIB = {
    "gpt2-1.5b": {"sgdsai": 5.93, "adamw": 11.86, "sgd-momentum": 5.93, "adam-mini": 6.52},
    "llama-2-7b": {"sgdsai": 25.15, "adamw": 49.48, "sgd-momentum": 25.15, "adam-mini": 27.21},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "memory", help="optimizer-state bytes of GPT-2 124M..1.5B and Llama-2-7B (meta device)"
    )
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--out", type=Path, default=records.RECORDS)
    p.set_defaults(run=run)


def build_meta(name: str) -> nn.Module:
    """The model on the ``meta`` device: shapes only, nothing allocated, nothing downloaded."""
    return build_meta_from(MODELS[name])


def build_meta_from(spec: tuple[str, dict[str, Any], Any]) -> nn.Module:
    """`build_meta` for a ``(config class, kwargs, ...)`` entry of `MODELS`."""
    import transformers

    config_class, kwargs = spec[0], spec[1]
    config = getattr(transformers, config_class)(**kwargs)
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(config)


def candidates(name: str) -> dict[str, Callable]:
    dim, heads = MODELS[name][2]
    return {
        "sgdsai": zoo.profiled("sgdsai", foreach=False),
        "sgdsai bf16 momentum": zoo.profiled("sgdsai", foreach=False, momentum_dtype=torch.bfloat16),
        "adamw": zoo.profiled("adamw", foreach=False),
        "sgd-momentum": zoo.profiled("sgdm", foreach=False),
        "adam-mini": zoo.profiled("adam-mini", {"dim": dim, "n_heads": heads}),
    }


def measure(model: nn.Module, build: Callable) -> dict[str, Any]:
    """One step of ``build``'s optimizer on ``model`` with ``empty_like`` gradients; its state bytes."""
    named = list(model.named_parameters())  # tied tensors appear once
    opt = build(named)
    for _, p in named:
        p.grad = torch.empty_like(p)
        if isinstance(opt, torch.optim.Optimizer) and type(opt).__name__ == "SGDSaI":
            opt.state[p]["lr_scale"] = torch.tensor(1.0)  # what a measurement stores
    opt.step()
    device = named[0][1].device
    result = zoo.state_breakdown(opt, device)
    for _, p in named:
        p.grad = None
    return result


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    results = []
    todo = [(m, o) for m in args.models for o in candidates(m)]
    models: dict[str, nn.Module] = {}
    for model_name, opt_name in tqdm(todo, desc="memory", unit="run"):
        if model_name not in models:
            models.clear()
            models[model_name] = build_meta(model_name)
        model = models[model_name]
        params = list(model.parameters())
        numel = sum(p.numel() for p in params)
        param_bytes = sum(p.numel() * p.element_size() for p in params)
        try:
            got = measure(model, candidates(model_name)[opt_name])
        except Exception as exc:
            logger.warning("%s on %s failed on meta: %r", opt_name, model_name, exc)
            got = {"error": repr(exc)}
        entry = {
            "model": model_name,
            "optimizer": opt_name,
            "params": numel,
            "tensors": len(params),
            "param_bytes": param_bytes,
            "method": "measured on meta",
            **got,
        }
        if "total" in got:
            entry["gib"] = got["total"] / GIB
            entry["gb"] = got["total"] / 1e9
            entry["state_over_params"] = got["total"] / param_bytes
        paper = PAPER_GIB.get(model_name, {}).get(opt_name)
        if paper is not None:
            entry["paper_gib"] = paper
        results.append(entry)
        logger.debug("%s", entry)
    config = {
        "models": {m: MODELS[m][:2] for m in args.models},
        "dtype": "float32",
        "hyperparameters": {"lr": zoo.PROFILE_LR, "weight_decay": zoo.PROFILE_WEIGHT_DECAY},
    }
    notes = (
        "Optimizer state after one step, counted tensor by tensor on the meta device; tied embeddings count once. "
        "GiB = 2**30 bytes (the paper's 'GB'), GB = 1e9 bytes."
    )
    rec = records.bench_record(
        "memory_state", config, results, packages=("adam-mini",), notes=notes, root=args.out
    )
    path = records.write(rec, args.out)
    plot(rec.to_dict(), records.figure_path(rec, args.out, "memory"))
    for line in markdown(rec.to_dict()):
        logger.info(line)
    logger.info("record: %s", path)
    return 0


def markdown(rec: dict[str, Any]) -> list[str]:
    """The record as a markdown table: state GiB per model and optimizer, the paper's in brackets."""
    rows = [r for r in rec["results"] if "gib" in r]
    opts = list(dict.fromkeys(r["optimizer"] for r in rows))
    lines = ["| model | params | " + " | ".join(opts) + " |", "|---|---:|" + "---:|" * len(opts)]
    for model in dict.fromkeys(r["model"] for r in rows):
        cells = {r["optimizer"]: r for r in rows if r["model"] == model}
        first = next(iter(cells.values()))
        text = [_cell(cells.get(o)) for o in opts]
        lines.append(f"| {model} | {first['params'] / 1e9:.3f} B | " + " | ".join(text) + " |")
    return lines


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    paper = f" (paper {r['paper_gib']:.2f})" if "paper_gib" in r else ""
    return f"{r['gib']:.2f} GiB{paper}"


def plot(rec: dict[str, Any], path: Path) -> None:
    """State GiB against parameter count, one line per optimizer, the paper's points as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    rows = [r for r in rec["results"] if "gib" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    styles = ["o-", "s-", "^-", "v--", "D:"]  # equal curves (SGD-SaI, SGDM, Adam-mini) stay visible
    for k, opt in enumerate(dict.fromkeys(r["optimizer"] for r in rows)):
        mine = [r for r in rows if r["optimizer"] == opt]
        xs, ys = [r["params"] / 1e9 for r in mine], [r["gib"] for r in mine]
        line = ax.plot(xs, ys, styles[k % len(styles)], label=opt, ms=7 - k, alpha=0.85)[0]
        paper = [r for r in mine if "paper_gib" in r]
        ax.plot(
            [r["params"] / 1e9 for r in paper],
            [r["paper_gib"] for r in paper],
            "x",
            ms=9,
            color=line.get_color(),
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="parameters (billions)",
        ylabel="optimizer state (GiB)",
        title="Optimizer state, fp32 (o measured, x paper Table 1)",
    )
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
