"""Tiny generated corpora written where :mod:`sgdsai_lab.sources.corpora` reads fetched ones."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sgdsai_lab.sources import corpora

WORDS = ("the", "a", "of", "and", "to", "in", "that", "it", "was", "her", "his", "said", "not", "be", "with")


def generated_documents(n: int, chars: int = 1500, seed: int = 0) -> list[str]:
    """``n`` documents of about ``chars`` characters of random words in lines, each titled by its index."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        lines = [f"Document {i}\n"]
        while sum(map(len, lines)) < chars:
            lines.append(" ".join(rng.choices(WORDS, k=rng.randint(4, 12))) + ".\n")
        docs.append("".join(lines))
    return docs


def write_corpus(cache: Path, name: str, documents: list[str]) -> None:
    """Store ``documents`` as the fetched corpus ``name`` under the cache folder ``cache``."""
    folder = cache / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(corpora.join(documents))
    (folder / "manifest.json").write_text(json.dumps({"corpus": name, "generated": True}))
