r"""The fused SGD-SaI step: one ``torch.compile``\ d elementwise kernel per tensor.

Per element it reads :math:`g, m, \theta` once and writes :math:`m, \theta` once (20 bytes in
float32, the memory-traffic floor), where the eager paths make four passes:

.. math::
    m \leftarrow \mu m + s g, \qquad \theta \leftarrow d\,\theta + a\, m

with :math:`s = \pm(1 - \mu)` (the sign is :math:`-1` when maximising), :math:`d = 1 - \eta\lambda`
and :math:`a = -\eta \tilde G`. A tensor's first step runs the same kernel on a zero buffer with
:math:`\mu = 0, s = \pm 1`, which gives :math:`m_1 = \pm g_1` exactly. Without momentum the kernel
is :math:`\theta \leftarrow d\,\theta + a\,g` with :math:`a = \mp\eta\tilde G`.

The coefficients reach the kernel as a small tensor, so learning-rate schedules, momentum changes and
new g-SNR scales never recompile. Tensors are passed flattened with dynamic shapes, so one compiled
graph serves every size: there is one graph per dtype, device and thread count (and kernel),
compiled on first use. A compiled call costs about 0.2 ms of host time where the four eager
operations on a small tensor cost about 0.03 ms, and a dynamic-shape CPU kernel always opens an
OpenMP parallel region; so tensors below :data:`MIN_NUMEL` elements, and non-contiguous ones, take
the eager single-tensor path. Their bytes are a small share of a model's.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from sgdsai.functional import _single_tensor_sgdsai

__all__ = ["MIN_NUMEL", "fused_sgdsai"]

#: Tensors with fewer elements take the eager path (see the module docstring).
MIN_NUMEL = 1 << 16


@functools.cache
def _compiled() -> tuple:
    compile_ = functools.partial(torch.compile, dynamic=True, fullgraph=True)
    return compile_(_ema_and_update), compile_(_update)


def _ema_and_update(theta: Tensor, g: Tensor, m: Tensor, coeffs: Tensor) -> None:
    mu, s, d, a = coeffs.unbind()  # Notation to match theory
    m_new = mu * m + s * g
    m.copy_(m_new)
    theta.copy_(d * theta + a * m_new)


def _update(theta: Tensor, g: Tensor, coeffs: Tensor) -> None:
    d, a = coeffs.unbind()
    theta.copy_(d * theta + a * g)


def _flat(t: Tensor) -> Tensor:
    """A 1-D tensor over ``t``'s (contiguous) elements that is not a view: a view would make the
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
) -> None:
    """Apply one SGD-SaI step in place, as :func:`sgdsai.functional.sgdsai` does."""
    ema_and_update, update = _compiled()
    sign = -1.0 if maximize else 1.0
    decay = 1 - lr * weight_decay
    eager = []
    for i, (theta, g) in enumerate(zip(params, grads)):
        m = momentum_buffers[i]
        if theta.numel() < max(MIN_NUMEL, 2) or not all(
            t is None or t.is_contiguous() for t in (theta, g, m)
        ):
            eager.append(i)
            continue
        flat = _flat(theta), _flat(g)
        if momentum == 0:
            coeffs = torch.tensor([decay, -lr * scales[i] * sign], dtype=theta.dtype)
            update(*flat, coeffs.to(theta.device, non_blocking=True))
            continue
        first = m is None
        if first:
            m = torch.zeros_like(theta, memory_format=torch.contiguous_format)
            momentum_buffers[i] = m
        mu, s = (0.0, sign) if first else (momentum, sign * (1 - momentum))
        coeffs = torch.tensor([mu, s, decay, -lr * scales[i]], dtype=theta.dtype)
        assert m is not None
        ema_and_update(*flat, _flat(m), coeffs.to(theta.device, non_blocking=True))
    if eager:
        bufs = [momentum_buffers[i] for i in eager]
        _single_tensor_sgdsai(
            [params[i] for i in eager], [grads[i] for i in eager], bufs, [scales[i] for i in eager],
            lr=lr, momentum=momentum, weight_decay=weight_decay, maximize=maximize,
        )  # fmt: skip
        for i, m in zip(eager, bufs):
            momentum_buffers[i] = m
