"""The steady SGD-SaI update on lists of tensors: one readable loop and one multi-tensor path.

Every tensor here already has its learning-rate scale (a Python float read once from optimizer
state), so the update is elementwise: no reductions, no device-to-host synchronisation, and the
per-tensor step sizes reach the kernels as host scalars.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, _default_to_fused_or_foreach

__all__ = ["sgdsai"]

#: The multi-tensor path scales directions into a temporary before adding them to the parameters;
#: it works in chunks of at most this many elements (or one tensor) so that the temporary stays
#: small next to the model.
FOREACH_CHUNK_NUMEL = 1 << 24


def sgdsai(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    scales: list[float],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
    stochastic_rounding: bool = False,
    momentum_dtype: torch.dtype | None = None,
) -> None:
    r"""Apply one SGD-SaI step to ``params`` in place (see :class:`sgdsai.SGDSaI` for the math).

    ``momentum_buffers[i]`` is ``None`` for a tensor's first step; the new buffer is written back
    into the list, as in :func:`torch.optim.sgd`. ``scales[i]`` is the tensor's g-SNR scale
    :math:`\tilde G_i`. ``grads`` are never modified. ``fused`` selects :mod:`sgdsai.fused` (one
    compiled kernel per tensor); ``None`` means ``False``. ``stochastic_rounding`` or a
    ``momentum_dtype`` select :mod:`sgdsai.lowprecision` (float32 math, one tensor at a time).
    """
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if stochastic_rounding or momentum_dtype is not None:
        from sgdsai.lowprecision import lowprecision_sgdsai

        lowprecision_sgdsai(
            params, grads, momentum_buffers, scales, lr=lr, momentum=momentum, weight_decay=weight_decay,
            maximize=maximize, stochastic_rounding=stochastic_rounding, momentum_dtype=momentum_dtype,
        )  # fmt: skip
        return
    if fused:
        from sgdsai.fused import fused_sgdsai  # torch.compile machinery: imported on first use

        fused_sgdsai(
            params, grads, momentum_buffers, scales,
            lr=lr, momentum=momentum, weight_decay=weight_decay, maximize=maximize,
        )  # fmt: skip
        return
    if foreach is None:
        _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    impl = _multi_tensor_sgdsai if foreach else _single_tensor_sgdsai
    impl(
        params,
        grads,
        momentum_buffers,
        scales,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        maximize=maximize,
    )


def _single_tensor_sgdsai(
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
    sign = -1.0 if maximize else 1.0  # Notation to match theory: g <- -g when maximizing
    for i, theta in enumerate(params):
        g = grads[i]
        if momentum == 0:
            direction, step = g, -lr * scales[i] * sign
        else:
            m = momentum_buffers[i]
            if m is None:
                m = torch.neg(g) if maximize else torch.clone(g).detach()
                momentum_buffers[i] = m
            else:
                m.mul_(momentum).add_(g, alpha=sign * (1 - momentum))
            direction, step = m, -lr * scales[i]
        if weight_decay != 0:
            theta.mul_(1 - lr * weight_decay)
        theta.add_(direction, alpha=step)


def _multi_tensor_sgdsai(
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
    if not params:
        return
    sign = -1.0 if maximize else 1.0
    grouped = Optimizer._group_tensors_by_device_and_dtype(
        [params, grads, momentum_buffers],  # type: ignore[list-item]
        with_indices=True,
    )
    for (device_params, device_grads, device_bufs), indices in grouped.values():
        thetas: list[Tensor] = device_params  # type: ignore[assignment]
        gs: list[Tensor] = device_grads  # type: ignore[assignment]
        if momentum == 0:
            directions, steps = gs, [-lr * scales[i] * sign for i in indices]
        else:
            directions = _ema_(device_bufs, gs, momentum, sign)
            for i, m in zip(indices, directions):
                momentum_buffers[i] = m
            steps = [-lr * scales[i] for i in indices]
        if weight_decay != 0:
            torch._foreach_mul_(thetas, 1 - lr * weight_decay)
        _foreach_axpy_(thetas, directions, steps)


def _ema_(bufs: list[Tensor | None], grads: list[Tensor], momentum: float, sign: float) -> list[Tensor]:
    """m <- momentum * m + (1 - momentum) * sign * g, with m = sign * g on a tensor's first step."""
    if all(m is not None for m in bufs):
        existing: list[Tensor] = bufs  # type: ignore[assignment]
        torch._foreach_mul_(existing, momentum)
        torch._foreach_add_(existing, grads, alpha=sign * (1 - momentum))
        return existing
    out = []
    for m, g in zip(bufs, grads):
        if m is None:
            m = torch.neg(g) if sign < 0 else torch.clone(g).detach()
        else:
            m.mul_(momentum).add_(g, alpha=sign * (1 - momentum))
        out.append(m)
    return out


def _foreach_axpy_(ys: list[Tensor], xs: list[Tensor], alphas: list[float]) -> None:
    """ys[i] += alphas[i] * xs[i]: torch has no foreach add with one alpha per tensor."""
    for start, stop in _chunks(xs):
        scaled = torch._foreach_mul(xs[start:stop], alphas[start:stop])
        torch._foreach_add_(ys[start:stop], scaled)


def _chunks(tensors: list[Tensor]) -> Iterator[tuple[int, int]]:
    start, numel = 0, 0
    for i, t in enumerate(tensors):
        if numel and numel + t.numel() > FOREACH_CHUNK_NUMEL:
            yield start, i
            start, numel = i, 0
        numel += t.numel()
    if start < len(tensors):
        yield start, len(tensors)
