"""``sgdsai bench table``: the markdown tables of the benchmark records, for the README.

Reads only records (``experiments/records/*/record.json``); each kind of record renders itself
with its module's ``markdown(record)``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from sgdsai.bench import record

logger = logging.getLogger(__name__)

#: record name prefix -> module that renders it
RENDERERS = {
    "memory_state": "sgdsai.bench.memory",
    "step_": "sgdsai.bench.step",
    "fits_": "sgdsai.bench.fits",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("table", help="markdown tables from the benchmark records (for the README)")
    p.add_argument("--records", type=Path, default=record.RECORDS)
    p.add_argument("--output", type=Path, help="write here instead of standard output")
    p.add_argument(
        "--readme", type=Path, help="replace the block between <!-- bench:begin/end --> markers in this file"
    )
    p.set_defaults(run=run)


def render(records: Path) -> str:
    sections = []
    for path in sorted(records.glob("*/record.json")):
        rec = record.load(path)
        module = next((m for prefix, m in RENDERERS.items() if rec["name"].startswith(prefix)), None)
        if module is None:
            continue
        lines = importlib.import_module(module).markdown(rec)
        machine = rec["machine"]
        source = (
            f"Record [`{path.parent.name}`]({path.as_posix()}): {machine['cpu']}, {machine['torch_threads']} "
            f"threads, torch {rec['versions']['torch']}, git {rec['git_sha']}."
        )
        notes = f" {rec['notes'].rstrip('.')}." if rec.get("notes") else ""
        load = rec["config"].get("load_average_at_start")
        notes += f" 1-min load average at start: {load[0]:.1f}." if load else ""
        sections.append("\n".join([*lines, "", source + notes]))
    return "\n\n".join(sections) + "\n"


def run(args: argparse.Namespace) -> int:
    text = render(args.records)
    if args.readme:
        from sgdsai.readme import replace_block

        replace_block(args.readme, "bench", text)
        logger.info("updated the bench block of %s", args.readme)
    if args.output:
        args.output.write_text(text)
        logger.info("wrote %s", args.output)
    elif not args.readme:
        sys.stdout.write(text)
    return 0
