"""Images: scikit-learn's 8x8 digits (embedded) and Fashion-MNIST, fetched from Debian's
``dataset-fashion-mnist`` package via ``apt-get download`` and ``dpkg-deb -x`` (no install, no
dependencies) into the cache, verified by hash.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
from pathlib import Path

import torch

from sgdsai_lab.fetch import DatasetMissing, cache_dir, install_verified, unpack_deb, verified

logger = logging.getLogger(__name__)

FASHION_FILES = {  # sha256 of the files in dataset-fashion-mnist 0.0~git20200523.55506a9-1
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
FASHION_DEB = "dataset-fashion-mnist"
FASHION_DIR_IN_DEB = "usr/share/datasets/fashion-mnist"


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
