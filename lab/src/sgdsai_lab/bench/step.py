r"""``sgdsai bench step``: optimizer step time on GPT-2-shaped parameters, against a bandwidth floor.

One set of float32 parameters with GPT-2's real shapes (``wte``, ``wpe``, per layer ``ln_1``,
``c_attn``, ``c_proj``, ``ln_2``, ``c_fc``, ``mlp.c_proj`` with biases, ``ln_f``) and one fixed set
of gradients are shared by every candidate; each candidate keeps its own state. Rounds interleave
the candidates in a rotating order, and each reported time is the median over rounds, so a
neighbour's load spreads over all candidates instead of landing on one.

The floor is memory traffic: an SGD-SaI or SGD-momentum step reads :math:`g, m, \theta` and writes
:math:`m, \theta` (20 bytes per float32 element), AdamW also reads and writes :math:`v` (28 bytes).
A streaming probe (``x.add_(y)`` on flat buffers, 12 bytes per element) measured in the same
rounds gives the machine's bandwidth :math:`W`; a candidate's floor is its bytes over :math:`W`.
The first step of every candidate (SGD-SaI's measures g-SNR and allocates its buffers) is timed
apart, and the measuring pass alone (``g-SNR pass``: one read of every gradient and one host
transfer) runs in the rounds like a candidate.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sgdsai import SGDSaI
from sgdsai_lab import records, zoo

logger = logging.getLogger(__name__)

#: name -> (n_embd, n_layer); vocabulary 50257 and context 1024 for all.
MODELS = {"gpt2-124m": (768, 12), "gpt2-355m": (1024, 24), "gpt2-774m": (1280, 36), "gpt2-1.5b": (1600, 48)}

#: attention heads of each size (Adam-mini partitions the query/key weights by head)
HEADS = {"gpt2-124m": 12, "gpt2-355m": 16, "gpt2-774m": 20, "gpt2-1.5b": 25}

#: Bytes moved per float32 element by one steady step, for the floor.
BYTES_PER_ELEMENT = {
    "sgdsai": 20,
    "sgd": 20,
    "adamw": 28,
    "official": 20,
    "pytorch_optimizer": 20,
    "probe": 12,
    "gsnr": 4,  # the measuring pass reads each gradient once
    "adam-mini": 20,  # m and v, but v is one scalar per block: like SGD-momentum
    "apollo": 28,  # AdamW's moments for the projected gradient, plus the projection (approximate)
}

REFERENCE = "adamw fused"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("step", help="optimizer step time on GPT-2-shaped parameters (CPU or CUDA)")
    p.add_argument("--model", default="gpt2-124m", choices=list(MODELS))
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds; times are medians over rounds")
    p.add_argument("--steps", type=int, default=1, help="timed steps per candidate per round")
    p.add_argument("--warmup", type=int, default=1, help="untimed steady steps per candidate before round 1")
    p.add_argument("--only", nargs="+", help="candidate names to run (default: all available)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (each timing synchronises the device)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--note", default="", help="free text stored in the record (e.g. 'machine shared')")
    p.add_argument("--out", type=Path, default=records.RECORDS)
    p.add_argument(
        "--no-plot", dest="plot", action="store_false", help="write the record only (no matplotlib needed)"
    )
    p.set_defaults(run=run)


def gpt2_shapes(
    n_embd: int, n_layer: int, vocab: int = 50257, context: int = 1024
) -> list[tuple[str, tuple]]:
    """GPT-2's parameter names and shapes (HF ``Conv1D`` layout, tied output embedding)."""
    e = n_embd
    shapes: list[tuple[str, tuple]] = [("wte", (vocab, e)), ("wpe", (context, e))]
    for i in range(n_layer):
        shapes += [
            (f"h.{i}.ln_1.weight", (e,)),
            (f"h.{i}.ln_1.bias", (e,)),
            (f"h.{i}.attn.c_attn.weight", (e, 3 * e)),
            (f"h.{i}.attn.c_attn.bias", (3 * e,)),
            (f"h.{i}.attn.c_proj.weight", (e, e)),
            (f"h.{i}.attn.c_proj.bias", (e,)),
            (f"h.{i}.ln_2.weight", (e,)),
            (f"h.{i}.ln_2.bias", (e,)),
            (f"h.{i}.mlp.c_fc.weight", (e, 4 * e)),
            (f"h.{i}.mlp.c_fc.bias", (4 * e,)),
            (f"h.{i}.mlp.c_proj.weight", (4 * e, e)),
            (f"h.{i}.mlp.c_proj.bias", (e,)),
        ]
    return [*shapes, ("ln_f.weight", (e,)), ("ln_f.bias", (e,))]


def candidates(model: str | None = None) -> dict[str, tuple[str, Callable]]:
    """name -> (bytes-model key, factory). Packages that are not installed are left out; Adam-mini
    needs the model's width and heads, so it is offered only for a ``model`` in `HEADS`."""
    table: dict[str, tuple[str, Callable]] = {
        "sgdsai single": ("sgdsai", zoo.profiled("sgdsai", foreach=False)),
        "sgdsai foreach": ("sgdsai", zoo.profiled("sgdsai", foreach=True)),
        "adamw for-loop": ("adamw", zoo.profiled("adamw", foreach=False)),
        "adamw foreach": ("adamw", zoo.profiled("adamw", foreach=True)),
        "adamw fused": ("adamw", zoo.profiled("adamw", fused=True)),
        "sgd foreach": ("sgd", zoo.profiled("sgdm", foreach=True)),
        "sgd fused": ("sgd", zoo.profiled("sgdm", fused=True)),
    }
    if "fused" in inspect.signature(SGDSaI.__init__).parameters:
        table["sgdsai fused"] = ("sgdsai", zoo.profiled("sgdsai", fused=True))
    heads = {"dim": MODELS[model][0], "n_heads": HEADS[model]} if model in HEADS else None
    optional = {
        "sgd-sai 1.0.3": ("official", "sgd-sai-1.0.3", None),
        "pytorch_optimizer": ("pytorch_optimizer", "pytorch-optimizer-sgdsai", None),
        "adam-mini": ("adam-mini", "adam-mini", heads),
        "apollo": ("apollo", "apollo", None),
        "apollo-mini": ("apollo", "apollo-mini", None),
    }
    for label, (bytes_key, name, info) in optional.items():
        if zoo.available(name) and (name != "adam-mini" or info is not None):
            table[label] = (bytes_key, zoo.profiled(name, info))
    return table


class Probe:
    """The streaming-bandwidth probe: ``x += y`` over flat float32 buffers of ``numel`` elements."""

    def __init__(self, numel: int, device: torch.device) -> None:
        self.x = torch.zeros(numel, device=device)
        self.y = torch.full((numel,), 1e-12, device=device)

    def step(self) -> None:
        self.x.add_(self.y)


class GsnrPass:
    """SGD-SaI's one-time measurement alone: every gradient's (count, mean, m2), one host transfer
    (the paper's "g-SNR calc", Appendix C)."""

    def __init__(self, grads: list[torch.Tensor]) -> None:
        self.grads = grads

    def step(self) -> None:
        from sgdsai.gsnr import stack_stats

        stack_stats(self.grads)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], n: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / max(n, 1)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    device = torch.device(args.device)
    load_at_start = os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator(device="cpu").manual_seed(0)
    named = [
        (n, (0.02 * torch.randn(s, generator=gen)).to(device).requires_grad_())
        for n, s in gpt2_shapes(*MODELS[args.model])
    ]
    for _, p in named:
        p.grad = 1e-3 * torch.randn(p.shape, generator=gen).to(device) + 1e-4
    numel = sum(p.numel() for _, p in named)
    table = candidates(args.model)
    if args.only:
        table = {k: v for k, v in table.items() if k in args.only}
    opts: dict[str, Any] = {
        "probe": Probe(numel, device),
        "g-SNR pass": GsnrPass([p.grad for _, p in named if p.grad is not None]),
    }
    first: dict[str, float] = {}
    for name, (_, build) in tqdm(table.items(), desc="first steps", unit="opt"):
        opts[name] = build(named)
        first[name] = _timed(opts[name].step, 1, device)  # g-SNR measurement / state creation (/ compile)
        _timed(opts[name].step, args.warmup, device)
    for extra in ("probe", "g-SNR pass"):
        _timed(opts[extra].step, args.warmup, device)
    names = list(opts)
    times: dict[str, list[float]] = {n: [] for n in names}
    with tqdm(total=args.rounds * len(names), desc="rounds", unit="run") as bar:
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order each round
                times[name].append(_timed(opts[name].step, args.steps, device))
                bar.update()
    results = summarize(
        times, first, {**{n: k for n, (k, _) in table.items()}, "probe": "probe", "g-SNR pass": "gsnr"}, numel
    )
    config = {
        "model": args.model,
        "shapes": "GPT-2 (wte, wpe, ln, c_attn, c_proj, c_fc, mlp.c_proj, biases), fp32",
        "params": numel,
        "tensors": len(named),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "load_average_at_start": load_at_start,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "warmup": args.warmup,
        "reference": REFERENCE,
        "hyperparameters": {
            "lr": zoo.PROFILE_LR,
            "momentum": zoo.MOMENTUM,
            "weight_decay": zoo.PROFILE_WEIGHT_DECAY,
        },
    }
    packages = ("sgd-sai", "pytorch-optimizer", "tqdm")
    rec = records.bench_record(f"step_{args.model}_{device.type}", config, results, packages=packages,
                               notes=args.note, root=args.out, device=device.type)  # fmt: skip
    path = records.write(rec, args.out)
    if args.plot:
        plot(rec.to_dict(), records.figure_path(rec, args.out, "step"))
    for line in markdown(rec.to_dict()):
        logger.info(line)
    logger.info("record: %s", path)
    return 0


def summarize(
    times: dict[str, list[float]], first: dict[str, float], kinds: dict[str, str], numel: int
) -> dict:
    """Medians, spreads, ratios to `REFERENCE`, and achieved bandwidth against the probe's.

    The ``min_*`` ratios compare best rounds (each candidate's and the probe's fastest): on a
    shared machine they estimate the uncontended cost, the medians the typical one."""
    median = {n: statistics.median(t) for n, t in times.items()}
    bandwidth = BYTES_PER_ELEMENT["probe"] * numel / median["probe"]
    best_bandwidth = BYTES_PER_ELEMENT["probe"] * numel / min(times["probe"])
    ref = median.get(REFERENCE)
    rows = {}
    for name, t in times.items():
        moved = BYTES_PER_ELEMENT[kinds[name]] * numel
        rows[name] = {
            "median_ms": 1e3 * median[name],
            "min_ms": 1e3 * min(t),
            "max_ms": 1e3 * max(t),
            "samples_ms": [1e3 * x for x in t],
            "first_step_ms": 1e3 * first[name] if name in first else None,
            "bytes_per_element": BYTES_PER_ELEMENT[kinds[name]],
            "achieved_gb_s": moved / median[name] / 1e9,
            "over_floor": median[name] / (moved / bandwidth),
            "over_reference": median[name] / ref if ref else None,
            "min_over_floor": min(t) / (moved / best_bandwidth),
            "min_over_reference": min(t) / min(times[REFERENCE]) if ref else None,
        }
    return {
        "probe_bandwidth_gb_s": bandwidth / 1e9,
        "probe_best_bandwidth_gb_s": best_bandwidth / 1e9,
        "candidates": rows,
    }


def markdown(rec: dict[str, Any]) -> list[str]:
    rows = rec["results"]["candidates"]
    lines = [
        f"| optimizer ({rec['config']['model']}, {rec['config']['device']}, "
        f"{rec['machine']['torch_threads']} threads) | step ms median (min) | x {REFERENCE} median (min) "
        "| x bandwidth floor median (min) | GB/s median | first step ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in sorted(rows.items(), key=lambda kv: kv[1]["median_ms"]):
        ratio = f"{r['over_reference']:.2f} ({r['min_over_reference']:.2f})" if r["over_reference"] else "-"
        first = f"{r['first_step_ms']:.0f}" if r["first_step_ms"] is not None else "-"
        lines.append(
            f"| {name} | {r['median_ms']:.0f} ({r['min_ms']:.0f}) | {ratio} | {r['over_floor']:.2f} "
            f"({r['min_over_floor']:.2f}) | {r['achieved_gb_s']:.1f} | {first} |"
        )
    return lines


def plot(rec: dict[str, Any], path: Path) -> None:
    """Median step time per candidate (bars, min-max whiskers) and each one's bandwidth floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rec["results"]["candidates"].items(), key=lambda kv: kv[1]["median_ms"])
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.5))
    y = range(len(rows))
    med = [r["median_ms"] for _, r in rows]
    err = [
        [m - r["min_ms"] for m, (_, r) in zip(med, rows)],
        [r["max_ms"] - m for m, (_, r) in zip(med, rows)],
    ]
    colors = [
        "tab:green" if n.startswith("sgdsai") else "tab:gray" if n == "probe" else "tab:blue" for n, _ in rows
    ]
    ax.barh(list(y), med, xerr=err, color=colors, alpha=0.8)
    ax.scatter(
        [r["median_ms"] / r["over_floor"] for _, r in rows],
        list(y),
        marker="|",
        s=200,
        color="k",
        label="bandwidth floor",
        zorder=3,
    )
    ax.set_yticks(list(y), [n for n, _ in rows])
    cfg = rec["config"]
    ax.set(
        xlabel="step time (ms, median over rounds)",
        title=f"{cfg['model']} ({cfg['params'] / 1e6:.0f}M), "
        f"{cfg['device']}, {rec['machine']['torch_threads']} threads",
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
