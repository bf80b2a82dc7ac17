r"""Trivial floors of a language-modelling task: what n-gram counts score on its evaluation targets.

A model that ends above the bigram floor has learnt no more than which token follows which, so a
comparison of optimizers there says nothing about training a transformer. Both floors are
cross-entropies in nats per target token, from counts over the whole training split:

$$P_1(b) = \frac{c(b) + 1}{N + V}, \qquad
P_2(b \mid a) = \lambda \frac{c(a, b)}{c(a)} + (1 - \lambda) P_1(b)$$

(add-one unigram; bigram interpolated with the unigram, $\lambda$ chosen on the validation targets
from a grid of 0.01 to 0.999, so the floor is if anything optimistic; a context never seen in training
falls back to $P_1$).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["LAMBDAS", "ngram_floors"]

#: The interpolation weights tried for the bigram floor.
LAMBDAS = (*(i / 100 for i in range(1, 100)), 0.995, 0.999)


def ngram_floors(train: Tensor, val: Tensor, test: Tensor, vocab: int) -> dict[str, float]:
    """Unigram and bigram cross-entropies of the targets of ``val`` and ``test`` windows.

    ``val`` and ``test`` are ``(rows, context)`` token windows, scored as the model is: each
    token after the first given the one before it. ``train`` is the 1-D training token stream.
    Returns ``unigram_val``, ``unigram_test``, ``bigram_val``, ``bigram_test`` and ``bigram_lambda``.
    """
    train = train.long()
    unigram = (torch.bincount(train, minlength=vocab).double() + 1) / (len(train) + vocab)
    pairs = train[:-1] * vocab + train[1:]
    keys, counts = torch.unique(pairs, return_counts=True)
    context = torch.bincount(train[:-1], minlength=vocab).double()

    def scores(windows: Tensor) -> tuple[Tensor, Tensor]:
        """Per target: the unigram probability and the bigram relative frequency."""
        a, b = windows[:, :-1].reshape(-1).long(), windows[:, 1:].reshape(-1).long()
        key = a * vocab + b
        index = torch.searchsorted(keys, key).clamp(max=len(keys) - 1)
        pair = torch.where(keys[index] == key, counts[index].double(), torch.zeros((), dtype=torch.float64))
        seen = context[a] > 0
        relative = torch.where(seen, pair / context[a].clamp(min=1), unigram[b])
        return unigram[b], relative

    def bigram(p1: Tensor, relative: Tensor, lam: float) -> float:
        return float(-torch.log(lam * relative + (1 - lam) * p1).mean())

    p1_val, rel_val = scores(val)
    p1_test, rel_test = scores(test)
    lam = min(LAMBDAS, key=lambda lam: bigram(p1_val, rel_val, lam))
    return {
        "unigram_val": float(-p1_val.log().mean()),
        "unigram_test": float(-p1_test.log().mean()),
        "bigram_val": bigram(p1_val, rel_val, lam),
        "bigram_test": bigram(p1_test, rel_test, lam),
        "bigram_lambda": lam,
    }
