"""The analysis beneath the sweep's decisions, the claims and the report: records grouped into
settings, each (optimizer, lr, weight decay) cell summarised over its seeds, best cells, grid
statistics and curve lags.

A *setting* is the problem a run solves: every config field but the cell's own (optimizer, lr,
weight decay, seed) and the bookkeeping ones (`NOT_PROBLEM`: the preset's name, how often it
evaluated or traced). Records of one setting from different presets are one grid, so a comparison
always uses each optimizer's current best cell over every record of its setting.

Selection and reporting never share data: a best cell is chosen on the *selection* metric
(validation accuracy where the task reports one, larger is better, else validation loss), and
reported on the *report* metric, the same quantity on the held-out test split where every run of
the setting has one (else the validation metric, with that caveat). Diverged runs count as the
worst possible when choosing a best point.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from sgdsai_lab import records as record_files
from sgdsai_lab.metrics import goal, metric_value
from sgdsai_lab.run import RunConfig

logger = logging.getLogger(__name__)


def load_records(records: Path) -> list[dict[str, Any]]:
    """Every training-run record under ``records``, validated (benchmark records are left out)."""
    return [r.to_dict() for r in record_files.read_all(records, "run")]


#: a cell's own config fields: a setting is everything else that changes the problem
CELL = ("optimizer", "lr", "weight_decay", "seed")
#: config fields that name or watch a run without changing the problem it solves
NOT_PROBLEM = ("preset", "eval_every", "gsnr_every")
#: what makes up a setting: the config fields in `RunConfig`'s order, then the record's task
#: revision (a task whose data or model changed is another problem, whatever its config says)
SETTING_FIELDS = (
    *(f.name for f in dataclasses.fields(RunConfig) if f.name not in CELL + NOT_PROBLEM),
    "task_revision",
)
#: seeds besides seed 0 a best cell needs before its reported mean leaves seed 0 out
OTHER_SEEDS = 3
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING}


def setting(record: dict[str, Any]) -> tuple:
    """The values of `SETTING_FIELDS` in ``record``'s config and envelope (a config field older
    records lack takes `RunConfig`'s default, which is what those runs used)."""
    c = {**record["config"], "task_revision": record["task_revision"]}
    return tuple(c.get(f, _DEFAULTS.get(f)) for f in SETTING_FIELDS)


def describe(key: tuple) -> dict[str, Any]:
    """A setting key as ``{field: value}``."""
    return dict(zip(SETTING_FIELDS, key, strict=True))


def presets(runs: list[dict[str, Any]]) -> list[str]:
    """The presets that wrote a setting's runs, sorted."""
    return sorted({r["config"].get("preset") or r.get("preset") or "-" for r in runs})


def metric_of(runs: list[dict[str, Any]]) -> str:
    """The selection metric: ``val_accuracy`` where any run reports it, else ``val_loss``."""
    return "val_accuracy" if any(r["metrics"].get("val_accuracy") is not None for r in runs) else "val_loss"


def report_metric(runs: list[dict[str, Any]], selection: str) -> str:
    """The metric a verdict is reported on: ``selection``'s test-split twin (``test_loss`` for
    ``val_loss``) where every run of the setting that did not diverge reports it, else ``selection``."""
    test = "test_" + selection.removeprefix("val_")
    finished = [r for r in runs if not r["metrics"].get("diverged")]
    return test if finished and all(r["metrics"].get(test) is not None for r in finished) else selection


def reported_runs(row: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The seeds of a best cell its reported value averages, and whether seed 0 (the run that chose
    the cell) is among them: left out where at least `OTHER_SEEDS` other seeds exist."""
    others = [r for r in row["runs"] if r["config"]["seed"] != 0]
    if len(others) >= OTHER_SEEDS:
        return others, False
    return row["runs"], any(r["config"]["seed"] == 0 for r in row["runs"])


def better(metric: str) -> int:
    """+1 where larger is better, -1 where smaller is."""
    return 1 if goal(metric) == "max" else -1


def _value(record: dict[str, Any], key: str) -> float:
    """The metric, or NaN for a diverged or unevaluated run."""
    value = record["metrics"].get(key)
    return math.nan if value is None or record["metrics"]["diverged"] else float(value)


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values) or not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def one_per_seed(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``runs`` with one run per (optimizer, lr, weight decay, seed): the newest, where presets that
    differ only in bookkeeping (`NOT_PROBLEM`) ran the same cell and seed (a repeat is not
    another seed)."""
    newest: dict[tuple, dict[str, Any]] = {}
    for r in sorted(runs, key=lambda r: (str(r.get("created_utc", "")), str(r.get("id", "")))):
        newest[tuple(r["config"][f] for f in CELL)] = r
    return list(newest.values())


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (optimizer, lr, weight decay), averaged over its seeds (`one_per_seed`; NaN
    if any seed diverged)."""
    cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in one_per_seed(runs):
        c = r["config"]
        cells[(c["optimizer"], c["lr"], c["weight_decay"])].append(r)
    rows = []
    for (opt, lr, wd), rs in sorted(cells.items()):
        rs = sorted(rs, key=lambda r: r["config"]["seed"])
        row: dict[str, Any] = {"optimizer": opt, "lr": lr, "weight_decay": wd, "seeds": len(rs), "runs": rs}
        for key in ("val_loss", "val_accuracy", "test_loss", "test_accuracy", "final_train_loss"):
            row[key], row[f"{key}_std"] = _mean_std([_value(r, key) for r in rs])
        row["diverged"] = sum(r["metrics"]["diverged"] for r in rs)
        row["state_bytes"] = rs[0]["state_bytes"]
        row["param_bytes"] = rs[0]["param_bytes"]
        row["median_step_ms"] = statistics.median(
            r["median_step_ms"] for r in rs if r["median_step_ms"] is not None
        ) if any(r["median_step_ms"] is not None for r in rs) else math.nan  # fmt: skip
        row["wall_clock_s"] = statistics.fmean(r["wall_clock_s"] for r in rs)
        rss = [r["peak_rss_mib"] for r in rs if r.get("peak_rss_mib") is not None]
        row["peak_rss_mib"] = statistics.fmean(rss) if rss else math.nan
        rows.append(row)
    return rows


def score(row: dict[str, Any], metric: str) -> float:
    value = row[metric]
    return -math.inf if not math.isfinite(value) else better(metric) * value


def best_rows(rows: list[dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    """Each optimizer's best cell, chosen by its first seed's run (as the sweep chose the point to
    re-run with more seeds; choosing by the mean would favour one-seed cells, whose single value is
    noisier); ties go to the cell with more seeds. Its reported value is the mean over its seeds."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = best.get(row["optimizer"])
        if current is None or _first_key(row, metric) > _first_key(current, metric):
            best[row["optimizer"]] = row
    return best


def _first_key(row: dict[str, Any], metric: str) -> tuple[float, int]:

    return (metric_value(row["runs"][0], metric), row["seeds"])


def grid_stats(rows: list[dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    """Table-2 statistics per optimizer: peak ± seed std, grid average ± std over cells."""
    best = best_rows(rows, metric)
    out = {}
    for opt, top in best.items():
        cells = [r for r in rows if r["optimizer"] == opt]
        seed0 = [next((x for x in r["runs"] if x["config"]["seed"] == 0), r["runs"][0]) for r in cells]
        values = []
        for record in seed0:
            v = _value(record, metric)
            if not math.isfinite(v) and metric.endswith("accuracy"):
                v = record.get("chance_accuracy") or 0.0
            values.append(v)
        finite = [v for v in values if math.isfinite(v)]
        out[opt] = {
            "peak": top[metric],
            "peak_std": top[f"{metric}_std"],
            "peak_seeds": top["seeds"],
            "lr": top["lr"],
            "weight_decay": top["weight_decay"],
            "avg": statistics.fmean(finite) if finite else math.nan,
            "avg_std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
            "cells": len(cells),
            "diverged": sum(r["metrics"]["diverged"] for r in seed0),
        }
    return out


def smooth(values: list[float], alpha: float = 0.9) -> list[float]:
    """Exponential moving average (bias-corrected at the start, like Adam's)."""
    out, ema = [], 0.0
    for i, v in enumerate(values, 1):
        ema = alpha * ema + (1 - alpha) * v
        out.append(ema / (1 - alpha**i))
    return out


def lag(reference: dict[str, Any], other: dict[str, Any], fraction: float) -> tuple[int, int | None]:
    """Early convergence: the step at ``fraction`` of ``reference``'s run, and the first step at which
    ``other``'s smoothed training loss is as low as ``reference``'s there (None: never)."""
    ref = smooth([v for _, v, _ in reference["loss_curve"] if v is not None])
    oth = smooth([v for _, v, _ in other["loss_curve"] if v is not None])
    at = max(0, min(len(ref) - 1, round(fraction * len(reference["loss_curve"])) - 1))
    reached = next((i for i, v in enumerate(oth) if v <= ref[at]), None)
    return at, reached


def group(records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[setting(r)].append(r)
    return dict(sorted(groups.items(), key=lambda kv: str(kv[0])))
