r"""The SGD-SaI step for low-precision tensors: float32 math, optional stochastic rounding.

Each tensor is lifted to at least float32, updated there exactly as the single-tensor path does,
and written back. With ``stochastic_rounding`` a write to bfloat16 rounds up or down at random
with probability proportional to the distance, so :math:`\mathbb{E}[\mathrm{sr}(x)] = x` and
updates smaller than half a bfloat16 ulp (:math:`2^{-9}` relative) still move the weights on
average, where round-to-nearest drops them. The momentum buffer's dtype is chosen independently
(``momentum_dtype``): a bfloat16 buffer halves SGD-SaI's state for float32 weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["lowprecision_sgdsai", "stochastic_round"]


def stochastic_round(x: Tensor, dtype: torch.dtype, generator: torch.Generator | None = None) -> Tensor:
    """``x`` (float32) rounded to ``dtype``: stochastically for bfloat16, to nearest otherwise.

    A float32 whose low 16 bits are zero is a bfloat16; adding 16 uniform random bits to the low
    half before truncating rounds the magnitude up with probability (low half) / 2**16. Infinities
    and NaNs stay what they are; finite values above bfloat16's range may round to infinity.
    """
    if dtype != torch.bfloat16 or x.dtype != torch.float32:
        return x.to(dtype)
    bits = x.view(torch.int32)
    noise = torch.randint(0, 1 << 16, x.shape, dtype=torch.int32, device=x.device, generator=generator)
    return ((bits + noise) & -65536).view(torch.float32).to(torch.bfloat16)


@torch.no_grad()
def lowprecision_sgdsai(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    scales: list[float],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    maximize: bool,
    stochastic_rounding: bool,
    momentum_dtype: torch.dtype | None,
) -> None:
    """Apply one SGD-SaI step in place with float32 (or wider) math; see the module docstring."""
    sign = -1.0 if maximize else 1.0  # Notation to match theory: g <- -g when maximizing
    for i, theta in enumerate(params):
        work = torch.promote_types(theta.dtype, torch.float32)
        g = grads[i].to(work)
        theta_w = theta.to(work)  # theta itself when it is already float32 or wider
        if weight_decay != 0:
            theta_w.mul_(1 - lr * weight_decay)
        if momentum == 0:
            theta_w.add_(g, alpha=-lr * scales[i] * sign)
        else:
            m = momentum_buffers[i]
            if m is None:
                m_w = g * sign
                m = torch.empty_like(theta, dtype=momentum_dtype or theta.dtype)
                momentum_buffers[i] = m
            else:
                m_w = m.to(work)
                m_w.mul_(momentum).add_(g, alpha=sign * (1 - momentum))
            theta_w.add_(m_w, alpha=-lr * scales[i])
            if m_w is not m:
                m.copy_(_round(m_w, m.dtype, stochastic_rounding))
        if theta_w is not theta:
            theta.copy_(_round(theta_w, theta.dtype, stochastic_rounding))


def _round(x: Tensor, dtype: torch.dtype, stochastic: bool) -> Tensor:
    return stochastic_round(x, dtype) if stochastic else x.to(dtype)
