"""``sgdsai sweep``: a grid of runs (optimizers x learning rates x weight decays x seeds), resumable.

Each run's record path is a function of its full configuration, and records are written
atomically, so a sweep that is killed and started again skips every run that finished and redoes
only the one that was cut off. Named presets fix a grid and label its records.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from sgdsai.experiments.train import RunConfig, record_path, run, write_record

logger = logging.getLogger(__name__)

#: preset name -> task settings and per-optimizer learning-rate grid (weight decay: the optimizer's default)
PRESETS: dict[str, dict] = {
    # A few minutes on 2 CPU cores: byte-level tiny GPT-2 on stdlib source, SGD-SaI vs AdamW, 3 lrs each.
    "quick": {
        "task": "gpt2",
        "data": "stdlib",
        "size": "tiny",
        "steps": 150,
        "seeds": [0],
        "lrs": {"sgdsai": [0.1, 0.3, 1.0], "adamw": [1e-3, 3e-3, 1e-2]},
    },
}


def grid(
    base: RunConfig,
    optimizers: Sequence[str],
    lrs: dict[str, Sequence[float]],
    weight_decays: dict[str, Sequence[float]],
    seeds: Sequence[int],
) -> list[RunConfig]:
    """Every combination, in a fixed order (seed-major, so the first seed completes first)."""
    return [
        dataclasses.replace(base, optimizer=o, lr=lr, weight_decay=wd, seed=s)
        for s in seeds
        for o in optimizers
        for lr, wd in itertools.product(lrs[o], weight_decays[o])
    ]


def run_sweep(configs: Iterable[RunConfig], records: Path, device: str = "cpu") -> tuple[int, int]:
    """Run every config whose record is missing. Returns ``(ran, skipped)``."""
    from tqdm import tqdm

    configs = list(configs)
    ran = skipped = 0
    for config in tqdm(configs, desc="sweep", unit="run"):
        path = record_path(config, records)
        if path.exists():
            skipped += 1
            continue
        write_record(run(config, device), path)
        ran += 1
    logger.info("sweep: %d runs done, %d already recorded, records in %s", ran, skipped, records)
    return ran, skipped


def register(subparsers: argparse._SubParsersAction) -> None:
    from sgdsai.experiments.train import add_run_arguments

    p = subparsers.add_parser("sweep", help="resumable grid of train runs (lr x wd x seeds)")
    add_run_arguments(p)
    p.add_argument(
        "--preset", choices=sorted(PRESETS), default=None, help="a named grid (overrides grid options)"
    )
    p.add_argument("--optimizers", nargs="+", default=["sgdsai", "adamw"])
    p.add_argument("--lrs", nargs="+", type=float, default=None, help="default: each optimizer's default lr")
    p.add_argument("--weight-decays", nargs="+", type=float, default=None, help="default: each optimizer's")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.set_defaults(run=_main)


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    from sgdsai.experiments.registry import OPTIMIZERS
    from sgdsai.experiments.train import config_from_args

    lrs: dict[str, Sequence[float]]
    wds: dict[str, Sequence[float]]
    if args.preset:
        preset = PRESETS[args.preset]
        if args.task != preset["task"]:
            raise SystemExit(f"preset {args.preset!r} is for task {preset['task']!r}, not {args.task!r}")
        optimizers = list(preset["lrs"])
        base = config_from_args(args, task=preset["task"], data=preset["data"], size=preset["size"],
                                steps=preset["steps"], preset=args.preset, optimizer="", lr=0.0,
                                weight_decay=0.0)  # fmt: skip
        lrs, seeds = preset["lrs"], preset["seeds"]
        wds = {o: [OPTIMIZERS[o].weight_decay] for o in optimizers}
    else:
        optimizers = args.optimizers
        base = config_from_args(args, preset="sweep", optimizer="", lr=0.0, weight_decay=0.0)
        lrs = {o: args.lrs or [OPTIMIZERS[o].lr] for o in optimizers}
        wds = {o: args.weight_decays or [OPTIMIZERS[o].weight_decay] for o in optimizers}
        seeds = args.seeds
    return grid(base, optimizers, lrs, wds, seeds)


def _main(args: argparse.Namespace) -> int:
    run_sweep(configs_from_args(args), args.records, args.device)
    return 0
