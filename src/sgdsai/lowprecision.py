r"""Rounding for the low-precision options: float32 math written back with stochastic rounding.

With `stochastic_rounding` or a `momentum_dtype`, the kernels of `sgdsai.functional` (and the
compiled one of `sgdsai.fused`, where nothing is rounded to bfloat16) lift each tensor to at least
float32, update it there, and write it back once. With `stochastic_rounding` a write to bfloat16
rounds up or down at random with probability proportional to the distance, so
$\mathbb{E}[\mathrm{sr}(x)] = x$ and updates smaller than half a bfloat16 ulp ($2^{-9}$ relative)
still move the weights on average, where round-to-nearest drops them. The momentum buffer's dtype
is chosen independently (`momentum_dtype`): a bfloat16 buffer halves SGD-SaI's state for float32
weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["round_to", "stochastic_round"]


def stochastic_round(x: Tensor, dtype: torch.dtype, generator: torch.Generator | None = None) -> Tensor:
    """`x` (float32) rounded to `dtype`: stochastically for bfloat16, to nearest otherwise.

    A float32 whose low 16 bits are zero is a bfloat16; adding 16 uniform random bits to the low
    half before truncating rounds the magnitude up with probability (low half) / 2**16. Infinities
    and NaNs stay what they are; finite values above bfloat16's range may round to infinity.
    """
    if dtype != torch.bfloat16 or x.dtype != torch.float32:
        return x.to(dtype)
    bits = x.view(torch.int32)
    noise = torch.randint(0, 1 << 16, x.shape, dtype=torch.int32, device=x.device, generator=generator)
    return ((bits + noise) & -65536).view(torch.float32).to(torch.bfloat16)


def round_to(x: Tensor, dtype: torch.dtype, stochastic: bool) -> Tensor:
    """`x` in `dtype`: by `stochastic_round` if `stochastic`, else to nearest."""
    return stochastic_round(x, dtype) if stochastic else x.to(dtype)
