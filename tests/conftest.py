"""Shared fixtures: deterministic parameter sets and gradient streams for optimizer tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

SHAPES = [(6, 5), (5,), (), (3, 4, 2), (1,), (7, 3)]


def make_params(dtype: torch.dtype = torch.float64, seed: int = 0, shapes=SHAPES) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_() for s in shapes]


def clone_params(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone().requires_grad_() for p in params]


def synthetic_grad(p: torch.Tensor, step: int, index: int) -> torch.Tensor:
    """A gradient that depends on the step, the tensor and its current value (so that any
    divergence between optimizers propagates), with a non-zero mean."""
    gen = torch.Generator().manual_seed(1000 * step + index)
    noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
    return (noise + 0.3 + 0.5 * p.detach().double()).to(p.dtype)


def run_steps(
    opt: torch.optim.Optimizer,
    params: list[torch.Tensor],
    steps: int,
    grad_fn: Callable[[torch.Tensor, int, int], torch.Tensor | None] = synthetic_grad,
) -> None:
    for step in range(steps):
        for index, p in enumerate(params):
            p.grad = grad_fn(p, step, index)
        opt.step()


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
