"""What a run is configured by, declared once, and the one error a bad configuration raises.

Each field of `RunConfig` carries its help, its choices and its default; ``sgdsai train`` and
``sgdsai sweep`` build their options from them (`add_arguments`). A `ConfigError`
names where a value came from (a preset file, a command-line option), the field and the allowed
values; the command line prints it as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any


class ConfigError(ValueError):
    """A configuration value that is not allowed: the message names the field and the choices."""


def choose(value: str, allowed: Iterable[str], field: str, where: str = "") -> str:
    """``value`` if it is one of ``allowed``, else a `ConfigError` naming ``field``."""
    allowed = list(allowed)
    if value not in allowed:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{field}: {value!r} is not one of {', '.join(allowed)}")
    return value


#: Bumped whenever a task's data or model definition changes, so older records get other run ids
#: and a sweep does not take them for current ones. 2: stdlib split by file, not by position;
#: gpt2 3: fixed validation and test windows (held-out halves), whatever the batch size;
#: lora 3: 64 validation and 128 test pairs from disjoint held-out files (the validation pairs
#: changed); lora-cls 3: a 40% stratified holdout cut into validation and test halves;
#: vit and cnn 3: a validation split apart from the test split (Fashion-MNIST: 5,000 training images
#: held out, the full 10k test set; digits, synthetic: the held-out 20% in halves);
#: lora 4: held-out pairs that copy a training pair (or a validation one, for test) are dropped.
TASK_REVISIONS = {"gpt2": 3, "lora": 4, "lora-cls": 3, "vit": 3, "cnn": 3}
DEFAULT_TASK_REVISION = 2


def task_revision(task: str) -> int:
    return TASK_REVISIONS.get(task, DEFAULT_TASK_REVISION)


def _tasks() -> list[str]:
    from sgdsai_lab.tasks import TASKS

    return sorted(TASKS)


def _optimizers() -> list[str]:
    from sgdsai_lab.zoo import OPTIMIZERS

    return sorted(OPTIMIZERS)


#: the allowed ranges of numeric fields: what the error says, and the test
AT_LEAST_1 = ("at least 1", lambda v: v >= 1)
AT_LEAST_0 = ("at least 0", lambda v: v >= 0)
ABOVE_0 = ("above 0", lambda v: v > 0)
FRACTION = ("between 0 and 1", lambda v: 0 <= v <= 1)


def option(
    help: str,
    default: Any = dataclasses.MISSING,
    *,
    choices: Callable[[], list[str]] | None = None,
    positional: bool = False,
    cli: bool = True,
    sweep: str = "",
    sweep_default: Any = None,
    per_task: str = "",
    valid: tuple[str, Callable[[float], bool]] | None = None,
    optimizers: bool = False,
) -> Any:
    """A `RunConfig` field and its command-line option: ``help`` (the default is added),
    ``choices`` (called when the parser is built), ``sweep``: the plural option by which
    ``sgdsai sweep`` takes several values (``sweep_default``: its default list), ``cli=False``: set
    by the command, not an option; ``per_task``: the `TaskSpec` attribute
    holding each task's choices, ``valid``: a numeric field's range (both checked by `check`);
    ``optimizers``: left unset, the optimizer's own default (its zoo entry's attribute of that name)."""
    metadata = {"help": help, "choices": choices, "positional": positional, "cli": cli, "sweep": sweep,
                "sweep_default": sweep_default, "per_task": per_task, "valid": valid, "optimizers": optimizers}  # fmt: skip
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    task: str = option("the task (model and data)", choices=_tasks, positional=True)
    optimizer: str = option(
        "optimizer (zoo.py)", choices=_optimizers, sweep="optimizers", sweep_default=["sgdsai", "adamw"]
    )
    lr: float = option("peak learning rate", sweep="lrs", valid=ABOVE_0, optimizers=True)
    weight_decay: float = option("weight decay", sweep="weight-decays", valid=AT_LEAST_0, optimizers=True)
    steps: int = option("optimizer steps", 200, valid=AT_LEAST_1)
    seed: int = option(
        "seed of the initialisation and the batch order",
        0,
        sweep="seeds",
        sweep_default=[0],
        valid=AT_LEAST_0,
    )
    data: str = option("dataset, empty for the task's first", "", per_task="data")
    size: str = option("model size (lora tasks: tiny|small|base = rank 8|16|32)", "tiny", per_task="sizes")
    batch_size: int | None = option("batch size (default: the task's)", None, valid=AT_LEAST_1)
    warmup_ratio: float = option("fraction of the steps spent in linear warmup", 0.1, valid=FRACTION)
    min_lr_ratio: float = option(
        "the cosine schedule's final lr, as a fraction of the peak", 0.1, valid=FRACTION
    )
    grad_clip: float | None = option(
        "clip the gradient norm to this (default: no clipping)", None, valid=ABOVE_0
    )
    eval_every: int = option("steps between evaluations (0: at the end only)", 0, valid=AT_LEAST_0)
    gsnr_every: int = option("steps between g-SNR trace points (0: none)", 10, valid=AT_LEAST_0)
    preset: str = option("the preset (or cli, sweep, demo) that produced the run", "", cli=False)

    def resolved(self) -> RunConfig:
        from sgdsai_lab.tasks import task_spec

        return dataclasses.replace(self, data=self.data or task_spec(self.task).data[0])

    @property
    def run_id(self) -> str:
        """Readable prefix plus a hash of every field: equal ids mean equal runs."""
        return self.run_id_at(task_revision(self.task))

    def run_id_at(self, revision: int) -> str:
        """`run_id` under task revision ``revision`` (for records of an older revision)."""
        c = self.resolved()
        key = json.dumps({**dataclasses.asdict(c), "task_revision": revision}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        return f"{c.task}-{c.data}-{c.size}-{c.optimizer}-lr{c.lr:g}-wd{c.weight_decay:g}-s{c.seed}-{digest}"


#: the fields a sweep varies (its grid); every other field is one setting shared by the grid
GRID_FIELDS = ("optimizer", "lr", "weight_decay", "seed")


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """One option per `RunConfig` field: ``command`` ``"train"`` takes one value of each,
    ``"sweep"`` several of the grid's fields (``--optimizers``, ``--lrs``, ...)."""
    from sgdsai_lab.tasks import task_spec

    hints = typing.get_type_hints(RunConfig)
    for field in dataclasses.fields(RunConfig):
        meta = field.metadata
        if not meta["cli"]:
            continue
        kind = _scalar(hints[field.name])
        choices = meta["choices"]() if meta["choices"] else None
        help = meta["help"] + (f"; one of {', '.join(choices)}" if choices else "")
        help += " (default: the optimizer's)" if meta["optimizers"] else ""
        metavar = field.name.upper() if choices else None
        if meta["per_task"]:
            help += (
                " ("
                + "; ".join(f"{t}: {'|'.join(getattr(task_spec(t), meta['per_task']))}" for t in _tasks())
                + ")"
            )
        if meta["positional"]:
            parser.add_argument(field.name, choices=choices, metavar=metavar, help=help)
        elif command == "sweep" and meta["sweep"]:
            default = meta["sweep_default"]
            shown = f" (default: {' '.join(map(str, default))})" if default else ""
            parser.add_argument(f"--{meta['sweep']}", dest=field.name, nargs="+", type=kind, choices=choices,
                                metavar=metavar, default=default, help=f"{help}; several{shown}")  # fmt: skip
        else:
            required = field.default is dataclasses.MISSING and not meta["optimizers"]
            default = None if field.default is dataclasses.MISSING else field.default
            shown = "" if default in (None, "") or "default" in help else f" (default: {default!r})"
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, choices=choices, metavar=metavar,
                                default=default, required=required, help=help + shown)  # fmt: skip


def _scalar(hint: Any) -> type:
    """``int`` for ``int | None``, ``float`` for ``float``: what argparse converts a value with."""
    if isinstance(hint, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def settings_from_args(args: argparse.Namespace, **values: Any) -> dict[str, Any]:
    """Every field but the grid's (`GRID_FIELDS`) from the parsed options, ``values`` taking
    precedence: what the runs of one sweep share."""
    fields = {f.name for f in dataclasses.fields(RunConfig)} - set(GRID_FIELDS)
    return check({k: v for k, v in vars(args).items() if k in fields} | values)


def config_from_args(args: argparse.Namespace, **values: Any) -> RunConfig:
    """A run config from the parsed options, ``values`` taking precedence; ``lr`` and
    ``weight_decay`` left unset default to the optimizer's (zoo.py)."""
    from sgdsai_lab.zoo import OPTIMIZERS

    fields = dataclasses.fields(RunConfig)
    merged = {k: v for k, v in vars(args).items() if k in {f.name for f in fields}} | values
    for field in fields:
        if field.metadata["optimizers"] and merged.get(field.name) is None:
            merged[field.name] = getattr(OPTIMIZERS[merged["optimizer"]], field.name)
    return RunConfig(**check(merged))


def check(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` if each field that depends on the task (``--data``, ``--size``) holds one of the
    task's choices and each number lies in its range, else a `ConfigError` naming the option
    and what it allows. A list (a sweep's ``--lrs`` ...) is checked value by value."""
    from sgdsai_lab.tasks import task_spec

    spec = task_spec(values["task"])
    for field in dataclasses.fields(RunConfig):
        meta, value = field.metadata, values.get(field.name)
        flag = f"--{meta['sweep'] if isinstance(value, list) else field.name.replace('_', '-')}"
        if meta["per_task"] and value:
            choose(value, getattr(spec, meta["per_task"]), f"{flag} for task {values['task']}")
        if meta["valid"] and value is not None:
            text, ok = meta["valid"]
            bad = [v for v in (value if isinstance(value, list) else [value]) if not ok(v)]
            if bad:
                raise ConfigError(f"{flag}: must be {text}, not {bad[0]!r}")
    return values
