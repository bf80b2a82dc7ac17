"""Datasets: embedded defaults that need nothing, and fetchers for larger ones into a cache folder.

Embedded: the installed Python standard library's source as LM bytes, scikit-learn's 8x8 digits.
Fetched (``sgdsai data fetch NAME``): Fashion-MNIST from Debian's ``dataset-fashion-mnist``
package, via ``apt-get download`` and ``dpkg-deb -x`` (no install, no dependencies), into
``$SGDSAI_DATA`` (default ``~/.cache/sgdsai``). Fetching is idempotent and verified by hash.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib
import logging
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

FASHION_FILES = {  # sha256 of the files in dataset-fashion-mnist 0.0~git20200523.55506a9-1
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
FASHION_DEB = "dataset-fashion-mnist"
FASHION_DIR_IN_DEB = "usr/share/datasets/fashion-mnist"


class DatasetMissing(FileNotFoundError):
    """A dataset that must be fetched first; the message names the command that fetches it."""


def cache_dir() -> Path:
    return Path(os.environ.get("SGDSAI_DATA", Path.home() / ".cache" / "sgdsai"))


def _stdlib_files(limit: int) -> list[bytes]:
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
    return _as_tokens(_stdlib_files(limit))


def stdlib_split(limit: int, every: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, val)`` token ids from the first ``limit`` bytes, split by file: every
    ``every``-th file is held out, so both halves mix all packages (a positional split would
    hold out only ``encodings/``' codec tables)."""
    files = _stdlib_files(limit)
    return (
        _as_tokens([f for i, f in enumerate(files) if i % every != every - 1]),
        _as_tokens([f for i, f in enumerate(files) if i % every == every - 1]),
    )


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits as ``(N, 1, 8, 8)`` floats standardised to mean 0, std 1,
    and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)
    return (x - x.mean()) / x.std(), torch.tensor(bunch.target, dtype=torch.long)


def _read_idx(path: Path) -> torch.Tensor:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def fashion_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST ``split`` ("train" or "test") as ``(N, 1, 28, 28)`` floats normalised with the
    training set's mean and std (0.286, 0.353), and int64 labels."""
    folder = cache_dir() / "fashion-mnist"
    prefix = "train" if split == "train" else "t10k"
    images, labels = folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
    if not (images.exists() and labels.exists()):
        raise DatasetMissing(f"Fashion-MNIST is not in {folder}; run `sgdsai data fetch fashion-mnist`")
    x = _read_idx(images).float().div(255).sub(0.286).div(0.353).unsqueeze(1)
    return x, _read_idx(labels).long()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified(folder: Path, files: dict[str, str]) -> bool:
    """Whether every ``name -> sha256`` in ``files`` is present in ``folder`` with that hash."""
    return all((folder / n).exists() and sha256(folder / n) == h for n, h in files.items())


def install_verified(source: Path, folder: Path, files: dict[str, str], origin: str) -> None:
    """Check ``files`` (relative names -> sha256) under ``source``, then copy them into ``folder``.
    Nothing is copied unless every file matches, so a cache folder is never half-updated."""
    for name, digest in files.items():
        if sha256(source / name) != digest:
            raise RuntimeError(f"{name} from {origin} does not match its recorded sha256")
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, folder / name)


def unpack_deb(package: str, workdir: Path) -> Path:
    """``apt-get download PACKAGE`` into ``workdir`` and unpack it there (no install, no
    dependencies, no root needed); returns the unpacked root."""
    try:
        subprocess.run(["apt-get", "download", package], cwd=workdir, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        raise RuntimeError(
            f"apt-get download {package} failed: {detail.decode(errors='replace') or e}"
        ) from e
    (deb,) = workdir.glob(f"{package}_*.deb")
    root = workdir / f"{package}-unpacked"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def pip_download(requirement: str, workdir: Path, *, sdist: bool = False) -> Path:
    """``pip download --no-deps REQUIREMENT`` (a wheel, or the sdist) into ``workdir``; returns the file."""
    import sys

    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "-d",
        str(workdir),
        requirement,
    ]
    if sdist:
        command[4:4] = ["--no-binary", ":all:"]
    subprocess.run(command, check=True)
    (path,) = [p for p in workdir.iterdir() if p.is_file()]
    return path


def fetch_fashion_mnist() -> Path:
    """Download the Debian package into a temporary folder, unpack it, verify and copy the four
    files into the cache. Files already present and verified are not fetched again."""
    folder = cache_dir() / "fashion-mnist"
    if verified(folder, FASHION_FILES):
        logger.info("Fashion-MNIST already in %s", folder)
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        root = unpack_deb(FASHION_DEB, Path(tmp))
        install_verified(root / FASHION_DIR_IN_DEB, folder, FASHION_FILES, FASHION_DEB)
    logger.info("Fashion-MNIST fetched into %s", folder)
    return folder


def _lazy_fetcher(module: str, function: str, *args: str) -> Callable[[], Path]:
    """``sgdsai.experiments.MODULE.FUNCTION(*args)``, imported only when it runs (those modules
    import this one)."""
    return lambda: getattr(importlib.import_module(f"sgdsai_lab.sources.{module}"), function)(*args)


FETCHERS = {
    "fashion-mnist": fetch_fashion_mnist,
    **{n: _lazy_fetcher("corpora", "fetch", n) for n in ("english", "python-docs")},
    **{n: _lazy_fetcher("pretrained", f"fetch_{n}") for n in ("smollm2", "minilm", "fortunes")},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="fetch datasets into $SGDSAI_DATA (default ~/.cache/sgdsai)")
    sub = p.add_subparsers(dest="data_command", required=True)
    fetch = sub.add_parser("fetch", help="fetch a dataset (idempotent, verified)")
    fetch.add_argument("name", choices=sorted(FETCHERS))
    fetch.set_defaults(run=lambda args: FETCHERS[args.name]() and 0)
    from sgdsai_lab.sources import bpe  # light: its heavy imports happen when it runs

    bpe.register(sub)
