"""The ``sgdsai`` command line: one entry point for every job the package runs.

Each subcommand lives in its own module, which defines ``register(subparsers)`` and imports its
heavy dependencies (transformers, matplotlib, ...) only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

SUBCOMMAND_MODULES = (
    "sgdsai_lab.demo",
    "sgdsai_lab.data",
    "sgdsai_lab.run",
    "sgdsai_lab.sweep",
    "sgdsai_lab.report",
    "sgdsai_lab.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sgdsai", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--log-file",
        type=Path,
        help=f"also append the log, timestamped, to this file (train and sweep: {TRAINING_LOG} by default)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


#: where ``train`` and ``sweep`` append their log unless ``--log-file`` says otherwise (git-ignored)
TRAINING_LOG = Path("experiments/logs/sgdsai.log")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a bad configuration (a preset file, an option's value) is reported as one
    line on stderr, naming the field and the allowed values, with exit status 2 (argparse's)."""
    from sgdsai_lab.config import ConfigError

    try:
        return _run(argv)
    except ConfigError as error:
        sys.stderr.write(f"sgdsai: error: {error}\n")
        return 2


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    logging.getLogger().setLevel(level)  # also when something configured logging before us
    log_file = args.log_file or (TRAINING_LOG if args.command in ("train", "sweep") else None)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
