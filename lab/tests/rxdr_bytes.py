"""R XDR serialization built by hand from the spec (R Internals, "Serialization formats"), so the
reader in :mod:`sgdsai_lab.sources.rxdr` is tested against bytes it did not write itself."""

from __future__ import annotations

import gzip
import struct
import zlib

NIL = struct.pack(">i", 254)


def flags(kind: int, *, attributes: bool = False, tag: bool = False, levels: int = 0) -> bytes:
    return struct.pack(">i", kind | attributes << 9 | tag << 10 | levels << 12)


def header(version: int = 3) -> bytes:
    out = b"X\n" + struct.pack(">iii", version, 0x040201, 0x030500)
    return out + (struct.pack(">i", 5) + b"UTF-8" if version == 3 else b"")


def charsxp(value: str | None, encoding: str = "utf-8") -> bytes:
    """A CHARSXP: NA as length -1; ASCII flagged ASCII (64), others UTF-8 (8) or Latin-1 (4)."""
    if value is None:
        return flags(9) + struct.pack(">i", -1)
    raw = value.encode(encoding)
    levels = 64 if value.isascii() else {"utf-8": 8, "latin-1": 4}[encoding]
    return flags(9, levels=levels) + struct.pack(">i", len(raw)) + raw


def strsxp(values: list[str | None], attributes: bytes = b"") -> bytes:
    body = b"".join(charsxp(v) for v in values)
    return flags(16, attributes=bool(attributes)) + struct.pack(">i", len(values)) + body + attributes


def intsxp(values: list[int], kind: int = 13) -> bytes:
    return flags(kind) + struct.pack(f">i{len(values)}i", len(values), *values)


class Writer:
    """Writes named lists, giving the symbol ``names`` once and then by reference, as R does."""

    def __init__(self) -> None:
        self.symbols: list[str] = []

    def symbol(self, name: str) -> bytes:
        if name in self.symbols:
            return flags(255 | (self.symbols.index(name) + 1) << 8)
        self.symbols.append(name)
        return flags(1) + charsxp(name)

    def names(self, names: list[str]) -> bytes:
        """An attribute pairlist holding just ``names``."""
        return flags(2, tag=True) + self.symbol("names") + strsxp(names) + NIL

    def named_list(self, items: dict[str, bytes]) -> bytes:
        body = b"".join(items.values())
        return flags(19, attributes=True) + struct.pack(">i", len(items)) + body + self.names(list(items))


def rdb_chunk(serialized: bytes) -> bytes:
    """One lazy-load value as R stores it: 4-byte big-endian raw length, then the zlib stream."""
    return struct.pack(">I", len(serialized)) + zlib.compress(serialized)


def lazyload_db(objects: dict[str, bytes]) -> tuple[bytes, bytes]:
    """``(rdx, rdb)`` for serialized ``objects`` (each with its header): the gzipped index and data."""
    rdb, where = b"", {}
    for name, serialized in objects.items():
        chunk = rdb_chunk(serialized)
        where[name] = intsxp([len(rdb), len(chunk)])
        rdb += chunk
    w = Writer()
    index = w.named_list(
        {
            "variables": w.named_list(where),
            "references": w.named_list({}),
            "compressed": intsxp([1], kind=10),
        }
    )
    return gzip.compress(header() + index), rdb
