r"""The steady SGD-SaI update on lists of tensors: one dispatcher over leaf kernels.

Every tensor here already has its learning-rate scale $\tilde G$ (a Python float read once from
optimizer state), so the update is elementwise: no reductions and no device-to-host
synchronisation. Per tensor, with $s = -1$ when maximising and $+1$ otherwise:

$$m \leftarrow \mu m + (1 - \mu)\, s g \quad (m_1 = s g_1), \qquad
\theta \leftarrow (1 - \eta\lambda)\,\theta - \eta \tilde G m$$

(without momentum, $s g$ takes the place of $m$). `sgdsai` gives each tensor to the first kernel
that takes it, as `torch.optim.sgd` does:

1. `fused=True`: the compiled one-pass kernel of `sgdsai.fused`, for large contiguous tensors;
   without weight decay, CPU tensors go to torch's SGD kernel (item 3) instead, which makes the
   same single pass without compiling. The tensors it leaves go on to the items below, as without
   `fused` (small CUDA tensors to foreach).
2. `foreach` (the default for CUDA tensors): the multi-tensor kernel, `torch._foreach_*` ops over
   chunks of at most `FOREACH_CHUNK_NUMEL` elements, with no temporaries in float32 and float64.
3. The default for CPU tensors: torch's own fused SGD kernel, `torch._fused_sgd_`, once per tensor
   with learning rate $\eta \tilde G$ and dampening $\mu$ (which makes its momentum the EMA; its
   first-step flag gives $m_1 = s g_1$), after a decay pass $\theta \leftarrow (1 - \eta\lambda)\theta$
   over the same cache-sized chunk (`CACHE_CHUNK_BYTES`), so that the kernel finds $\theta$ in cache.
   Plain, contiguous float32 and float64 tensors only: torch 2.13's CPU kernel does not update
   bfloat16 or float16 parameters, and reads every tensor as a flat array.
4. Everything else: the eager loop, one tensor at a time, in the tensor's dtype or, with
   `stochastic_rounding` or a `momentum_dtype`, in float32 at least with one rounding per write
   (`sgdsai.lowprecision`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.optimizer import Optimizer, _default_to_fused_or_foreach

from sgdsai.lowprecision import round_to

__all__ = ["sgdsai"]

#: The multi-tensor kernel runs its passes chunk by chunk over groups of whole tensors of at most
#: this many elements (a larger tensor is a chunk of its own), so that a chunk's buffers are still
#: in a GPU's L2 cache for its later passes, and the scaled directions of low-precision tensors
#: never need a temporary larger than a chunk.
FOREACH_CHUNK_NUMEL = 1 << 21

#: The CPU kernel decays and updates each tensor in chunks of this many bytes per tensor, small
#: enough that the decayed chunk of $\theta$ is still in the last-level cache for the update.
CACHE_CHUNK_BYTES = 4 << 20

_PLAIN = (Tensor, nn.Parameter)  # not DTensor or other subclasses: torch's kernel has no rule for them


def sgdsai(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    scales: list[float],
    *,
    lr: float | Tensor,
    momentum: float,
    weight_decay: float,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
    stochastic_rounding: bool = False,
    momentum_dtype: torch.dtype | None = None,
) -> None:
    r"""Apply one SGD-SaI step to `params` in place (see `sgdsai.SGDSaI` for the math).

    `momentum_buffers[i]` is `None` for a tensor's first step; the new buffer is written back
    into the list, as in `torch.optim.sgd`. `scales[i]` is the tensor's scale $\tilde G_i$.
    `grads` are never modified. `lr` may be a 1-element tensor of any shape; a CPU one costs no
    device synchronisation (one on an accelerator costs one per call). `fused=True` selects the
    compiled kernel of `sgdsai.fused` for the tensors it takes (`None` means `False`); `foreach`
    the multi-tensor kernel (`None`: for CUDA tensors); `stochastic_rounding` and
    `momentum_dtype` are handled by the eager loop and, where no bfloat16 is rounded, by the
    compiled kernel. The module docstring lists which kernel takes which tensors.
    """
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    lr = _lr_value(lr)
    hyper: dict[str, Any] = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, maximize=maximize)
    tensors = (params, grads, momentum_buffers, scales)
    compiling = torch.compiler.is_compiling()
    low_precision = stochastic_rounding or momentum_dtype is not None
    rest = list(range(len(params)))

    def torch_kernel_takes(i: int) -> bool:
        return not compiling and _torch_kernel_takes(params[i], grads[i], momentum_buffers[i], momentum_dtype)

    if fused:
        from sgdsai import fused as compiled  # torch.compile machinery: imported on first use

        if weight_decay == 0:  # one pass already, without compiling
            rest = _run(_torch_kernel_sgdsai, rest, torch_kernel_takes, tensors, hyper)

        def compiled_takes(i: int) -> bool:
            return compiled.takes(params[i], grads[i], momentum_buffers[i], stochastic_rounding)

        rest = _run(
            compiled.fused_sgdsai, rest, compiled_takes, tensors, dict(hyper, momentum_dtype=momentum_dtype)
        )
    if foreach is None:  # what the compiled kernel left goes where it would have gone without it
        _, foreach = _default_to_fused_or_foreach(
            [params[i] for i in rest], differentiable=False, use_fused=False
        )
    if foreach and not low_precision:
        rest = _run(_multi_tensor_sgdsai, rest, lambda i: True, tensors, hyper)
    rest = _run(_torch_kernel_sgdsai, rest, torch_kernel_takes, tensors, hyper)
    eager = dict(hyper, momentum_dtype=momentum_dtype, stochastic_rounding=stochastic_rounding)
    _run(_single_tensor_sgdsai, rest, lambda i: True, tensors, eager)


def _run(
    kernel: Callable[..., None],
    indices: list[int],
    takes: Callable[[int], bool],
    tensors: tuple[list[Tensor], list[Tensor], list[Tensor | None], list[float]],
    hyper: dict[str, Any],
) -> list[int]:
    """Run `kernel` on the tensors among `indices` that it `takes`; return the others."""
    taken: list[int] = []
    rest: list[int] = []
    for i in indices:
        (taken if takes(i) else rest).append(i)
    if taken:
        params, grads, bufs, scales = tensors
        sub = [bufs[i] for i in taken]
        kernel(
            [params[i] for i in taken], [grads[i] for i in taken], sub, [scales[i] for i in taken], **hyper
        )
        for i, m in zip(taken, sub):
            bufs[i] = m
    return rest


def _lr_value(lr: float | Tensor) -> float | Tensor:
    """A float, as the kernels take it; a tensor lr is squeezed and, unless traced, read once."""
    if not isinstance(lr, Tensor):
        return lr
    if lr.numel() != 1:
        raise ValueError(f"Tensor lr must be 1-element, got shape {tuple(lr.shape)}")
    if torch.compiler.is_compiling():
        return lr.reshape(())  # a graph input: a schedule's new value does not recompile
    return lr.item()


def _torch_kernel_takes(
    theta: Tensor, g: Tensor, m: Tensor | None, momentum_dtype: torch.dtype | None
) -> bool:
    return (
        theta.device.type == "cpu"
        and theta.dtype in (torch.float32, torch.float64)
        and momentum_dtype in (None, theta.dtype)
        and all(_like(t, theta) for t in (theta, g, m) if t is not None)
    )


def _like(t: Tensor, theta: Tensor) -> bool:
    """A plain contiguous tensor of `theta`'s dtype, device and shape."""
    same = t.dtype == theta.dtype and t.device == theta.device and t.shape == theta.shape
    return same and type(t) in _PLAIN and t.is_contiguous()


def _torch_kernel_sgdsai(
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
    decay = 1 - lr * weight_decay
    for i, theta in enumerate(params):
        first = momentum_buffers[i] is None
        if momentum != 0 and first:
            momentum_buffers[i] = torch.empty_like(theta)  # the first-step kernel writes m = s g
        m = momentum_buffers[i]
        pieces = [theta, grads[i]] if momentum == 0 or m is None else [theta, grads[i], m]
        step = max(CACHE_CHUNK_BYTES // theta.element_size(), 1)
        chunks = [pieces] if decay == 1 else zip(*(torch.split(t.view(-1), step) for t in pieces))
        for theta_c, g_c, *m_c in chunks:
            if decay != 1:
                theta_c.mul_(decay)
            torch._fused_sgd_(
                [theta_c], [g_c], m_c, weight_decay=0.0, momentum=momentum, lr=lr * scales[i],
                dampening=momentum, nesterov=False, maximize=maximize, is_first_step=first,
            )  # fmt: skip


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
    momentum_dtype: torch.dtype | None = None,
    stochastic_rounding: bool = False,
) -> None:
    sign = -1.0 if maximize else 1.0  # Notation to match theory: g <- -g when maximizing
    lift = stochastic_rounding or momentum_dtype is not None  # float32 math, one rounding per write
    for i, theta in enumerate(params):
        work = torch.promote_types(theta.dtype, torch.float32) if lift else theta.dtype
        g = grads[i].to(work)  # grads[i] itself when it has that dtype: read, never written
        theta_w = theta.to(work)  # theta itself when it has that dtype
        if weight_decay != 0:
            theta_w.mul_(1 - lr * weight_decay)
        if momentum == 0:
            theta_w.add_(g, alpha=-lr * scales[i] * sign)
        else:
            m = momentum_buffers[i]
            if m is None:
                m_w = torch.neg(g) if maximize else torch.clone(g).detach()
                dtype = momentum_dtype or theta.dtype
                m = m_w if m_w.dtype == dtype else torch.empty_like(theta, dtype=dtype)
                momentum_buffers[i] = m
            else:
                m_w = m.to(work)
                m_w.mul_(momentum).add_(g, alpha=sign * (1 - momentum))
            theta_w.add_(m_w, alpha=-lr * scales[i])
            if m_w is not m:
                m.copy_(round_to(m_w, m.dtype, stochastic_rounding))
        if theta_w is not theta:
            theta.copy_(round_to(theta_w, theta.dtype, stochastic_rounding))


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
    r"""Per chunk: the EMA, one `_foreach_lerp_` pass (two when maximising), then
    $\theta \leftarrow (1 - \eta\lambda)\theta - c\,x$ with $c = \eta\tilde G$, $x = m$ (or $x = s g$
    without momentum) in two passes and no temporary: `lerp` gives $(1 - w)\theta + w x$, so
    $\theta$ is first multiplied by $(1 - \eta\lambda)/(1 + c)$, then lerped with $w = -c$. That
    intermediate product is rounded once more, harmless in float32 and float64 but not in
    bfloat16 or float16 (where it would round back to $\theta$ and bias every step), so those
    dtypes, and maximising without momentum ($w = +c$), decay, then add the scaled directions of
    one chunk at a time."""
    sign = -1.0 if maximize else 1.0
    decay = 1 - lr * weight_decay
    grouped = Optimizer._group_tensors_by_device_and_dtype(
        [params, grads, momentum_buffers],  # type: ignore[list-item]
        with_indices=True,
    )
    for (device_params, device_grads, device_bufs), indices in grouped.values():
        thetas: list[Tensor] = device_params  # type: ignore[assignment]
        lerp = thetas[0].dtype in (torch.float32, torch.float64) and (momentum != 0 or not maximize)
        for start, stop in _chunks(thetas):
            ts, gs, idx = thetas[start:stop], device_grads[start:stop], indices[start:stop]
            xs: list[Tensor] = gs  # type: ignore[assignment]
            if momentum == 0:
                steps = [-lr * scales[i] * sign for i in idx]
            else:
                xs = _ema_(device_bufs[start:stop], gs, momentum, maximize)  # type: ignore[arg-type]
                for i, m in zip(idx, xs):
                    momentum_buffers[i] = m
                steps = [-lr * scales[i] for i in idx]
            if lerp:
                torch._foreach_mul_(ts, [decay / (1 - w) for w in steps])
                torch._foreach_lerp_(ts, xs, steps)
            else:
                if weight_decay != 0:
                    torch._foreach_mul_(ts, decay)
                torch._foreach_add_(ts, torch._foreach_mul(xs, steps))


def _ema_(
    bufs: Sequence[Tensor | None], grads: list[Tensor], momentum: float, maximize: bool
) -> list[Tensor]:
    """m <- momentum * m + (1 - momentum) * s * g in place, and m = s * g for tensors without one."""
    existing = [m for m in bufs if m is not None]
    with_grads = [g for m, g in zip(bufs, grads) if m is not None]
    if existing and maximize:
        torch._foreach_mul_(existing, momentum)
        torch._foreach_add_(existing, with_grads, alpha=-(1 - momentum))
    elif existing:
        torch._foreach_lerp_(existing, with_grads, 1 - momentum)
    return [
        m if m is not None else torch.neg(g) if maximize else torch.clone(g).detach()
        for m, g in zip(bufs, grads)
    ]


def _chunks(tensors: Sequence[Tensor]) -> Iterator[tuple[int, int]]:
    """Consecutive ranges of whole tensors of at most `FOREACH_CHUNK_NUMEL` elements (or one tensor)."""
    start, numel = 0, 0
    for i, t in enumerate(tensors):
        if i > start and numel + t.numel() > FOREACH_CHUNK_NUMEL:
            yield start, i
            start, numel = i, 0
        numel += t.numel()
    if start < len(tensors):
        yield start, len(tensors)
