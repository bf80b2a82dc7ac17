"""Byte-level BPE token ids of the text corpora: a tokenizer trained here, its ids cached on disk.

The tokenizer (``tokenizers.ByteLevelBPETokenizer``, ``min_frequency`` 2, special token
``<|endoftext|>``) is trained on the training split only. Documents are cut at line ends into chunks
of about 100 kB and every 10th chunk is held out: both splits then sample every source (novels, the
Bible, plays, docs pages), and no held-out text is seen in training. A positional tail would hold
out only the end of the last source.

Cache: ``cache_dir()/bpe/CORPUS-vVOCAB/`` holds ``tokenizer.json``, ``train.npy`` and ``val.npy``
(uint16 ids, each document ending in the ``<|endoftext|>`` id) and ``meta.json``, which records the
corpus's sha256 and the build format: a cache whose corpus or format changed is rebuilt. A build is
written to a temporary folder and moved into place, so an interrupted one leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sgdsai_lab.fetch import cache_dir
from sgdsai_lab.sources import corpora

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

DEFAULT_VOCAB = 8192
END_OF_TEXT = corpora.END_OF_DOCUMENT
CHUNK_CHARS = 100_000
HOLD_OUT_EVERY = 10  #: every 10th chunk is validation
ENCODE_BATCH = 8  #: chunks per ``encode_batch`` call (one progress-bar step)
FORMAT = 1  #: bumped when the split, training or file layout changes, so caches are rebuilt


def chunks(documents: list[str], size: int = CHUNK_CHARS) -> list[tuple[str, bool]]:
    """Each document cut at line ends into pieces of at least ``size`` characters (the last piece of
    a document may be shorter), as ``(text, ends_a_document)``."""
    out = []
    for doc in documents:
        piece: list[str] = []
        length = 0
        for line in doc.splitlines(keepends=True):
            piece.append(line)
            length += len(line)
            if length >= size:
                out.append(("".join(piece), False))
                piece, length = [], 0
        if piece:
            out.append(("".join(piece), True))
        elif out:
            out[-1] = (out[-1][0], True)
    return out


def is_held_out(index: int) -> bool:
    """Whether chunk ``index`` belongs to the validation split."""
    return index % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1


def folder(corpus: str, vocab_size: int = DEFAULT_VOCAB) -> Path:
    return cache_dir() / "bpe" / f"{corpus}-v{vocab_size}"


def _check(corpus: str, vocab_size: int) -> None:
    if corpus not in corpora.CORPORA:
        raise ValueError(f"corpus must be one of {list(corpora.CORPORA)}, not {corpus!r}")
    if not 256 < vocab_size <= 65536:
        raise ValueError(f"vocab_size must be in (256, 65536] (ids are stored as uint16), not {vocab_size}")


def _train(texts: list[str], vocab_size: int) -> Tokenizer:
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[END_OF_TEXT], show_progress=False
    )
    return tokenizer


def _encode(tokenizer: Tokenizer, pieces: list[tuple[str, bool]], desc: str) -> np.ndarray:
    """The ids of ``pieces`` one after another, with ``<|endoftext|>`` after each document's end."""
    import numpy as np
    from tqdm import tqdm

    end = tokenizer.token_to_id(END_OF_TEXT)
    arrays = []
    with tqdm(
        total=sum(len(t) for t, _ in pieces), desc=desc, unit="char", unit_scale=True, leave=False
    ) as bar:
        for i in range(0, len(pieces), ENCODE_BATCH):
            batch = pieces[i : i + ENCODE_BATCH]
            for encoding, (text, ends) in zip(tokenizer.encode_batch([t for t, _ in batch]), batch):
                arrays.append(np.asarray(encoding.ids + [end] * ends, dtype=np.uint16))
                bar.update(len(text))
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint16)


def _build(corpus: str, vocab_size: int, documents: list[str], corpus_sha256: str, target: Path) -> None:
    """Train, encode and write the cache for ``corpus`` into ``target`` (replacing any old one)."""
    import numpy as np
    import tokenizers

    pieces = chunks(documents, CHUNK_CHARS)
    train = [p for i, p in enumerate(pieces) if not is_held_out(i)]
    val = [p for i, p in enumerate(pieces) if is_held_out(i)]
    if not train or not val:
        raise ValueError(
            f"corpus {corpus!r} makes {len(pieces)} chunks of {CHUNK_CHARS} characters; "
            f"at least {HOLD_OUT_EVERY} are needed to hold out a validation chunk"
        )
    start = time.perf_counter()
    tokenizer = _train([t for t, _ in train], vocab_size)
    trained = time.perf_counter()
    logger.info("BPE %s-v%d: trained in %.1f s; encoding", corpus, vocab_size, trained - start)
    ids = {
        "train": _encode(tokenizer, train, f"{corpus} train"),
        "val": _encode(tokenizer, val, f"{corpus} val"),
    }
    chars = {"train": sum(len(t) for t, _ in train), "val": sum(len(t) for t, _ in val)}
    meta = {
        "format": FORMAT,
        "corpus": corpus,
        "corpus_sha256": corpus_sha256,
        "vocab_size_requested": vocab_size,
        "vocab_size": tokenizer.get_vocab_size(),
        "end_of_text_id": tokenizer.token_to_id(END_OF_TEXT),
        "documents": len(documents),
        "chunks": {"train": len(train), "val": len(val)},
        "characters": chars,
        "tokens": {split: len(a) for split, a in ids.items()},
        "chars_per_token": sum(chars.values()) / max(1, sum(len(a) for a in ids.values())),
        "seconds": {"train": trained - start, "encode": time.perf_counter() - trained},
        "tokenizers": tokenizers.__version__,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        tokenizer.save(str(tmp / "tokenizer.json"))
        for split, array in ids.items():
            np.save(tmp / f"{split}.npy", array)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def meta(corpus: str, vocab_size: int = DEFAULT_VOCAB) -> dict[str, Any]:
    """The cache's ``meta.json`` for ``corpus`` at ``vocab_size``, building the cache first if it is
    missing or stale (its corpus's sha256 or the build format changed)."""
    _check(corpus, vocab_size)
    documents = corpora.documents(corpus)
    corpus_sha256 = corpora.digest(corpora.join(documents))
    target = folder(corpus, vocab_size)
    path = target / "meta.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached["format"] == FORMAT and cached["corpus_sha256"] == corpus_sha256:
            return cached
        logger.info("BPE %s-v%d: corpus or format changed; rebuilding %s", corpus, vocab_size, target)
    else:
        logger.info("BPE %s-v%d: not cached; building it in %s", corpus, vocab_size, target)
    _build(corpus, vocab_size, documents, corpus_sha256, target)
    return json.loads(path.read_text())


def tokenizer(corpus: str, vocab_size: int = DEFAULT_VOCAB) -> Tokenizer:
    """The trained tokenizer of ``corpus`` (built first if needed)."""
    from tokenizers import Tokenizer

    meta(corpus, vocab_size)
    return Tokenizer.from_file(str(folder(corpus, vocab_size) / "tokenizer.json"))


def token_ids(corpus: str, vocab_size: int = DEFAULT_VOCAB) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(train, val, vocab)``: the int64 token ids of ``corpus``'s two splits and the tokenizer's
    vocabulary size (smaller than ``vocab_size`` when the corpus has fewer merges to offer)."""
    import numpy as np

    info = meta(corpus, vocab_size)
    target = folder(corpus, vocab_size)
    train, val = (torch.from_numpy(np.load(target / f"{s}.npy").astype(np.int64)) for s in ("train", "val"))
    return train, val, info["vocab_size"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bpe", help="train (or reuse) a corpus's byte-level BPE and cache its ids")
    p.add_argument("corpus", choices=corpora.CORPORA)
    p.add_argument("--vocab", type=int, default=DEFAULT_VOCAB, help="vocabulary size (default 8192)")
    p.set_defaults(run=_main)


def _main(args: argparse.Namespace) -> int:
    info = meta(args.corpus, args.vocab)
    logger.info("%s\n%s", folder(args.corpus, args.vocab), json.dumps(info, indent=1))
    return 0
