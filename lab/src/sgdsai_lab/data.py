"""``sgdsai data``: fetch any dataset into ``$SGDSAI_DATA`` (default ``~/.cache/sgdsai``), or train a BPE.

Fetching is idempotent and verified by hash; each source module knows how to fetch its own data.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from sgdsai_lab.sources import bpe, corpora, images, pretrained


def _fetcher(module: ModuleType, function: str, *args: str) -> Callable[[], Path]:
    """``module.function(*args)``, looked up when it runs (so a test can replace the function)."""
    return lambda: getattr(module, function)(*args)


FETCHERS = {
    "fashion-mnist": _fetcher(images, "fetch_fashion_mnist"),
    **{n: _fetcher(corpora, "fetch", n) for n in ("english", "python-docs")},
    **{n: _fetcher(pretrained, f"fetch_{n}") for n in ("smollm2", "minilm", "fortunes")},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="fetch datasets into $SGDSAI_DATA (default ~/.cache/sgdsai)")
    sub = p.add_subparsers(dest="data_command", required=True)
    fetch = sub.add_parser("fetch", help="fetch a dataset (idempotent, verified)")
    fetch.add_argument("name", choices=sorted(FETCHERS))
    fetch.set_defaults(run=lambda args: FETCHERS[args.name]() and 0)
    bpe.register(sub)
