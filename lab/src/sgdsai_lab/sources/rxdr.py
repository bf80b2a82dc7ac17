"""Read R's XDR serialization, just enough for a package's lazy-load data base of character vectors.

R packages with ``LazyData`` store each data set in ``data/Rdata.rdb`` as a compressed, serialized R
object, and an index of them in ``data/Rdata.rdx``. This reader understands the parts of the format
(R Internals, "Serialization formats") that such an index and character vectors use: vectors of
strings, integers, logicals, doubles and lists, attribute pairlists, symbols and references to them.
Anything else (environments, closures, ...) is refused with its type code, not guessed at. It saves a
dependency on ``rdata``, which pulls in pandas and xarray.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from typing import Any

NILVALUE, REFSXP = 254, 255
SYMSXP, LISTSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 1, 2, 9, 10, 13, 14, 16, 19
NA_INTEGER = -(2**31)
#: CHARSXP encoding bits (in the "levels" part of the flags): how to decode the string's bytes
BYTES_MASK, LATIN1_MASK, UTF8_MASK, ASCII_MASK = 1 << 1, 1 << 2, 1 << 3, 1 << 6


class RFormatError(ValueError):
    """Bytes that are not R XDR serialization, or use a part of it this reader does not support."""


class _Reader:
    """A cursor over serialized bytes, with the reference table that symbols are added to."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0
        self.refs: list[Any] = []
        self.native_encoding = "utf-8"

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise RFormatError(f"serialized data ends at byte {len(self.data)}, {n} more bytes needed")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.integer()
        if n == -1:  # a long vector: the length follows as two 32-bit halves
            upper, lower = struct.unpack(">II", self.take(8))
            return (upper << 32) | lower
        return n

    def header(self) -> None:
        if self.take(2) != b"X\n":
            raise RFormatError("not R XDR serialization: it does not start with 'X\\n'")
        version = self.integer()
        self.take(8)  # the writer's R version and the oldest R version that can read it
        if version == 3:
            self.native_encoding = self.take(self.integer()).decode("ascii")
        elif version != 2:
            raise RFormatError(f"unsupported R serialization version {version}")

    def item(self) -> Any:
        flags = self.integer()
        kind, levels = flags & 0xFF, flags >> 12
        has_attributes, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind == NILVALUE:
            return None
        if kind == REFSXP:
            index = flags >> 8 or self.integer()
            return self.refs[index - 1]
        if kind == SYMSXP:
            name = self.item()
            self.refs.append(name)
            return name
        if kind == LISTSXP:
            return self.pairlist(has_attributes, has_tag)
        if kind == CHARSXP:
            return self.string(levels)
        if kind in (STRSXP, VECSXP):
            values = [self.item() for _ in range(self.length())]
        elif kind in (LGLSXP, INTSXP):
            values = [None if v == NA_INTEGER else v for v in self.ints(self.length())]
        elif kind == REALSXP:
            n = self.length()
            values = list(struct.unpack(f">{n}d", self.take(8 * n)))
        else:
            raise RFormatError(f"R type {kind} at byte {self.pos - 4} is not supported")
        attributes = self.item() if has_attributes else {}
        names = attributes.get("names")
        if kind == VECSXP and names is not None:
            return dict(zip(names, values))
        return values

    def ints(self, n: int) -> tuple[int, ...]:
        return struct.unpack(f">{n}i", self.take(4 * n))

    def string(self, levels: int) -> str | None:
        n = self.integer()
        if n == -1:
            return None  # NA_character_
        raw = self.take(n)
        if levels & UTF8_MASK:
            return raw.decode("utf-8")
        if levels & (LATIN1_MASK | BYTES_MASK):
            return raw.decode("latin-1")
        if levels & ASCII_MASK:
            return raw.decode("ascii")
        return raw.decode(self.native_encoding)

    def pairlist(self, has_attributes: bool, has_tag: bool) -> dict[str, Any]:
        """A pairlist (as attributes are stored) as ``{tag: value}``; untagged cells get their index."""
        out: dict[str, Any] = {}
        while True:
            if has_attributes:
                self.item()
            tag = self.item() if has_tag else str(len(out))
            out[tag] = self.item()
            flags = self.integer()  # the CDR: another cell or the end of the list
            if flags & 0xFF == NILVALUE:
                return out
            if flags & 0xFF != LISTSXP:
                raise RFormatError(f"pairlist ends with R type {flags & 0xFF}, not NULL")
            has_attributes, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))


def unserialize(data: bytes) -> Any:
    """The R object serialized in ``data`` (XDR format, version 2 or 3) as Python values: a character
    vector as ``list[str | None]`` (``None`` for ``NA``), integer and logical vectors as ``list[int |
    None]``, doubles as ``list[float]``, a list as ``list``, or ``dict`` when it has names."""
    reader = _Reader(data)
    reader.header()
    return reader.item()


def lazyload_index(rdx: bytes) -> dict[str, tuple[int, int]]:
    """The ``name -> (offset, length)`` of every variable in a gzipped ``.rdx`` lazy-load index."""
    index = unserialize(gzip.decompress(rdx))
    if index.get("compressed") != [1]:
        raise RFormatError(f"only zlib-compressed lazy-load data is supported, not {index.get('compressed')}")
    return {name: (offset, length) for name, (offset, length) in index["variables"].items()}


def lazyload_value(rdb: bytes, offset: int, length: int) -> Any:
    """The object stored at ``offset`` in a ``.rdb``: a 4-byte big-endian uncompressed length, then a
    zlib stream of its serialization."""
    chunk = rdb[offset : offset + length]
    if len(chunk) != length or length < 4:
        raise RFormatError(f"lazy-load chunk at {offset} (length {length}) runs past the end of the data")
    expected = struct.unpack(">I", chunk[:4])[0]
    raw = zlib.decompress(chunk[4:])
    if len(raw) != expected:
        raise RFormatError(f"lazy-load chunk at {offset} inflates to {len(raw)} bytes, not {expected}")
    return unserialize(raw)


def lazyload(rdx: bytes, rdb: bytes) -> dict[str, Any]:
    """Every variable of a lazy-load data base, by name, in the index's order."""
    return {name: lazyload_value(rdb, *where) for name, where in lazyload_index(rdx).items()}
