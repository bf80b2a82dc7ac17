"""The stdlib's source as LM bytes: deterministic, offline, split by whole files."""

from __future__ import annotations

import torch

from sgdsai_lab.sources import stdlib


def test_stdlib_bytes_are_deterministic_source_text() -> None:
    tokens = stdlib.stdlib_bytes(5000)
    assert tokens.shape == (5000,) and tokens.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < 256
    assert torch.equal(tokens, stdlib.stdlib_bytes(5000))
    assert b"import" in bytes(tokens.tolist())


def test_stdlib_split_holds_out_whole_files_from_the_same_bytes() -> None:
    train, val = stdlib.stdlib_split(300_000, every=4)
    whole = stdlib.stdlib_bytes(300_000)
    assert len(train) + len(val) == len(whole) == 300_000
    assert 0 < len(val) < len(train)
    assert torch.equal(
        train.bincount(minlength=256) + val.bincount(minlength=256), whole.bincount(minlength=256)
    )
    start = sum(len(f) for f in stdlib.stdlib_files(300_000)[:3])  # the first held-out file is the fourth
    assert torch.equal(val[:50], whole[start : start + 50])
