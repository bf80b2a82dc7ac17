"""The floors score what simple models can: a bigram knows an alternating stream, a unigram does not;
a linear model learns the linear part of a label and not its XOR, with its L2 chosen on validation."""

from __future__ import annotations

import math

import pytest
import torch

from sgdsai_lab.floors import linear_floors, ngram_floors


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


def _xor_pixels(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8-pixel images of class 0 where x0 < 0, else 1 or 2 by the sign of x1 * x2 (an XOR): a linear
    model can learn class 0, not the XOR, so it ends near 75% where always 0 scores 50%."""
    x = torch.randn(n, 1, 2, 4, generator=torch.Generator().manual_seed(seed))
    flat = x.flatten(1)
    return x, torch.where(flat[:, 0] < 0, 0, 1 + (flat[:, 1] * flat[:, 2] > 0).long())


def test_the_linear_floor_beats_chance_and_trails_a_trained_network() -> None:
    train, val, test = _xor_pixels(800, 0), _xor_pixels(400, 1), _xor_pixels(400, 2)
    floors = linear_floors(train, val, test, classes=3)
    assert 0.6 < floors["linear_val"] < 0.85 and 0.6 < floors["linear_test"] < 0.85
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3)
    )
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(train[0]), train[1]).backward()
        opt.step()
    trained = float((net(test[0]).argmax(-1) == test[1]).float().mean())
    assert trained > floors["linear_test"] + 0.1


def test_the_linear_l2_is_chosen_on_validation_not_on_test() -> None:
    """Test labels all of the majority class: the crushing penalty (weights ~0, the bias alone, so
    always the majority) would score 100% there, while validation, labelled like training, wants the
    weak one. Swapping the two sets swaps the choice."""
    x, y = _xor_pixels(1200, 0)  # class 0 the majority
    train, val = (x[:800], y[:800]), (x[800:], y[800:])
    majority = (x[800:], torch.zeros(400, dtype=torch.long))
    weak, crushing = 1e-4, 1e3
    chosen = linear_floors(train, val, majority, classes=3, l2s=(crushing, weak))
    assert chosen["linear_l2"] == weak and chosen["linear_test"] < 0.9
    swapped = linear_floors(train, majority, val, classes=3, l2s=(crushing, weak))
    assert swapped["linear_l2"] == crushing and swapped["linear_val"] == 1.0
