r"""Trivial floors of a task: what n-gram counts score on a language model's evaluation targets, and
what a linear model scores on an image classifier's pixels.

**N-gram floors.** A model that ends above the bigram floor has learnt no more than which token follows which, so a
comparison of optimizers there says nothing about training a transformer. Both floors are
cross-entropies in nats per target token, from counts over the whole training split:

$$P_1(b) = \frac{c(b) + 1}{N + V}, \qquad
P_2(b \mid a) = \lambda \frac{c(a, b)}{c(a)} + (1 - \lambda) P_1(b)$$

(add-one unigram; bigram interpolated with the unigram, $\lambda$ chosen on the validation targets
from a grid of 0.01 to 0.999, so the floor is if anything optimistic; a context never seen in training
falls back to $P_1$).

**Linear floor.** A classifier that ends below it has learnt no more than a weighted sum of pixels. It
is the accuracy of multinomial logistic regression on the flattened pixels $x$ (bias $b$, weights $W$):

$$\min_{W, b}\; \frac{1}{N} \sum_{i=1}^{N} -\log \operatorname{softmax}(W x_i + b)_{y_i}
+ \frac{\lambda}{2} \lVert W \rVert_F^2, \qquad \hat y(x) = \arg\max_k (W x + b)_k$$

fitted on the training split by full-batch L-BFGS (strong-Wolfe line search, `LINEAR_ITERATIONS`
iterations from zero, float32), $\lambda$ chosen on the validation accuracy from `L2S` (the
first best in the grid), so again the floor is if anything optimistic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["L2S", "LAMBDAS", "LINEAR_ITERATIONS", "linear_floors", "ngram_floors"]

#: The interpolation weights tried for the bigram floor.
LAMBDAS = (*(i / 100 for i in range(1, 100)), 0.995, 0.999)
#: The L2 penalties tried for the linear floor, strongest first.
L2S = (1e-2, 1e-3, 1e-4)
#: L-BFGS iterations of each linear fit.
LINEAR_ITERATIONS = 100

Split = tuple[Tensor, Tensor]  #: images ``(N, ...)`` and their int64 class labels ``(N,)``


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


def _features(x: Tensor) -> Tensor:
    """Flattened pixels with a constant 1 appended (the bias's column)."""
    flat = x.flatten(1).float()
    return torch.cat([flat, torch.ones(len(flat), 1)], 1)


def _fit_linear(x: Tensor, y: Tensor, classes: int, l2: float, iterations: int) -> Tensor:
    """Weights ``(features + 1, classes)`` minimising the penalised cross-entropy (bias unpenalised)."""
    weights = torch.zeros(x.shape[1], classes, requires_grad=True)
    opt = torch.optim.LBFGS([weights], lr=1.0, max_iter=iterations, history_size=20,
                            tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")  # fmt: skip

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ weights, y) + 0.5 * l2 * weights[:-1].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return weights.detach()


def linear_floors(
    train: Split, val: Split, test: Split, classes: int, *, l2s: tuple[float, ...] = L2S,
    iterations: int = LINEAR_ITERATIONS,
) -> dict[str, float]:  # fmt: skip
    """Accuracy of the linear model on ``val`` and ``test``, fitted on ``train`` with each L2 penalty
    in ``l2s`` and the one best on ``val`` kept. Returns ``linear_val``, ``linear_test`` and
    ``linear_l2``."""
    if not l2s:
        raise ValueError("l2s must name at least one L2 penalty")
    x_train, x_val, x_test = (_features(x) for x, _ in (train, val, test))

    def accuracy(weights: Tensor, x: Tensor, y: Tensor) -> float:
        return float(((x @ weights).argmax(-1) == y).double().mean())

    fits = {l2: _fit_linear(x_train, train[1], classes, l2, iterations) for l2 in l2s}
    l2 = max(l2s, key=lambda l2: accuracy(fits[l2], x_val, val[1]))  # max keeps the first of ties
    return {
        "linear_val": accuracy(fits[l2], x_val, val[1]),
        "linear_test": accuracy(fits[l2], x_test, test[1]),
        "linear_l2": l2,
    }
