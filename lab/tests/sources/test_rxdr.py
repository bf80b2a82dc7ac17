"""The R XDR reader: character vectors (NA, UTF-8, Latin-1), lazy-load indexes and chunks, refusals."""

from __future__ import annotations

import struct

import pytest

from sgdsai_lab.sources import rxdr

from ..rxdr_bytes import Writer, charsxp, flags, header, intsxp, lazyload_db, rdb_chunk, strsxp

#: janeaustenr 1.0.0's data/Rdata.rdx, gunzipped: the index as R 4.2.1 wrote it
JANEAUSTENR_INDEX = bytes.fromhex(
    "580a000000030004020100030500000000055554462d38000002130000000300000213000000060000000d0000000200"
    "00000000055f2b0000000d0000000200055f2b00055c8d0000000d00000002000abbb80002ac5c0000000d0000000200"
    "0d68140002d32a0000000d0000000200103b3e000422bd0000000d0000000200145dfb0004113c000004020000000100"
    "040009000000056e616d657300000010000000060004000900000004656d6d61000400090000000d6d616e736669656c"
    "647061726b000400090000000f6e6f727468616e6765726162626579000400090000000a70657273756173696f6e0004"
    "00090000000e70726964657072656a7564696365000400090000001073656e736573656e736962696c697479000000fe"
    "000002130000000000000402000001ff0000001000000000000000fe0000000a000000010000000100000402000001ff"
    "000000100000000300040009000000097661726961626c6573000400090000000a7265666572656e6365730004000900"
    "00000a636f6d70726573736564000000fe"
)
LINES = ["EMMA", "", None, "her £20,000, naïve", "日本語 ✓", "By Jane Austen"]


def test_character_vector_round_trips_with_na_and_utf8() -> None:
    assert rxdr.unserialize(header() + strsxp(LINES)) == LINES


def test_latin1_flagged_strings_are_decoded_as_latin1() -> None:
    vector = flags(16) + struct.pack(">i", 1) + charsxp("£20", "latin-1")
    assert rxdr.unserialize(header() + vector) == ["£20"]


def test_version_2_header_without_native_encoding_is_read() -> None:
    assert rxdr.unserialize(header(version=2) + strsxp(["a", None])) == ["a", None]


def test_integer_vectors_map_na_to_none() -> None:
    assert rxdr.unserialize(header() + intsxp([3, -(2**31), -7])) == [3, None, -7]


def test_named_list_with_a_referenced_symbol_becomes_a_dict() -> None:
    w = Writer()
    inner = w.named_list({"a": intsxp([1])})  # defines the symbol `names`; the outer list refers to it
    assert rxdr.unserialize(header() + w.named_list({"x": inner, "y": strsxp(["z"])})) == {
        "x": {"a": [1]},
        "y": ["z"],
    }


def test_compressed_rdb_chunk_round_trips() -> None:
    chunk = rdb_chunk(header() + strsxp(LINES))
    rdb = b"padding" + chunk + b"more"
    assert rxdr.lazyload_value(rdb, 7, len(chunk)) == LINES


def test_lazyload_reads_every_variable_through_the_index() -> None:
    novels = {"emma": ["EMMA", None, "Finis"], "persuasion": ["Persuasion", "naïve"]}
    rdx, rdb = lazyload_db({name: header() + strsxp(lines) for name, lines in novels.items()})
    assert rxdr.lazyload(rdx, rdb) == novels


def test_reads_the_janeaustenr_index_as_shipped() -> None:
    import gzip

    index = rxdr.lazyload_index(gzip.compress(JANEAUSTENR_INDEX))
    assert list(index) == [
        "emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility",
    ]  # fmt: skip
    assert index["emma"] == (0, 352043)
    assert index["sensesensibility"] == (1334779, 266556)


def test_bytes_that_are_not_xdr_are_refused() -> None:
    with pytest.raises(rxdr.RFormatError, match="X"):
        rxdr.unserialize(b"A\n" + header()[2:] + strsxp(["a"]))


def test_an_unsupported_type_is_refused_by_its_code() -> None:
    with pytest.raises(rxdr.RFormatError, match="R type 4"):
        rxdr.unserialize(header() + flags(4) + b"\0" * 16)  # an environment


def test_truncated_data_is_refused() -> None:
    with pytest.raises(rxdr.RFormatError, match="more bytes needed"):
        rxdr.unserialize((header() + strsxp(LINES))[:-3])


def test_a_chunk_whose_length_header_disagrees_is_refused() -> None:
    chunk = rdb_chunk(header() + strsxp(["a"]))
    bad = struct.pack(">I", 999) + chunk[4:]
    with pytest.raises(rxdr.RFormatError, match="not 999"):
        rxdr.lazyload_value(bad, 0, len(bad))
