"""``sgdsai bench table``: the markdown tables of the benchmark records, for the README.

Reads only benchmark records (``experiments/records/bench/*.json``); each kind of record renders itself
with its module's ``markdown(record)``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from sgdsai_lab import records as record_files

logger = logging.getLogger(__name__)

FIGURE = Path("experiments/report/bench-figure1.png")

#: record name prefix -> module that renders it
RENDERERS = {
    "memory_state": "sgdsai_lab.bench.memory",
    "step_": "sgdsai_lab.bench.step",
    "fits_": "sgdsai_lab.bench.fits",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("table", help="markdown tables from the benchmark records (for the README)")
    p.add_argument("--records", type=Path, default=record_files.RECORDS)
    p.add_argument("--output", type=Path, help="write here instead of standard output")
    p.add_argument(
        "--readme", type=Path, help="replace the block between <!-- bench:begin/end --> markers in this file"
    )
    p.add_argument(
        "--latest", action="store_true", help="only the newest record of each name (implied by --readme)"
    )
    p.add_argument(
        "--figure", type=Path, default=FIGURE, help=f"the Figure-1 style plot (default: {FIGURE.as_posix()})"
    )
    p.set_defaults(run=run)


def figure(records: Path, path: Path) -> bool:
    """The paper's Figure 1 from the records: optimizer state and step time against parameter count
    (state from the newest memory record, step times from the newest CPU step record of each model
    size, one line per candidate measured at two sizes or more). Returns whether there was anything to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    loaded = [r.to_dict() for r in record_files.read_all(records, "bench")]
    memory = [r for r in loaded if r["name"].startswith("memory_state")]
    newest = {r["name"]: r for r in sorted(loaded, key=lambda r: r["created_utc"])}
    steps = [
        r for r in newest.values() if r["name"].startswith("step_") and r["config"].get("device") == "cpu"
    ]
    if not memory and not steps:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if memory:
        rows = [r for r in memory[-1]["results"] if "gib" in r]
        for opt in dict.fromkeys(r["optimizer"] for r in rows):
            mine = [r for r in rows if r["optimizer"] == opt]
            left.plot([r["params"] / 1e9 for r in mine], [r["gib"] for r in mine], "o-", label=opt, alpha=0.8)
        left.set(xscale="log", yscale="log", xlabel="parameters (billions)", ylabel="optimizer state (GiB)",
                 title="Optimizer state, fp32 (meta device)")  # fmt: skip
        left.legend(fontsize=7)
    points: dict[str, list[tuple[float, float]]] = {}
    for rec in steps:
        for name, row in rec["results"]["candidates"].items():
            if name != "probe":
                points.setdefault(name, []).append((rec["config"]["params"] / 1e9, row["median_ms"]))
    for name, pts in sorted(points.items()):
        if len({x for x, _ in pts}) >= 2:
            right.plot(*zip(*sorted(pts)), "o-", label=name, alpha=0.8)
    right.set(xscale="log", yscale="log", xlabel="parameters (billions)", ylabel="step time, median (ms)",
              title="Optimizer step, fp32, GPT-2 shapes, CPU")  # fmt: skip
    right.legend(fontsize=7)
    sizes = sorted({rec["config"]["params"] / 1e9 for rec in steps})
    right.set_xticks(sizes, [f"{x:.3g}" for x in sizes])
    for ax in (left, right):
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def render(records: Path, *, latest: bool = False) -> str:
    """Every record's table; with ``latest``, only the newest record of each name (a benchmark
    rerun with the same configuration supersedes the older one, which stays on disk)."""
    sections = []
    loaded = record_files.read_all(records, "bench")
    if latest:
        newest = {r.body["name"]: r for r in sorted(loaded, key=lambda r: r.created_utc)}
        loaded = sorted(newest.values(), key=lambda r: r.id)
    for found in loaded:
        rec, path = found.to_dict(), found.path(records)
        module = next((m for prefix, m in RENDERERS.items() if rec["name"].startswith(prefix)), None)
        if module is None:
            continue
        lines = importlib.import_module(module).markdown(rec)
        machine = rec["machine"]
        source = (
            f"Record [`{found.id}`]({path.as_posix()}): {machine['cpu']}, {machine['torch_threads']} "
            f"threads, torch {rec['versions']['torch']}, git {rec['git']['sha']}{'-dirty' if rec['git']['dirty'] else ''}."
        )
        notes = f" {rec['notes'].rstrip('.')}." if rec.get("notes") else ""
        load = rec["config"].get("load_average_at_start")
        notes += f" 1-min load average at start: {load[0]:.1f}." if load else ""
        sections.append("\n".join([*lines, "", source + notes]))
    return "\n\n".join(sections) + "\n"


def run(args: argparse.Namespace) -> int:
    text = render(args.records, latest=args.latest or bool(args.readme))
    if figure(args.records, args.figure):
        logger.info("wrote %s", args.figure)
        text = f"![optimizer state and step time against model size]({args.figure.as_posix()})\n\n{text}"
    if args.readme:
        from sgdsai_lab.readme import replace_block

        replace_block(args.readme, "bench", text)
        logger.info("updated the bench block of %s", args.readme)
    if args.output:
        args.output.write_text(text)
        logger.info("wrote %s", args.output)
    elif not args.readme:
        sys.stdout.write(text)
    return 0
