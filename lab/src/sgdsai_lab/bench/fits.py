"""``sgdsai bench fits``: which optimizers can take a full float32 training step of a model under a
memory limit (by default GPT-2 XL, 1.5B, in 24 GiB).

Each candidate runs in its own subprocess whose address space is capped with
``resource.setrlimit(RLIMIT_AS)`` before torch is imported, so running out of memory is a clean
``MemoryError`` / allocation failure in the child, reported as "does not fit", and never disturbs
the parent or its neighbours. The child builds the model on the ``meta`` device, materialises it
in float32 on the CPU, runs forward and backward on random tokens, and takes two optimizer steps
(the g-SNR measuring step and a steady one). The cap counts virtual memory, which includes the
interpreter and libraries (``baseline_vsz_gib`` in the record), so it is a conservative bound.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sgdsai_lab import records

logger = logging.getLogger(__name__)

GIB = 1 << 30
CANDIDATES = ("sgdsai", "sgdsai bf16 momentum", "sgd-momentum", "adam-mini", "adamw")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fits", help="which optimizers fit a full fp32 step of GPT-2 XL in a memory limit"
    )
    p.add_argument(
        "--model", default="gpt2-1.5b", help="a model of `sgdsai bench memory` (default: gpt2-1.5b)"
    )
    p.add_argument(
        "--limit-gib", type=float, default=24.0, help="address-space cap per candidate (default: 24)"
    )
    p.add_argument("--context", type=int, default=128, help="tokens in the one training sequence")
    p.add_argument("--only", nargs="+", choices=CANDIDATES, default=list(CANDIDATES))
    p.add_argument("--out", type=Path, default=records.RECORDS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    results = []
    for name in tqdm(args.only, desc="fits", unit="optimizer"):
        results.append(attempt(name, args.model, args.limit_gib, args.context))
        logger.info("%s: %s", name, "fits" if results[-1]["fits"] else "does not fit")
    config = {
        "model": args.model,
        "limit_gib": args.limit_gib,
        "context": args.context,
        "batch": 1,
        "dtype": "float32",
        "limit": "RLIMIT_AS (virtual memory), set before torch is imported",
    }
    rec = records.bench_record(f"fits_{args.model}_{args.limit_gib:g}gib", config, results,
                               packages=("adam-mini",), root=args.out)  # fmt: skip
    path = records.write(rec, args.out)
    for line in markdown(rec.to_dict()):
        logger.info(line)
    logger.info("record: %s", path)
    return 0


def attempt(name: str, model: str, limit_gib: float, context: int) -> dict[str, Any]:
    """Run one candidate in a capped subprocess; its JSON report, or why it failed."""
    from sgdsai_lab.bench import memory

    spec = json.dumps(memory.MODELS[model])
    cmd = [sys.executable, "-m", "sgdsai_lab.bench.fits", name, spec, str(limit_gib), str(context)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # failure is a result
    report: dict[str, Any] = {"optimizer": name, "fits": False, "wall_s": time.perf_counter() - start}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        report.update(json.loads(lines[-1]))
    else:
        report["error"] = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1][-300:]
    return report


def child(name: str, spec_json: str, limit_gib: float, context: int) -> None:
    """The capped subprocess: one full training step; prints one JSON line if it succeeds."""
    limit = int(limit_gib * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    from sgdsai_lab import zoo
    from sgdsai_lab.bench import memory

    baseline = _vsz()
    spec = json.loads(spec_json)
    model: Any = memory.build_meta_from(spec).to_empty(device="cpu")
    model.tie_weights()  # to_empty gives tied parameters separate storage
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    rss = {"model": _rss()}
    dim, heads = spec[2]
    factory = {
        "sgdsai": zoo.profiled("sgdsai", foreach=False),
        "sgdsai bf16 momentum": zoo.profiled("sgdsai", foreach=False, momentum_dtype=torch.bfloat16),
        "sgd-momentum": zoo.profiled("sgdm", foreach=False),
        "adam-mini": zoo.profiled("adam-mini", {"dim": dim, "n_heads": heads}),
        "adamw": zoo.profiled("adamw", foreach=False),
    }[name]
    opt = factory(list(model.named_parameters()))
    vocab = model.config.vocab_size
    losses = []
    for _ in range(2):
        tokens = torch.randint(vocab, (1, context))
        loss = model(tokens, labels=tokens).loss
        loss.backward()
        rss.setdefault("backward", _rss())
        opt.step()
        rss.setdefault("step", _rss())
        opt.zero_grad(set_to_none=False)  # keep the gradients allocated: the steady-state footprint
        losses.append(loss.item())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sys.stdout.write(
        json.dumps(
            {
                "fits": True,
                "losses": losses,
                "peak_rss_gib": peak / GIB,
                "baseline_vsz_gib": baseline / GIB,
                "rss_gib_after": rss,
                "params": sum(p.numel() for p in model.parameters()),
            }
        )
        + "\n"
    )


def _vsz() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _rss() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / GIB


def markdown(rec: dict[str, Any]) -> list[str]:
    cfg = rec["config"]
    lines = [
        f"| optimizer ({cfg['model']}, fp32, cap {cfg['limit_gib']:g} GiB) | full step fits? | peak RSS GiB |",
        "|---|---|---:|",
    ]
    for r in rec["results"]:
        error = r.get("error", "")
        verdict = (
            "yes"
            if r["fits"]
            else "no (out of memory)"
            if "allocate memory" in error
            else f"no ({error[:60]})"
        )
        peak = f"{r['peak_rss_gib']:.1f}" if "peak_rss_gib" in r else "-"
        lines.append(f"| {r['optimizer']} | {verdict} | {peak} |")
    return lines


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
