"""``sgdsai report``: markdown tables and PNG plots made from the JSON records alone.

Runs are grouped by setting (task, data, size, steps, preset). Within a setting, each
(optimizer, lr, weight decay) cell is averaged over its seeds. The metric is validation accuracy
where the task reports one (larger is better), validation loss otherwise; diverged runs count as
the worst possible when choosing a best point. For the paper's Table-2 statistics:

* **peak**: the best cell (chosen by its seed-0 run, as the sweep chose it) averaged over its seeds,
  ± the seed standard deviation;
* **grid average**: the mean over every cell of the grid at seed 0, ± the standard deviation
  across cells; a diverged run counts as chance accuracy (classification) and is left out of a
  loss average (the count of diverged runs is shown beside it).

The claims the records can test are summarised by :mod:`sgdsai_lab.claims`;
``--readme`` writes that summary into a README between ``<!-- results:begin/end -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_OUT = Path("experiments/report")
LAG_FRACTIONS = (0.25, 0.5)


def load_records(records: Path) -> list[dict[str, Any]]:
    """Every training record under ``records`` (other JSON files there are ignored)."""
    out = []
    for path in sorted(records.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            logger.warning("unreadable record skipped: %s", path)
            continue
        if isinstance(record, dict) and record.get("schema") == 1 and "loss_curve" in record:
            out.append(record)
    return out


def setting(record: dict[str, Any]) -> tuple:
    c = record["config"]
    return (c["task"], c["data"], c["size"], c["steps"], record.get("preset", ""))


def metric_of(runs: list[dict[str, Any]]) -> str:
    """``val_accuracy`` where any run reports it, else ``val_loss``."""
    return "val_accuracy" if any(r["metrics"].get("val_accuracy") is not None for r in runs) else "val_loss"


def better(metric: str) -> int:
    """+1 where larger is better, -1 where smaller is."""
    return 1 if metric.endswith("accuracy") else -1


def _value(record: dict[str, Any], key: str) -> float:
    """The metric, or NaN for a diverged or unevaluated run."""
    value = record["metrics"].get(key)
    return math.nan if value is None or record["metrics"]["diverged"] else float(value)


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values) or not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (optimizer, lr, weight decay), averaged over seeds (NaN if any seed diverged)."""
    cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        c = r["config"]
        cells[(c["optimizer"], c["lr"], c["weight_decay"])].append(r)
    rows = []
    for (opt, lr, wd), rs in sorted(cells.items()):
        rs = sorted(rs, key=lambda r: r["config"]["seed"])
        row: dict[str, Any] = {"optimizer": opt, "lr": lr, "weight_decay": wd, "seeds": len(rs), "runs": rs}
        for key in ("val_loss", "val_accuracy", "final_train_loss"):
            row[key], row[f"{key}_std"] = _mean_std([_value(r, key) for r in rs])
        row["diverged"] = sum(r["metrics"]["diverged"] for r in rs)
        row["state_bytes"] = rs[0]["state_bytes"]
        row["param_bytes"] = rs[0]["param_bytes"]
        row["median_step_ms"] = statistics.median(
            r["median_step_ms"] for r in rs if r["median_step_ms"] is not None
        ) if any(r["median_step_ms"] is not None for r in rs) else math.nan  # fmt: skip
        row["wall_clock_s"] = statistics.fmean(r["wall_clock_s"] for r in rs)
        rows.append(row)
    return rows


def _score(row: dict[str, Any], metric: str) -> float:
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
    from sgdsai_lab.sweep import metric_value  # the sweep's own rule for its best point

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


def _fmt(x: float | None, spec: str = ".4f") -> str:
    if x is None:
        return "—"
    return "diverged" if not math.isfinite(x) else format(x, spec)


def _spec(metric: str) -> str:
    return ".2%" if metric.endswith("accuracy") else ".4f"


def render_setting(key: tuple, runs: list[dict[str, Any]], out: Path) -> list[str]:
    """The markdown section (and PNGs in ``out``) for one setting."""
    task, data, size, steps, preset = key
    rows = summarise(runs)
    metric = metric_of(runs)
    best = best_rows(rows, metric)
    spec = _spec(metric)
    slug = f"{task}-{data}-{size}-{steps}-{preset or 'none'}"
    first = runs[0]
    adamw_state = best["adamw"]["state_bytes"] if "adamw" in best else None
    lines = [
        f"## {first['task_description']}, {steps} steps (preset `{preset or '-'}`)",
        "",
        (
            f"{len(runs)} runs. Machine: {first['machine']['platform']}, {first['machine']['torch_threads']} "
            f"threads, device {first['machine']['device']}; git {str(first['git']['sha'])[:10]}; "
            f"torch {first['versions'].get('torch')}. Metric: {metric.replace('_', ' ')}."
        ),
        "",
        f"### Best configuration per optimizer (by mean {metric.replace('_', ' ')})",
        "",
        "| optimizer | lr | wd | seeds | val loss | val acc | train loss | state | state vs AdamW "
        "| opt. step (median) | wall-clock per run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for opt, row in sorted(best.items(), key=lambda kv: -_score(kv[1], metric)):
        ratio = f"{100 * row['state_bytes'] / adamw_state:.1f}%" if adamw_state else "—"
        acc = None if math.isnan(row["val_accuracy"]) and not row["diverged"] else row["val_accuracy"]
        lines.append(
            f"| {opt} | {row['lr']:g} | {row['weight_decay']:g} | {row['seeds']} "
            f"| {_fmt(row['val_loss'])}{_pm(row, 'val_loss', '.4f')} "
            f"| {_fmt(acc, '.2%')}{_pm(row, 'val_accuracy', '.2%') if acc is not None else ''} "
            f"| {_fmt(row['final_train_loss'])} | {row['state_bytes']:,} B | {ratio} "
            f"| {row['median_step_ms']:.2f} ms | {row['wall_clock_s']:.0f} s |"
        )
    stats = grid_stats(rows, metric)
    if any(s["cells"] > 1 for s in stats.values()):
        lines += [
            "",
            "### Peak and grid average (the paper's Table 2 statistics)",
            "",
            f"| optimizer | peak {metric.replace('_', ' ')} | at lr, wd | grid average | cells | diverged |",
            "|---|---|---|---|---|---|",
        ]
        for opt, s in sorted(stats.items(), key=lambda kv: -better(metric) * kv[1]["peak"]):
            lines.append(
                f"| {opt} | {_fmt(s['peak'], spec)}{_seeds(s, spec)} "
                f"| {s['lr']:g}, {s['weight_decay']:g} | {_fmt(s['avg'], spec)} ± {_fmt(s['avg_std'], spec)} "
                f"| {s['cells']} | {s['diverged']} |"
            )
    lines += [
        "",
        "### Every configuration",
        "",
        "| optimizer | lr | wd | seeds | diverged | val loss | val acc | train loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        acc = None if math.isnan(row["val_accuracy"]) and not row["diverged"] else row["val_accuracy"]
        lines.append(
            f"| {row['optimizer']} | {row['lr']:g} | {row['weight_decay']:g} | {row['seeds']} | {row['diverged']} "
            f"| {_fmt(row['val_loss'])} | {_fmt(acc, '.2%')} | {_fmt(row['final_train_loss'])} |"
        )
    lines += ["", *_lag_table(best), *_gsnr_table(best), ""]
    for name in _plots(rows, best, metric, out, slug):
        lines += [f"![{name}]({name})", ""]
    return lines


def _seeds(s: dict[str, Any], spec: str) -> str:
    if s["peak_seeds"] == 1:
        return " (1 seed)"
    return f" ± {_fmt(s['peak_std'], spec)} ({s['peak_seeds']} seeds)"


def _pm(row: dict[str, Any], key: str, spec: str) -> str:
    return f" ± {format(row[f'{key}_std'], spec)}" if row["seeds"] > 1 and math.isfinite(row[key]) else ""


def sgdsai_row(best: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    return best.get("sgdsai") or best.get("sgdsai-official")


def _lag_table(best: dict[str, dict[str, Any]]) -> list[str]:
    sai = sgdsai_row(best)
    if sai is None or "adamw" not in best:
        return []
    ref, oth = best["adamw"]["runs"][0], sai["runs"][0]
    lines = [
        f"### Early convergence ({sai['optimizer']} vs adamw, best runs, seed 0, smoothed training loss)",
        "",
        "| AdamW at | its loss | SGD-SaI first reaches it at | lag |",
        "|---|---|---|---|",
    ]
    for fraction in LAG_FRACTIONS:
        at, reached = lag(ref, oth, fraction)
        loss = smooth([v for _, v, _ in ref["loss_curve"] if v is not None])[at]
        where = "never" if reached is None else f"step {reached + 1}"
        ratio = "—" if reached is None else f"{(reached + 1) / (at + 1):.2f}×"
        lines.append(f"| step {at + 1} ({fraction:.0%}) | {loss:.4f} | {where} | {ratio} |")
    return [*lines, ""]


def _gsnr_table(best: dict[str, dict[str, Any]]) -> list[str]:
    """How much the raw g-SNR of traced tensors moves during the best SGD-SaI run (paper: little),
    and how close its first value is to sqrt(numel) (the floor for zero-mean gradients)."""
    row = sgdsai_row(best)
    if row is None:
        return []
    trace = row["runs"][0]["gsnr_trace"]
    numel = trace.get("numel", {})
    lines = [
        f"### g-SNR during training ({row['optimizer']}, lr {row['lr']:g}, seed {row['runs'][0]['config']['seed']})",
        "",
        "| tensor | numel | step 0 | step 0 / √numel | last traced | last / first | min / max over run |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, values in trace["tensors"].items():
        vs = [v for v in values if v is not None]
        if len(vs) < 2:
            continue
        n = numel.get(name)
        root = f"{vs[0] / math.sqrt(n):.3f}" if n else "—"
        lines.append(
            f"| `{name}` | {n or '—'} | {vs[0]:.1f} | {root} | {vs[-1]:.1f} | {vs[-1] / vs[0]:.3f} "
            f"| {min(vs) / max(vs):.3f} |"
        )
    return lines


def _plots(
    rows: list[dict[str, Any]], best: dict[str, dict[str, Any]], metric: str, out: Path, slug: str
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for opt, row in sorted(best.items()):
        curve = [(s, v) for s, v, _ in row["runs"][0]["loss_curve"] if v is not None]
        ax.plot([s for s, _ in curve], smooth([v for _, v in curve]), label=f"{opt} (lr {row['lr']:g})")
    ax.set(xlabel="step", ylabel="train loss (smoothed)", title=f"{slug}: best run per optimizer")
    ax.legend(fontsize=7)
    names.append(_save(fig, out, f"{slug}-loss.png"))
    wds = sorted({r["weight_decay"] for r in rows})
    fig, ax = plt.subplots(figsize=(6, 4))
    for opt in sorted({r["optimizer"] for r in rows}):
        for wd in wds:
            pts = [(r["lr"], r[metric]) for r in rows if r["optimizer"] == opt and r["weight_decay"] == wd]
            pts = [(x, y) for x, y in pts if math.isfinite(y)]
            if pts:
                label = opt if len(wds) == 1 else f"{opt} wd {wd:g}"
                ax.plot(*zip(*sorted(pts)), marker="o", label=label)
    ax.set(
        xscale="log",
        xlabel="peak learning rate",
        ylabel=metric.replace("_", " "),
        title=f"{slug}: lr sensitivity",
    )
    ax.legend(fontsize=6, ncol=2)
    names.append(_save(fig, out, f"{slug}-lr.png"))
    sai = sgdsai_row(best)
    if sai is not None:
        trace = sai["runs"][0]["gsnr_trace"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, values in trace["tensors"].items():
            pts = [(s, v) for s, v in zip(trace["steps"], values) if v is not None]
            if pts:
                ax.plot(*zip(*pts), label=name.split(".", 1)[-1])
        ax.set(yscale="log", xlabel="step", ylabel="raw g-SNR", title=f"{slug}: g-SNR of traced tensors")
        ax.legend(fontsize=7)
        names.append(_save(fig, out, f"{slug}-gsnr.png"))
    return names


def _save(fig: Any, out: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def group(records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[setting(r)].append(r)
    return dict(sorted(groups.items(), key=lambda kv: str(kv[0])))


def render(records: list[dict[str, Any]], out: Path) -> Path:
    """Write ``report.md`` and one set of PNGs per setting into ``out``; return the markdown path."""
    from sgdsai_lab.claims import claims_markdown

    out.mkdir(parents=True, exist_ok=True)
    groups = group(records)
    lines = [
        "# SGD-SaI experiments",
        "",
        f"Generated by `sgdsai report` from {len(records)} records.",
        "",
        "## The paper's claims on this machine",
        "",
        *claims_markdown(groups),
        "",
    ]
    for key, runs in groups.items():
        lines += render_setting(key, runs, out)
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    logger.info("report written to %s", path)
    return path


def _main(args: argparse.Namespace) -> int:
    records = load_records(args.records)
    if not records:
        raise SystemExit(
            f"no training records under {args.records}; run `sgdsai sweep` or `sgdsai train` first"
        )
    path = render(records, args.out)
    if args.readme:
        from sgdsai_lab.claims import claims_markdown
        from sgdsai_lab.readme import replace_block

        link = f"Full report with every table and plot: [{path.as_posix()}]({path.as_posix()})."
        replace_block(args.readme, "results", "\n".join([*claims_markdown(group(records)), "", link]))
        logger.info("updated the results block of %s", args.readme)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from sgdsai_lab.run import DEFAULT_RECORDS

    p = subparsers.add_parser("report", help="markdown tables and PNG plots from the records")
    p.add_argument("--records", type=Path, default=DEFAULT_RECORDS)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--readme", type=Path, help="also write the claims summary between <!-- results:begin/end --> markers"
    )
    p.set_defaults(run=_main)
