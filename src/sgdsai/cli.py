"""The ``sgdsai`` command line: one entry point for every job the package runs.

Each subcommand lives in its own module, which defines ``register(subparsers)`` and imports its
heavy dependencies (transformers, matplotlib, ...) only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence

SUBCOMMAND_MODULES = (
    "sgdsai.demo",
    "sgdsai.experiments.data",
    "sgdsai.experiments.train",
    "sgdsai.experiments.sweep",
    "sgdsai.experiments.report",
    "sgdsai.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sgdsai", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    return int(args.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
