"""``sgdsai bench``: measurements of the optimizer itself (state memory, step time, what fits).

Each benchmark is a module with ``register(subparsers)`` listed in `BENCH_MODULES`; each run
writes one JSON record under ``experiments/records/`` and plots are drawn from records only.
"""

from __future__ import annotations

import argparse
import importlib

BENCH_MODULES = (
    "sgdsai_lab.bench.memory",
    "sgdsai_lab.bench.step",
    "sgdsai_lab.bench.fits",
    "sgdsai_lab.bench.table",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="optimizer benchmarks: state memory, step time, what fits")
    inner = parser.add_subparsers(dest="bench", required=True)
    for name in BENCH_MODULES:
        importlib.import_module(name).register(inner)
