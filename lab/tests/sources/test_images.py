"""Images: the embedded digits load offline; a missing Fashion-MNIST names its fetch command."""

from __future__ import annotations

import gzip

import pytest
import torch

from sgdsai_lab.fetch import DatasetMissing
from sgdsai_lab.sources import images


def test_missing_fashion_mnist_names_the_fetch_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    with pytest.raises(DatasetMissing, match="sgdsai data fetch fashion-mnist"):
        images.fashion_mnist("train")


def test_idx_files_are_read_as_written(tmp_path) -> None:
    array = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + array.numpy().tobytes()))
    assert torch.equal(images._read_idx(path), array)


def test_digits_are_standardised_with_ten_classes() -> None:
    pytest.importorskip("sklearn")
    x, y = images.digits()
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-5
    assert sorted(y.unique().tolist()) == list(range(10))
