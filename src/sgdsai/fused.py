r"""The fused SGD-SaI step: one `torch.compile`d elementwise kernel per tensor.

Per element it reads $g, m, \theta$ once and writes $m, \theta$ once (20 bytes in float32, the
memory-traffic floor):

$$m \leftarrow \mu m + s g, \qquad \theta \leftarrow d\,\theta + a\, m$$

with $s = \pm(1 - \mu)$ (the sign is $-1$ when maximising), $d = 1 - \eta\lambda$ and
$a = -\eta \tilde G$. A tensor's first step runs the same kernel on a zero buffer with
$\mu = 0, s = \pm 1$, which gives $m_1 = \pm g_1$ exactly. Without momentum the kernel is
$\theta \leftarrow d\,\theta + a\,g$ with $a = \mp\eta\tilde G$.

The math is done in float32 at least (float64 for float64 tensors), whatever the dtypes of
$\theta$, $g$ and $m$ (so a bfloat16 $m$, `momentum_dtype`, is a kernel input like any other), and
each result is rounded to nearest once, on its write. The coefficients reach the kernel as a small
tensor of that math dtype, so learning-rate schedules, momentum changes and new scales never
recompile, and bfloat16 parameters do not round $\mu = 0.9$ to $0.8984$ nor $1 - 10^{-4}$ to 1.
Tensors are passed flattened with dynamic shapes, so one compiled graph serves every size: there
is one graph per dtype combination, device and thread count (and kernel), compiled on first use.

A compiled call costs about 0.05-0.2 ms of host time where the four eager operations on a small
tensor cost about 0.03 ms, and a dynamic-shape CPU kernel always opens an OpenMP parallel region;
`takes` therefore refuses tensors below `MIN_NUMEL` elements, non-contiguous ones, tensor
subclasses (DTensor) and, with stochastic rounding, bfloat16 writes; `sgdsai.functional.sgdsai`
gives those to its other kernels. Their bytes are a small share of a model's.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

__all__ = ["MIN_NUMEL", "fused_sgdsai", "takes"]

#: Tensors with fewer elements are left to the other kernels (see the module docstring).
MIN_NUMEL = 1 << 16


def takes(theta: Tensor, g: Tensor, m: Tensor | None, stochastic_rounding: bool = False) -> bool:
    """Whether the compiled kernel takes this tensor (the rules are in the module docstring)."""
    tensors = [t for t in (theta, g, m) if t is not None]
    return (
        theta.numel() >= max(MIN_NUMEL, 2)
        and all(
            type(t) in (Tensor, nn.Parameter) and t.is_contiguous() and t.is_floating_point() for t in tensors
        )
        and not (stochastic_rounding and any(t.dtype == torch.bfloat16 for t in (theta, m) if t is not None))
    )


@functools.cache
def _compiled() -> tuple:
    compile_ = functools.partial(torch.compile, dynamic=True, fullgraph=True)
    return compile_(_ema_and_update), compile_(_update)


def _ema_and_update(theta: Tensor, g: Tensor, m: Tensor, coeffs: Tensor) -> None:
    mu, s, d, a = coeffs.unbind()  # Notation to match theory
    m_new = mu * m.to(coeffs.dtype) + s * g.to(coeffs.dtype)
    m.copy_(m_new)
    theta.copy_(d * theta.to(coeffs.dtype) + a * m_new)


def _update(theta: Tensor, g: Tensor, coeffs: Tensor) -> None:
    d, a = coeffs.unbind()
    theta.copy_(d * theta.to(coeffs.dtype) + a * g.to(coeffs.dtype))


def _flat(t: Tensor) -> Tensor:
    """A 1-D tensor over `t`'s (contiguous) elements that is not a view: a view would make the
    compiled graph guard on its base's shape, and recompile for every base shape."""
    alias = torch.empty(0, dtype=t.dtype, device=t.device)
    return alias.set_(t.untyped_storage(), t.storage_offset(), (t.numel(),), (1,))


@torch.no_grad()
def fused_sgdsai(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    scales: list[float],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    maximize: bool,
    momentum_dtype: torch.dtype | None = None,
) -> None:
    """Apply one SGD-SaI step in place to tensors that `takes` accepts, as
    `sgdsai.functional.sgdsai` does; new buffers have `momentum_dtype` (default: the parameter's)."""
    ema_and_update, update = _compiled()
    sign = -1.0 if maximize else 1.0
    decay = 1 - lr * weight_decay
    for i, (theta, g) in enumerate(zip(params, grads)):
        flat = _flat(theta), _flat(g)
        if momentum == 0:
            coeffs = torch.tensor([decay, -lr * scales[i] * sign], dtype=_math_dtype(theta, g))
            update(*flat, coeffs.to(theta.device, non_blocking=True))
            _written(theta)
            continue
        m = momentum_buffers[i]
        first = m is None
        if m is None:
            m = torch.zeros_like(
                theta, dtype=momentum_dtype or theta.dtype, memory_format=torch.contiguous_format
            )
            momentum_buffers[i] = m
        mu, s = (0.0, sign) if first else (momentum, sign * (1 - momentum))
        coeffs = torch.tensor([mu, s, decay, -lr * scales[i]], dtype=_math_dtype(theta, g, m))
        ema_and_update(*flat, _flat(m), coeffs.to(theta.device, non_blocking=True))
        _written(theta, m)


def _written(*tensors: Tensor) -> None:
    """Bump the version counters of tensors the kernel wrote through `_flat` aliases (which have
    their own counters), so that autograd still detects an update between forward and backward."""
    if not torch.compiler.is_compiling():  # traced, the writes are the graph's own in-place ops
        torch.autograd.graph.increment_version(tensors)


def _math_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype
