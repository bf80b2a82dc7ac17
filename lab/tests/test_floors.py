"""The n-gram floors score what counts can: a bigram knows an alternating stream, a unigram does not."""

from __future__ import annotations

import math

import pytest
import torch

from sgdsai_lab.floors import ngram_floors


def test_bigram_knows_an_alternating_stream_and_the_unigram_does_not() -> None:
    stream = torch.arange(10_000) % 2  # 0 1 0 1 ...: each token fixes the next
    windows = stream[:640].reshape(10, 64)
    floors = ngram_floors(stream, windows, windows, vocab=4)
    assert floors["unigram_val"] == pytest.approx(math.log(2), rel=1e-3)  # two tokens, equally often
    assert floors["bigram_val"] < 0.02 and floors["bigram_lambda"] == 0.999


def test_floors_match_counts_by_hand_on_a_random_stream() -> None:
    gen = torch.Generator().manual_seed(0)
    train = torch.randint(5, (2_000,), generator=gen)
    windows = torch.randint(5, (4, 16), generator=gen)
    floors = ngram_floors(train, windows, windows, vocab=5)
    counts = torch.bincount(train, minlength=5).double()
    p1 = (counts + 1) / (len(train) + 5)
    targets = windows[:, 1:].reshape(-1)
    assert floors["unigram_test"] == pytest.approx(float(-p1[targets].log().mean()), rel=1e-9)
    lam = floors["bigram_lambda"]
    pair = torch.zeros(5, 5, dtype=torch.float64)
    for a, b in zip(train[:-1].tolist(), train[1:].tolist()):
        pair[a, b] += 1
    rel = pair / pair.sum(1, keepdim=True)
    prev = windows[:, :-1].reshape(-1)
    want = float(-(lam * rel[prev, targets] + (1 - lam) * p1[targets]).log().mean())
    assert floors["bigram_test"] == pytest.approx(want, rel=1e-9)
