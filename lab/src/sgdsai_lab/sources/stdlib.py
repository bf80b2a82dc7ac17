"""The installed Python standard library's source as LM bytes: embedded, nothing to fetch."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import torch


def stdlib_files(limit: int) -> list[bytes]:
    """The stdlib's ``*.py`` files (tests and site-packages excluded) in sorted path order, up to
    ``limit`` bytes in all (the last file cut)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if "test" in path.relative_to(root).parts[0] or "site-packages" in path.parts:
            continue
        chunks.append(path.read_bytes()[: limit - total])
        total += len(chunks[-1])
        if total >= limit:
            break
    return chunks


def _as_tokens(chunks: list[bytes]) -> torch.Tensor:
    return torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.uint8).long()


def stdlib_bytes(limit: int) -> torch.Tensor:
    """The first ``limit`` bytes of the stdlib's source as int64 token ids in ``[0, 256)``."""
    return _as_tokens(stdlib_files(limit))


def stdlib_split(limit: int, every: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, val)`` token ids from the first ``limit`` bytes, split by file: every
    ``every``-th file is held out, so both halves mix all packages (a positional split would
    hold out only ``encodings/``' codec tables)."""
    files = stdlib_files(limit)
    return (
        _as_tokens([f for i, f in enumerate(files) if i % every != every - 1]),
        _as_tokens([f for i, f in enumerate(files) if i % every == every - 1]),
    )
