"""``sgdsai sweep``: a grid of runs (optimizers x learning rates x weight decays x seeds), resumable.

Each run's record path is a function of its full configuration, and records are written
atomically, so a sweep that is killed and started again skips every run that finished and redoes
only the one that was cut off. Presets (`sgdsai_lab.presets`, one TOML file each) fix a grid
and label their records. A preset with
``best_seeds`` runs in two phases, like the paper's Table 2: the grid at seed 0, then more seeds at
each optimizer's best grid point (chosen from the records, so the second phase resumes too).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sgdsai_lab import presets
from sgdsai_lab import records as record_files
from sgdsai_lab.config import GRID_FIELDS, ConfigError, RunConfig
from sgdsai_lab.metrics import METRICS, metric_value
from sgdsai_lab.resume import DEFAULT_EVERY_S, checkpoint_path
from sgdsai_lab.run import record_path, run

logger = logging.getLogger(__name__)


def grid(
    settings: Mapping[str, Any],
    optimizers: Sequence[str],
    lrs: Mapping[str, Sequence[float]],
    weight_decays: Mapping[str, Sequence[float]],
    seeds: Sequence[int],
) -> list[RunConfig]:
    """Every combination, each a complete config of ``settings`` (every field but the grid's), in
    a fixed order (seed-major, so the first seed completes first)."""
    return [
        RunConfig(**settings, optimizer=o, lr=lr, weight_decay=wd, seed=s)
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
    from sgdsai_lab.config import add_arguments
    from sgdsai_lab.run import add_runner_arguments

    p = subparsers.add_parser("sweep", help="resumable grid of train runs (optimizers x lrs x wds x seeds)")
    add_arguments(p, "sweep")
    add_runner_arguments(p)
    p.add_argument(
        "--preset",
        metavar="NAME|FILE.toml",
        default=None,
        help="a named grid, or a preset file of that format (it sets the grid and the data, size, steps, "
        "batch size, eval interval and clipping; giving one of those options beside it is an error; "
        f"see {presets.__name__}): "
        + "; ".join(f"{n}: {presets.find(n).description}" for n in presets.names()),
    )
    p.add_argument(
        "--only",
        metavar="OPTIMIZER",
        nargs="+",
        default=None,
        help="with --preset: run only these optimizers of its grid, in this order (each with its "
        "extensions and extra seeds), e.g. to split a long preset between two processes (give them "
        "disjoint lists)",
    )
    p.set_defaults(run=functools.partial(_main, p))


#: the options a preset sets: its grid and the settings its runs share (the others, such as the
#: schedule's shape, stay the command line's)
PRESET_FIELDS = (*GRID_FIELDS, "data", "size", "steps", "batch_size", "eval_every", "grad_clip")


def _flag(field: dataclasses.Field) -> str:
    return f"--{field.metadata['sweep'] if field.name in GRID_FIELDS else field.name.replace('_', '-')}"


def refuse_overrides(
    preset: presets.Preset, args: argparse.Namespace, parser: argparse.ArgumentParser
) -> None:
    """A `ConfigError` for the first option of `PRESET_FIELDS` given beside ``--preset`` with a
    value other than its default and the preset's, which the preset would silently override."""
    fixed = [f for f in dataclasses.fields(RunConfig) if f.name in PRESET_FIELDS]
    for field in fixed:
        value = getattr(args, field.name)
        if value in (parser.get_default(field.name), getattr(preset, field.name, None)):
            continue
        given = Path(args.preset)
        source = given if given.is_file() else presets.PRESET_DIR / f"{preset.name}.toml"
        raise ConfigError(
            f"{_flag(field)}: set by --preset {preset.name}, which fixes "
            f"{', '.join(_flag(f) for f in fixed)}; to change it, copy the preset's file ({source}), "
            "edit the copy and pass --preset COPY.toml"
        )


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


def preset_configs(preset: presets.Preset, args: argparse.Namespace) -> list[RunConfig]:
    """The grid of ``preset`` (its second, best-point phase is added by `run_preset`)."""
    from sgdsai_lab.config import settings_from_args

    if args.task != preset.task:
        raise ConfigError(f"--preset {preset.name}: is for task {preset.task!r}, not {args.task!r}")
    settings = settings_from_args(args, task=preset.task, data=preset.data, size=preset.size, steps=preset.steps,
                                  batch_size=preset.batch_size, eval_every=preset.eval_every,
                                  grad_clip=preset.grad_clip, preset=preset.name)  # fmt: skip
    lrs = {o: lrs for o, (lrs, _) in preset.grid.items()}
    wds = {o: wds for o, (_, wds) in preset.grid.items()}
    return grid(settings, list(preset.grid), lrs, wds, preset.seeds)


def extension(configs: Sequence[RunConfig], records: Path, metric: str) -> list[RunConfig]:
    """The next lr to try for each optimizer whose best lr (all records present) is not bracketed
    by the tried lrs at the best cell's weight decay: `sgdsai_lab.stats.bracket`'s next lr on
    the grid's own ladder, at that weight decay. A diverged neighbour counts as tried; a single lr
    is a chosen point, not a grid, and is never extended."""
    from sgdsai_lab import stats

    out = []
    for optimizer, point in best_points(configs, records, metric).items():
        row = [c for c in configs if c.optimizer == optimizer and c.weight_decay == point.weight_decay]
        best_at: dict[float, dict] = {}  # lr -> its best record (over seeds, if several)
        for config in row:
            record = record_files.read(record_path(config, records)).to_dict()
            if config.lr not in best_at or metric_value(record, metric) > metric_value(
                best_at[config.lr], metric
            ):
                best_at[config.lr] = record
        values = {lr: _value(record, metric) for lr, record in best_at.items()}
        if len(values) < 2:
            continue
        found = stats.bracket(values, METRICS[metric])
        if found.next_lr is not None:
            out.append(dataclasses.replace(point, lr=found.next_lr))
    return out


def _value(record: dict, metric: str) -> float | None:
    """A record's ``metric``, ``None`` when the run diverged or was not evaluated."""
    value = record["metrics"].get(metric)
    return None if value is None or record["metrics"].get("diverged") else value


def run_preset(preset: presets.Preset, args: argparse.Namespace) -> None:
    """Each optimizer in turn, to completion: its grid, the extensions while its best lr lies at
    an edge, then the extra seeds at its best point. So the first optimizers of a long preset are
    comparable before the last have started."""
    grid_configs = preset_configs(preset, args)
    only = args.only or list(preset.grid)
    unknown = [o for o in only if o not in preset.grid]
    if unknown:
        raise ConfigError(
            f"--only: {', '.join(map(repr, unknown))} not in the grid of preset {preset.name} "
            f"({', '.join(preset.grid)})"
        )
    if len(set(only)) < len(only):
        raise ConfigError(f"--only: each optimizer once, not {' '.join(only)}")
    for optimizer in only:
        configs = [c for c in grid_configs if c.optimizer == optimizer]
        run_sweep(configs, args.records, args.device, args.checkpoint_every)
        for _ in range(preset.extend):
            more = extension(configs, args.records, preset.metric)
            if not more:
                break
            logger.info("%s: best lr of %s at a grid edge: trying lr %g", preset.name, optimizer, more[0].lr)
            configs = [*configs, *more]
            run_sweep(more, args.records, args.device, args.checkpoint_every)
        if preset.best_seeds:
            extra = best_seed_configs(configs, args.records, preset.metric, preset.best_seeds)
            logger.info(
                "%s: %d more seeds at the best point of %s", preset.name, len(preset.best_seeds), optimizer
            )
            run_sweep(extra, args.records, args.device, args.checkpoint_every)


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """The grid given by ``--optimizers/--lrs/--weight-decays/--seeds`` (defaults: each optimizer's)."""
    from sgdsai_lab.config import GRID_FIELDS, check, settings_from_args
    from sgdsai_lab.zoo import OPTIMIZERS

    check({"task": args.task} | {name: getattr(args, name) for name in GRID_FIELDS})
    lrs = {o: args.lr or [OPTIMIZERS[o].lr] for o in args.optimizer}
    wds = {o: args.weight_decay or [OPTIMIZERS[o].weight_decay] for o in args.optimizer}
    return grid(settings_from_args(args, preset="sweep"), args.optimizer, lrs, wds, args.seed)


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.only and not args.preset:
        raise ConfigError("--only: selects optimizers of a --preset; without one, use --optimizers")
    if args.preset:
        preset = presets.find(args.preset)
        refuse_overrides(preset, args, parser)
        run_preset(preset, args)
    else:
        run_sweep(configs_from_args(args), args.records, args.device, args.checkpoint_every)
    return 0
