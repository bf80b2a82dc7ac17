"""Datasets: embedded defaults load offline; a missing fetched dataset names its fetch command."""

from __future__ import annotations

import gzip

import pytest
import torch

from sgdsai_lab import data


def test_missing_fashion_mnist_names_the_fetch_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    with pytest.raises(data.DatasetMissing, match="sgdsai data fetch fashion-mnist"):
        data.fashion_mnist("train")


def test_idx_files_are_read_as_written(tmp_path) -> None:
    array = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + array.numpy().tobytes()))
    assert torch.equal(data._read_idx(path), array)


def test_stdlib_bytes_are_deterministic_source_text() -> None:
    tokens = data.stdlib_bytes(5000)
    assert tokens.shape == (5000,) and tokens.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < 256
    assert torch.equal(tokens, data.stdlib_bytes(5000))
    assert b"import" in bytes(tokens.tolist())


def test_digits_are_standardised_with_ten_classes() -> None:
    pytest.importorskip("sklearn")
    x, y = data.digits()
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-5
    assert sorted(y.unique().tolist()) == list(range(10))


def test_stdlib_split_holds_out_whole_files_from_the_same_bytes() -> None:
    train, val = data.stdlib_split(300_000, every=4)
    whole = data.stdlib_bytes(300_000)
    assert len(train) + len(val) == len(whole) == 300_000
    assert 0 < len(val) < len(train)
    assert torch.equal(
        train.bincount(minlength=256) + val.bincount(minlength=256), whole.bincount(minlength=256)
    )
    start = sum(len(f) for f in data._stdlib_files(300_000)[:3])  # the first held-out file is the fourth
    assert torch.equal(val[:50], whole[start : start + 50])
