"""``sgdsai report``: markdown tables and PNG plots made from the JSON records alone.

Runs are grouped by setting (every config field that changes the problem, not the preset's name:
`sgdsai_lab.analysis`). Within a setting, each (optimizer, lr, weight decay) cell is averaged
over its seeds. A best cell is chosen on the validation metric (accuracy where the task reports one,
larger is better, else loss; diverged runs count as the worst possible) and its test-split value
is shown beside it where the records have one. For the paper's Table-2 statistics:

* **peak**: the best cell (chosen by its seed-0 run, as the sweep chose it) averaged over its seeds,
  ± the seed standard deviation;
* **grid average**: the mean over every cell of the grid at seed 0, ± the standard deviation
  across cells; a diverged run counts as chance accuracy (classification) and is left out of a
  loss average (the count of diverged runs is shown beside it).

The claims the records can test are summarised by `sgdsai_lab.claims`, the study's answer
by `sgdsai_lab.study`; ``--readme`` writes them into a README between the
``<!-- results:begin/end -->`` and ``<!-- study:begin/end -->`` markers, and the study's
headline between ``<!-- headline:begin/end -->``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
from pathlib import Path
from typing import Any

from sgdsai_lab.analysis import (
    best_rows,
    better,
    describe,
    grid_stats,
    group,
    lag,
    load_records,
    metric_of,
    one_per_seed,
    report_metric,
    score,
    smooth,
    summarise,
)
from sgdsai_lab.claims import claims_markdown, label, lr_grid, recorded_floor
from sgdsai_lab.study import headline, lr_table, study_markdown

logger = logging.getLogger(__name__)

DEFAULT_OUT = Path("experiments/report")
LAG_FRACTIONS = (0.25, 0.5)


def _fmt(x: float | None, spec: str = ".4f") -> str:
    if x is None:
        return "—"
    return "diverged" if not math.isfinite(x) else format(x, spec)


def _spec(metric: str) -> str:
    return ".2%" if metric.endswith("accuracy") else ".4f"


def slug(key: tuple) -> str:
    """A setting's file-name stem: readable, and unique through a hash of the whole key."""
    d = describe(key)
    batch = f"-b{d['batch_size']}" if d.get("batch_size") else ""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:6]
    return f"{d['task']}-{d['data']}-{d['size']}-{d['steps']}{batch}-{digest}"


def render_setting(key: tuple, runs: list[dict[str, Any]], out: Path) -> list[str]:
    """The markdown section (and PNGs in ``out``) for one setting."""
    d = describe(key)
    rows = summarise(runs)
    metric = metric_of(runs)
    test = report_metric(runs, metric)
    best = best_rows(rows, metric)
    spec = _spec(metric)
    name = slug(key)
    first = runs[0]
    adamw_state = best["adamw"]["state_bytes"] if "adamw" in best else None
    repeats = len(runs) - len(one_per_seed(runs))
    lines = [
        f"## {first['task_description']}, {d['steps']} steps"
        + (f", batch {d['batch_size']}" if d.get("batch_size") else ""),
        "",
        (
            f"{len(runs)} runs ({label(key, runs)}). Machine: {first['machine']['platform']}, "
            f"{first['machine']['torch_threads']} threads, device {first['machine']['device']}; git "
            f"{str(first['git']['sha'])[:10]}; torch {first['versions'].get('torch')}. Chosen on "
            f"{metric.replace('_', ' ')}; reported on "
            + (f"{test.replace('_', ' ')}." if test != metric else "it too (no held-out test split).")
            + (f" {repeats} repeated runs of a cell and seed (another preset): the newest counts." if repeats else "")
        ),
        "",
        f"### Best configuration per optimizer (chosen by its seed-0 {metric.replace('_', ' ')})",
        "",
        f"| optimizer | lr | wd | seeds | val loss | val acc | {test.replace('_', ' ') if test != metric else 'test'} "
        "| train loss | state | state vs AdamW | opt. step (median) | wall-clock per run | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for opt, row in sorted(best.items(), key=lambda kv: -score(kv[1], metric)):
        ratio = f"{100 * row['state_bytes'] / adamw_state:.1f}%" if adamw_state else "—"
        acc = None if math.isnan(row["val_accuracy"]) and not row["diverged"] else row["val_accuracy"]
        held_out = "—" if test == metric else f"{_fmt(row[test], _spec(test))}{_pm(row, test, _spec(test))}"
        rss = f"{row['peak_rss_mib']:.0f} MiB" if math.isfinite(row["peak_rss_mib"]) else "—"
        lines.append(
            f"| {opt} | {row['lr']:g} | {row['weight_decay']:g} | {row['seeds']} "
            f"| {_fmt(row['val_loss'])}{_pm(row, 'val_loss', '.4f')} "
            f"| {_fmt(acc, '.2%')}{_pm(row, 'val_accuracy', '.2%') if acc is not None else ''} "
            f"| {held_out} | {_fmt(row['final_train_loss'])} | {row['state_bytes']:,} B | {ratio} "
            f"| {row['median_step_ms']:.2f} ms | {row['wall_clock_s']:.0f} s | {rss} |"
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
    for png in _plots(rows, best, metric, out, name, _floors(runs, test)):
        lines += [f"![{png}]({png})", ""]
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


def _floors(runs: list[dict[str, Any]], metric: str) -> dict[str, float]:
    """The LM floors the records state for ``metric``'s split, by name (``{}`` for other tasks)."""
    if metric.endswith("accuracy"):
        return {}
    split = metric.split("_")[0]
    found = {model: recorded_floor(runs, metric, model) for model in ("unigram", "bigram")}
    return {f"{model} ({split})": value for model, value in found.items() if value is not None}


def _plots(
    rows: list[dict[str, Any]],
    best: dict[str, dict[str, Any]],
    metric: str,
    out: Path,
    slug: str,
    floors: dict[str, float],
) -> list[str]:
    """Loss curves of each optimizer's best seed-0 run (with the setting's floors), and the lr
    sensitivity of each optimizer's seed-0 runs on the selection ``metric`` (diverged lrs marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for opt, row in sorted(best.items()):
        curve = [(s, v) for s, v, _ in row["runs"][0]["loss_curve"] if v is not None]
        ax.plot([s for s, _ in curve], smooth([v for _, v in curve]), label=f"{opt} (lr {row['lr']:g})")
    for i, (name, value) in enumerate(sorted(floors.items())):
        ax.axhline(
            value,
            color="black",
            linestyle=("--", ":")[i % 2],
            linewidth=0.8,
            label=f"{name} floor {value:.3f}",
        )
    ax.set(xlabel="step", ylabel="train loss (smoothed)", title=f"{slug}: best run per optimizer")
    ax.legend(fontsize=7)
    names.append(_save(fig, out, f"{slug}-loss.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    diverged_at: list[float] = []
    for opt in sorted({r["optimizer"] for r in rows}):
        grid = lr_grid(rows, opt, metric)
        pts = sorted((lr, v) for lr, v in grid.items() if v is not None)
        if pts:
            ax.plot(*zip(*pts), marker="o", label=opt)
        diverged_at += [lr for lr, v in grid.items() if v is None]
    if diverged_at:
        ax.plot(diverged_at, [0.02 if metric.endswith("accuracy") else 0.98] * len(diverged_at), "kx",
                transform=ax.get_xaxis_transform(), label="diverged")  # fmt: skip
    ax.set(
        xscale="log",
        xlabel="peak learning rate",
        ylabel=f"{metric.replace('_', ' ')} (seed 0, best over wd)",
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


#: the endings of the figures `render_setting` draws, one set per setting
SETTING_FIGURES = ("-loss", "-lr", "-gsnr")


def render(records: list[dict[str, Any]], out: Path) -> Path:
    """Write ``report.md`` and one set of PNGs per setting into ``out``; return the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    groups = group(records)
    lines = [
        "# SGD-SaI experiments",
        "",
        f"Generated by `sgdsai report` from {len(records)} records.",
        "",
        "## Should I switch from AdamW?",
        "",
        *study_markdown(groups, out),
        "",
        "## Learning rates the study chose",
        "",
        "Each optimizer's best lr in each study workload, chosen on validation by seed 0 (the grid starts "
        "at three lrs two per decade around the class default, or an earlier sweep's best where the preset "
        "says so, and extends until bracketed).",
        "",
        "<!-- lr:begin -->",
        *(lr_table(groups) or ["No study records yet."]),
        "<!-- lr:end -->",
        "",
        "## The paper's claims on this machine",
        "",
        *claims_markdown(groups),
        "",
    ]
    for key, runs in groups.items():
        lines += render_setting(key, runs, out)
    path = out / "report.md"
    text = "\n".join(lines).rstrip() + "\n"
    path.write_text(text)
    for stale in out.glob("*.png"):  # a figure of a setting that is no longer one (its key changed)
        if stale.stem.endswith(SETTING_FIGURES) and f"]({stale.name})" not in text:
            stale.unlink()
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
        from sgdsai_lab.readme import replace_block

        link = f"Full report with every table and plot: [{path.as_posix()}]({path.as_posix()})."
        groups = group(records)
        replace_block(args.readme, "results", "\n".join([*claims_markdown(groups), "", link]))
        replace_block(
            args.readme, "study", "\n".join(study_markdown(groups, None, brief=True, report=path.as_posix()))
        )
        details = " Details: [Should I switch from AdamW?](#should-i-switch-from-adamw)."
        replace_block(args.readme, "headline", headline(groups) + details)
        logger.info("updated the results, study and headline blocks of %s", args.readme)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from sgdsai_lab.run import DEFAULT_RECORDS

    p = subparsers.add_parser("report", help="markdown tables and PNG plots from the records")
    p.add_argument("--records", type=Path, default=DEFAULT_RECORDS)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--readme",
        type=Path,
        help="also write the claims summary and the study's answer between the <!-- results:begin/end --> "
        "and <!-- study:begin/end --> markers, and the study's one-line headline between "
        "<!-- headline:begin/end -->",
    )
    p.set_defaults(run=_main)
