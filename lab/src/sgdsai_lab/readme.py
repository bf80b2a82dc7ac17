"""Generated blocks in Markdown files: text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

The README's result tables are written by the commands that compute them (``sgdsai report
--readme``, ``sgdsai bench table --readme``), never by hand, so they cannot drift from the records.
"""

from __future__ import annotations

import os
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_block(path: Path, name: str, text: str) -> None:
    """Replace what lies between the ``name`` markers in ``path`` by ``text`` (written atomically).

    Raises ``ValueError`` naming the markers when they are missing, repeated or out of order, so a
    generated block is never appended somewhere unexpected.
    """
    begin, end = markers(name)
    source = path.read_text()
    if source.count(begin) != 1 or source.count(end) != 1 or source.index(begin) > source.index(end):
        raise ValueError(f"{path} needs exactly one {begin} ... {end} pair, in that order")
    head, rest = source.split(begin)
    _, tail = rest.split(end)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(f"{head}{begin}\n{text.strip()}\n{end}{tail}")
    os.replace(tmp, path)
