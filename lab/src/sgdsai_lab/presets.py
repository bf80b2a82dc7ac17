"""Named sweep presets: one TOML file each in ``presets/``, validated when read.

A preset fixes a task setting and a grid of optimizers x learning rates x weight decays. Its file::

    description = "what the preset is for"      # required
    task = "gpt2"                                # required: a task of sgdsai_lab.tasks
    data = "stdlib"                              # required: one of the task's datasets
    size = "tiny"                                # required: one of the task's sizes
    steps = 150                                  # required
    batch_size = 128                             # optional (default: the task's)
    seeds = [0]                                  # optional (default [0])
    best_seeds = [1, 2]                          # optional: more seeds at each optimizer's best point
    metric = "val_loss"                          # optional: val_loss or val_accuracy (default: the task's)
    eval_every = 100                             # optional (default 0: at the end only)
    extend = 3                                   # optional: lrs added past a grid edge holding the best
    grad_clip = 1.0                              # optional (default: no clipping)

    [grid.sgdsai]                                # one table per optimizer, run in file order
    lrs = [0.1, 0.3, 1.0]
    weight_decays = [0.01]

Any other key, a value of the wrong type, or an unknown task, data, size (the task's, from its
`TaskSpec`), optimizer or metric raises a
`ConfigError` naming the file, the field and the allowed values.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sgdsai_lab.config import ABOVE_0, AT_LEAST_0, ConfigError, choose

PRESET_DIR = Path(__file__).parent / "presets"


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    task: str
    data: str
    size: str
    steps: int
    grid: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]  #: optimizer -> (lrs, weight decays)
    description: str
    batch_size: int | None = None
    seeds: tuple[int, ...] = (0,)
    best_seeds: tuple[int, ...] = ()  #: extra seeds at each optimizer's best grid point
    metric: str = (
        "val_loss"  #: what "best" means (default: the task's); accuracy is maximised, losses minimised
    )
    eval_every: int = 0
    #: at most this many lrs added beyond each edge of an optimizer's grid while its best lr lies at
    #: that edge (at the grid's own spacing), before the extra seeds; 0: the grid is fixed
    extend: int = 0
    grad_clip: float | None = None


REQUIRED = ("description", "task", "data", "size", "steps", "grid")
OPTIONAL = ("batch_size", "seeds", "best_seeds", "metric", "eval_every", "extend", "grad_clip")
GRID_KEYS = ("lrs", "weight_decays")


def names() -> list[str]:
    """The presets shipped with the lab, by name."""
    return sorted(path.stem for path in PRESET_DIR.glob("*.toml"))


def find(name: str) -> Preset:
    """The shipped preset ``name``, or the preset file at path ``name`` (ending in ``.toml``)."""
    if name.endswith(".toml"):
        return load(Path(name))
    return load(PRESET_DIR / f"{choose(name, names(), '--preset')}.toml")


def load(path: Path) -> Preset:
    """Read and validate one preset file; its name is the file's stem."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the preset file ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return _validate(raw, path)


def _validate(raw: dict[str, Any], path: Path) -> Preset:
    where = str(path)
    for key in raw:
        choose(key, (*REQUIRED, *OPTIONAL), "key", where)
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    from sgdsai_lab.metrics import METRICS
    from sgdsai_lab.tasks import TASKS, task_spec
    from sgdsai_lab.zoo import OPTIMIZERS

    task = choose(_typed(raw, "task", str, where), sorted(TASKS), "task", where)
    spec = task_spec(task)
    size = choose(_typed(raw, "size", str, where), spec.sizes, "size", where)
    grid_table = _typed(raw, "grid", dict, where)
    if not grid_table:
        raise ConfigError(f"{where}: grid: needs at least one optimizer table, [grid.<optimizer>]")
    grid = {}
    for optimizer, cell in grid_table.items():
        field = f"grid.{optimizer}"
        choose(optimizer, sorted(OPTIMIZERS), "grid optimizer", where)
        cell = _typed(grid_table, optimizer, dict, where, field)
        for key in cell:
            choose(key, GRID_KEYS, f"{field} key", where)
        lrs, wds = (
            _numbers(cell, key, where, f"{field}.{key}", valid)
            for key, valid in zip(GRID_KEYS, (ABOVE_0, AT_LEAST_0))
        )
        grid[optimizer] = (lrs, wds)
    values: dict[str, Any] = {
        "description": _typed(raw, "description", str, where),
        "data": choose(_typed(raw, "data", str, where), spec.data, "data", where),
        "steps": _positive(_typed(raw, "steps", int, where), where, "steps"),
        "metric": choose(_typed(raw, "metric", str, where, default=spec.metric), METRICS, "metric", where),
        "eval_every": _typed(raw, "eval_every", int, where, default=0),
        "extend": _typed(raw, "extend", int, where, default=0),
        "seeds": _ints(raw, "seeds", where, default=(0,)),
        "best_seeds": _ints(raw, "best_seeds", where, default=()),
    }
    if "batch_size" in raw:
        values["batch_size"] = _positive(_typed(raw, "batch_size", int, where), where, "batch_size")
    if "grad_clip" in raw:
        values["grad_clip"] = float(_typed(raw, "grad_clip", (int, float), where))
    reused = set(values["seeds"]) & set(values["best_seeds"])
    if reused:
        raise ConfigError(f"{where}: best_seeds: {sorted(reused)} already in seeds; use other seeds")
    return Preset(name=path.stem, task=task, size=size, grid=grid, **values)


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    dict: "a table",
    list: "an array",
    (int, float): "a number",
}


def _typed(
    table: dict[str, Any], key: str, kind: Any, where: str, field: str = "", default: Any = None
) -> Any:
    """``table[key]`` if it is of type ``kind`` (booleans are not numbers), else a ConfigError."""
    if key not in table and default is not None:
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(
            f"{where}: {field or key}: must be {_TYPE_NAMES[kind]}, not {type(value).__name__} {value!r}"
        )
    return value


def _positive(value: int, where: str, field: str) -> int:
    if value < 1:
        raise ConfigError(f"{where}: {field}: must be at least 1, not {value}")
    return value


def _numbers(
    table: dict[str, Any], key: str, where: str, field: str, valid: tuple[str, Callable[[float], bool]]
) -> tuple[float, ...]:
    """A non-empty array of numbers in the range ``valid``, as floats (``1`` and ``1.0`` name one run)."""
    if key not in table:
        raise ConfigError(f"{where}: {field}: missing (an array of numbers)")
    values = _typed(table, key, list, where, field)
    if not values:
        raise ConfigError(f"{where}: {field}: must not be empty")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not valid[1](value):
            raise ConfigError(f"{where}: {field}: must hold numbers {valid[0]}, not {value!r}")
    return tuple(float(v) for v in values)


def _ints(table: dict[str, Any], key: str, where: str, default: Sequence[int]) -> tuple[int, ...]:
    values = _typed(table, key, list, where) if key in table else default
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: {key}: must hold non-negative integers, not {value!r}")
    return tuple(values)
