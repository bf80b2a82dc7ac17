"""``sgdsai sweep``: a grid of runs (optimizers x learning rates x weight decays x seeds), resumable.

Each run's record path is a function of its full configuration, and records are written
atomically, so a sweep that is killed and started again skips every run that finished and redoes
only the one that was cut off. Named presets fix a grid and label their records. A preset with
``best_seeds`` runs in two phases, like the paper's Table 2: the grid at seed 0, then more seeds at
each optimizer's best grid point (chosen from the records, so the second phase resumes too).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from sgdsai_lab import records as record_files
from sgdsai_lab.resume import DEFAULT_EVERY_S, checkpoint_path
from sgdsai_lab.run import RunConfig, record_path, run

logger = logging.getLogger(__name__)

#: The paper's ViT grid (Table 2, App. A.1), used for every optimizer.
PAPER_LRS = (1e-1, 1e-2, 1e-3, 1e-4)
PAPER_WDS = (1e-2, 1e-3, 1e-4)


@dataclasses.dataclass(frozen=True)
class Preset:
    task: str
    data: str
    size: str
    steps: int
    grid: dict[str, tuple[Sequence[float], Sequence[float]]]  #: optimizer -> (lrs, weight decays)
    description: str
    batch_size: int | None = None
    seeds: tuple[int, ...] = (0,)
    best_seeds: tuple[int, ...] = ()  #: extra seeds at each optimizer's best grid point
    metric: str = "val_loss"  #: what "best" means; ``val_accuracy`` is maximised, losses minimised
    eval_every: int = 0
    #: at most this many lrs added beyond each edge of an optimizer's grid while its best lr lies at
    #: that edge (at the grid's own spacing), before the extra seeds; 0: the grid is fixed
    extend: int = 0
    grad_clip: float | None = None


def _paper_grid(*optimizers: str) -> dict[str, tuple[Sequence[float], Sequence[float]]]:
    return {o: (PAPER_LRS, PAPER_WDS) for o in optimizers}


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "gpt2", "stdlib", "tiny", 150,
        {"sgdsai": ((0.1, 0.3, 1.0), (1e-2,)), "adamw": ((1e-3, 3e-3, 1e-2), (0.1,))},
        "a few minutes: byte-level tiny GPT-2 on stdlib source, SGD-SaI vs AdamW, 3 lrs each",
    ),
    "table2-vit": Preset(
        "vit", "fashion-mnist", "small", 400,
        _paper_grid("sgdsai", "sgdsai-official", "adamw", "nesterov", "adam-mini"),
        "the paper's Table 2 protocol at CPU scale: ViT (2x64, patch 7) on Fashion-MNIST, "
        "lr x wd grid for every optimizer, 3 seeds at each best point",
        batch_size=128, best_seeds=(1, 2), metric="val_accuracy", eval_every=100,
    ),
    "vit-extended": Preset(
        "vit", "fashion-mnist", "small", 400,
        {"sgdsai": ((0.3, 1.0, 3.0), (1e-3,)), "adamw": ((1e-2,), (1e-4,))},
        "table2-vit's setting, SGD-SaI (paper mode) above the paper's grid, where its best lr lies, "
        "against AdamW at its best Table-2 point; 3 seeds at each best point",
        batch_size=128, best_seeds=(1, 2), metric="val_accuracy", eval_every=100,
    ),
    "vit-baselines": Preset(
        "vit", "fashion-mnist", "small", 400,
        {"prodigy": ((1.0,), (1e-4,)), "apollo": ((1e-3, 1e-2), (1e-4,)), "apollo-mini": ((1e-3, 1e-2), (1e-4,)),
         "sgdm": ((1e-2, 1e-1), (1e-4,))},
        "the remaining baselines in table2-vit's setting, one seed: Prodigy (lr = its multiplier), "
        "APOLLO, APOLLO-Mini and SGD with (heavy-ball) momentum at two learning rates each",
        batch_size=128, metric="val_accuracy", eval_every=100,
    ),
    "vit-long": Preset(
        "vit", "fashion-mnist", "small", 2000,
        {"sgdsai": ((0.3,), (1e-3,)), "adamw": ((1e-2,), (1e-4,)), "nesterov": ((1e-1,), (1e-4,))},
        "table2-vit's setting trained 5x longer (2000 steps, ~4 epochs) at each optimizer's best "
        "400-step point: does SGD-SaI's early lag close?",
        batch_size=128, metric="val_accuracy", eval_every=250,
    ),
    "gpt2-english": Preset(
        "gpt2", "english", "mini", 300,
        {"sgdsai": ((0.3, 1.0, 3.0, 10.0), (1e-4,)), "adamw": ((1e-3, 3e-3, 1e-2, 3e-2), (0.1,)),
         "adam-mini": ((3e-4, 1e-3, 3e-3), (0.1,))},
        "GPT-2 (2x64, ctx 64) on the English mix with an 8k BPE: final validation loss of SGD-SaI vs "
        "AdamW and Adam-mini, 3 seeds at each best lr",
        best_seeds=(1, 2), eval_every=100,
    ),
    "cnn-grid": Preset(
        "cnn", "fashion-mnist", "tiny", 300,
        {o: ((1.0, 1e-1, 1e-2, 1e-3), (5e-2, 5e-4)) for o in ("sgdsai", "nesterov", "adamw")},
        "the paper's CNN claim at CPU scale: a small ResNet on Fashion-MNIST, lr x wd grid for SGD-SaI, "
        "Nesterov SGD and AdamW, 3 seeds at each best point",
        batch_size=128, best_seeds=(1, 2), metric="val_accuracy", eval_every=100,
    ),
    "cnn-extended": Preset(
        "cnn", "fashion-mnist", "tiny", 300,
        {"sgdsai": ((1.0, 3.0, 10.0), (5e-4,)), "adamw": ((1e-1,), (5e-2,)), "nesterov": ((1.0,), (5e-4,))},
        "cnn-grid's setting, SGD-SaI above the grid (its top, lr 1, was its best) against the best "
        "AdamW and Nesterov points, one seed",
        batch_size=128, metric="val_accuracy", eval_every=100,
    ),
    "lora-docstrings": Preset(
        "lora", "docstrings", "tiny", 60,
        {"sgdsai": ((0.1, 0.5), (1e-2,)), "sgd-sai-1.0.3": ((1e-3,), (1e-2,)), "adamw": ((1e-3,), (1e-2,))},
        "LoRA (r 8, q and v) of SmolLM2-135M on stdlib signature -> docstring: SGD-SaI vs the released "
        "package at the paper's LoRA default (lr 1e-3, wd 1e-2) vs AdamW; did the A matrices train?",
    ),
    "lora-fortunes": Preset(
        "lora-cls", "fortunes", "tiny", 100,
        {"sgdsai": ((0.1, 0.5), (1e-2,)), "sgd-sai-1.0.3": ((1e-3,), (1e-2,)), "adamw": ((1e-3,), (1e-2,))},
        "LoRA (r 8) of MiniLM-L6 with a new head on 5 fortune categories: accuracy, and whether A trained",
        metric="val_accuracy",
    ),
}  # fmt: skip


def _study_grid(*optimizers: str) -> dict[str, tuple[Sequence[float], Sequence[float]]]:
    """Three lrs at two per decade around each optimizer's documented default lr (its class
    default), with its weight decay fixed at its recommendation: the same decay per step at the
    default lr, lr x wd = 1e-4, for the decoupled ones; torch SGD's coupled 1e-4 for Nesterov."""
    from sgdsai_lab.zoo import OPTIMIZERS

    return {
        o: (
            tuple(float(f"{OPTIMIZERS[o].lr * 10 ** (k / 2):.3g}") for k in (-1, 0, 1)),
            (OPTIMIZERS[o].weight_decay,),
        )
        for o in optimizers
    }


STUDY_A = ("sgdsai", "adamw", "nesterov", "sgdsai-numel", "muon", "sgdsai-blocks-m", "sgdsai-m0")
PRESETS.update({
    "study-a16": Preset(
        "gpt2", "stdlib", "small", 3000, _study_grid(*STUDY_A),
        "study A: char-level GPT-2 (2x128, ctx 128) on stdlib bytes, 16 x 128 tokens per step, 3000 steps; "
        "every optimizer at two lrs per decade around its default, extended until bracketed, 3 seeds at each best",
        batch_size=16, best_seeds=(1, 2), eval_every=500, extend=3, grad_clip=1.0,
    ),
    "study-a128": Preset(
        "gpt2", "stdlib", "small", 375, _study_grid(*STUDY_A),
        "study A at 8x the batch (128 x 128 tokens per step) and the same tokens (375 steps, the same "
        "schedule shape): does SGD-SaI's standing change with batch size?",
        batch_size=128, best_seeds=(1, 2), eval_every=125, extend=3, grad_clip=1.0,
    ),
})  # fmt: skip


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


def run_sweep(
    configs: Iterable[RunConfig],
    records: Path,
    device: str = "cpu",
    checkpoint_every_s: float = DEFAULT_EVERY_S,
) -> tuple[int, int]:
    """Run every config whose record is missing, resuming a run cut off mid-way from its
    checkpoint. Returns ``(ran, skipped)``."""
    from tqdm import tqdm

    configs = list(configs)
    ran = skipped = 0
    for config in tqdm(configs, desc="sweep", unit="run"):
        path = record_path(config, records)
        if path.exists():
            skipped += 1
            continue
        checkpoint = checkpoint_path(path)
        record_files.write(run(config, device, checkpoint, checkpoint_every_s), records)
        checkpoint.unlink(missing_ok=True)
        ran += 1
    logger.info("sweep: %d runs done, %d already recorded, records in %s", ran, skipped, records)
    return ran, skipped


def register(subparsers: argparse._SubParsersAction) -> None:
    from sgdsai_lab.run import add_run_arguments

    p = subparsers.add_parser("sweep", help="resumable grid of train runs (lr x wd x seeds)")
    add_run_arguments(p)
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="a named grid (overrides the grid and task options): "
        + "; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()),
    )
    p.add_argument("--optimizers", nargs="+", default=["sgdsai", "adamw"])
    p.add_argument("--lrs", nargs="+", type=float, default=None, help="default: each optimizer's default lr")
    p.add_argument("--weight-decays", nargs="+", type=float, default=None, help="default: each optimizer's")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.set_defaults(run=_main)


def metric_value(record: dict, metric: str) -> float:
    """A record's ``metric`` oriented so that larger is better (losses negated); a diverged or
    unevaluated run is the worst possible."""
    value = record["metrics"].get(metric)
    if value is None or record["metrics"].get("diverged"):
        return -math.inf
    return value if metric.endswith("accuracy") else -value


def best_points(configs: Sequence[RunConfig], records: Path, metric: str) -> dict[str, RunConfig]:
    """Each optimizer's best config among ``configs``, judged by their records; optimizers with a
    missing record are left out (their grid has not finished)."""

    by_optimizer: dict[str, list[RunConfig]] = {}
    for config in configs:
        by_optimizer.setdefault(config.optimizer, []).append(config)
    best = {}
    for optimizer, group in by_optimizer.items():
        paths = [record_path(c, records) for c in group]
        if not all(path.exists() for path in paths):
            continue
        scores = [metric_value(record_files.read(path).to_dict(), metric) for path in paths]
        best[optimizer] = group[max(range(len(group)), key=scores.__getitem__)]
    return best


def best_seed_configs(
    configs: Sequence[RunConfig], records: Path, metric: str, seeds: Sequence[int]
) -> list[RunConfig]:
    """``seeds`` more runs at each optimizer's best point of the (finished) grid ``configs``."""
    best = best_points(configs, records, metric)
    return [dataclasses.replace(c, seed=s) for c in best.values() for s in seeds]


def preset_configs(name: str, args: argparse.Namespace) -> list[RunConfig]:
    """The grid of preset ``name`` (its second, best-point phase is added by :func:`run_preset`)."""
    from sgdsai_lab.run import config_from_args

    preset = PRESETS[name]
    if args.task != preset.task:
        raise SystemExit(f"preset {name!r} is for task {preset.task!r}, not {args.task!r}")
    base = config_from_args(args, task=preset.task, data=preset.data, size=preset.size, steps=preset.steps,
                            batch_size=preset.batch_size, eval_every=preset.eval_every, preset=name,
                            grad_clip=preset.grad_clip,
                            optimizer="", lr=0.0, weight_decay=0.0)  # fmt: skip
    lrs = {o: lrs for o, (lrs, _) in preset.grid.items()}
    wds = {o: wds for o, (_, wds) in preset.grid.items()}
    return grid(base, list(preset.grid), lrs, wds, preset.seeds)


def extension(configs: Sequence[RunConfig], records: Path, metric: str) -> list[RunConfig]:
    """The next lr to try for each optimizer whose best lr (all records present) lies at an edge
    of its tried lrs: one grid step beyond that edge, at the best cell's weight decay. A tried
    neighbour on each side brackets the best, a diverged one included."""

    best = best_points(configs, records, metric)
    out = []
    for optimizer, point in best.items():
        tried = sorted(
            {c.lr for c in configs if c.optimizer == optimizer and c.weight_decay == point.weight_decay}
        )
        if len(tried) < 2:
            continue
        score = record_files.read(record_path(point, records)).to_dict()
        if point.lr == tried[0] or metric_value(score, metric) == -math.inf:
            out.append(dataclasses.replace(point, lr=_grid_step(tried[0], tried[1], -1)))
        elif point.lr == tried[-1]:
            out.append(dataclasses.replace(point, lr=_grid_step(tried[-1], tried[-2], +1)))
    return out


def _grid_step(edge: float, neighbour: float, direction: int) -> float:
    """One step beyond ``edge`` on the grid's lattice of lrs 10**(k/d), d points per decade (the
    density of ``edge`` and its neighbour), to 3 significant digits: 0.316 -> 0.1, 3.16 -> 10."""
    density = round(1 / abs(math.log10(edge / neighbour)))
    k = round(density * math.log10(edge)) + direction
    return float(f"{10 ** (k / density):.3g}")


def run_preset(name: str, args: argparse.Namespace) -> None:
    """Each optimizer in turn, to completion: its grid, the extensions while its best lr lies at
    an edge, then the extra seeds at its best point. So the first optimizers of a long preset are
    comparable before the last have started."""
    preset = PRESETS[name]
    grid_configs = preset_configs(name, args)
    for optimizer in preset.grid:
        configs = [c for c in grid_configs if c.optimizer == optimizer]
        run_sweep(configs, args.records, args.device, args.checkpoint_every)
        for _ in range(preset.extend):
            more = extension(configs, args.records, preset.metric)
            if not more:
                break
            logger.info("%s: best lr of %s at a grid edge: trying lr %g", name, optimizer, more[0].lr)
            configs = [*configs, *more]
            run_sweep(more, args.records, args.device, args.checkpoint_every)
        if preset.best_seeds:
            extra = best_seed_configs(configs, args.records, preset.metric, preset.best_seeds)
            logger.info("%s: %d more seeds at the best point of %s", name, len(preset.best_seeds), optimizer)
            run_sweep(extra, args.records, args.device, args.checkpoint_every)


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """The grid given by ``--optimizers/--lrs/--weight-decays/--seeds`` (defaults: each optimizer's)."""
    from sgdsai_lab.run import config_from_args
    from sgdsai_lab.zoo import OPTIMIZERS

    base = config_from_args(args, preset="sweep", optimizer="", lr=0.0, weight_decay=0.0)
    lrs = {o: args.lrs or [OPTIMIZERS[o].lr] for o in args.optimizers}
    wds = {o: args.weight_decays or [OPTIMIZERS[o].weight_decay] for o in args.optimizers}
    return grid(base, args.optimizers, lrs, wds, args.seeds)


def _main(args: argparse.Namespace) -> int:
    if args.preset:
        run_preset(args.preset, args)
    else:
        run_sweep(configs_from_args(args), args.records, args.device, args.checkpoint_every)
    return 0
