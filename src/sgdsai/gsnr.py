r"""Gradient signal-to-noise ratio (g-SNR): the statistic SGD-SaI measures once per tensor.

Pure functions, no optimizer. The device side reduces each gradient to its sufficient statistics
`(count, mean, m2)` (`m2` is the sum of squared deviations from the mean), stacked so that many
tensors cost one host transfer and shards can be combined before anything is decided. The host side
turns statistics into a g-SNR and a learning-rate scale, in Python floats.

For a tensor of $n$ elements with mean $\bar g$ and $M_2 = \sum_j (g_j - \bar g)^2$:

$$
\lVert g \rVert_2 = \sqrt{M_2 + n \bar g^2}, \qquad
\sigma = \sqrt{M_2 / (n - c)}, \qquad
G = \frac{\lVert g \rVert_2}{\sigma + \epsilon}
$$

with $c = 0$ (population std, the paper) or $c = 1$ (unbiased std, the official code).
Since $\lVert g \rVert_2^2 = n(\sigma_0^2 + \bar g^2)$, $G \ge \sqrt{n}$ for the population std and
$\epsilon = 0$: g-SNR is mostly $\sqrt{\text{numel}}$, raised by a consistent gradient sign.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "GradStats",
    "Kind",
    "Measurement",
    "combine",
    "lr_scale",
    "measure",
    "measure_numel",
    "nonzero",
    "stack_stats",
    "tensor_gsnr",
]

#: A gradient whose std is at most this fraction of its mean's magnitude is constant to within
#: float32 rounding: its noise cannot be measured, so it is treated like a one-element tensor.
CONSTANT_RTOL = 1e-6


@dataclass(frozen=True)
class GradStats:
    """Sufficient statistics of a gradient's elements: count, mean and `m2` (Chan et al.)."""

    count: float
    mean: float
    m2: float

    @property
    def norm(self) -> float:
        return math.sqrt(max(self.m2, 0.0) + self.count * self.mean**2)

    def std(self, unbiased: bool = False) -> float:
        dof = self.count - (1 if unbiased else 0)
        return math.sqrt(max(self.m2, 0.0) / dof) if dof > 0 else 0.0

    def merge(self, other: GradStats) -> GradStats:
        """Statistics of the concatenation of both pieces (Chan's parallel update)."""
        count = self.count + other.count
        if count == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / count
        return GradStats(count, mean, m2)


def combine(pieces: Sequence[GradStats]) -> GradStats:
    """Statistics of a tensor from the statistics of its disjoint pieces (e.g. shards)."""
    total = GradStats(0.0, 0.0, 0.0)
    for piece in pieces:
        total = total.merge(piece)
    return total


#: Above this many elements a CPU gradient's statistics take two streaming passes (see
#: `_two_pass_mean_m2`); 2**18 float32 elements (1 MiB) stay in a core's L2 cache.
CPU_CHUNK = 1 << 18

#: Statistics computed in float32 are exact to float32 rounding while the variance lies in
#: [`VAR_LOW`, `VAR_HIGH`]: below, squared deviations reach float32's subnormal range (about
#: $10^{-38}$) and vanish; above, sums of squares approach float32's largest value (about
#: $3 \times 10^{38}$) and overflow. Rows outside are recomputed in float64.
VAR_LOW = 2.0**-100
VAR_HIGH = 2.0**80


def stack_stats(grads: Sequence[Tensor]) -> list[GradStats]:
    """Reduce each gradient to its `GradStats` with one device-to-host transfer per device.

    The statistics are exact to float32 rounding (within $10^{-6}$) at any finite magnitude of
    the gradient: for a float32 gradient, elements from about $10^{-38}$ to $10^{38}$; a bfloat16 or
    float16 gradient is measured as its stored values, upcast. The fast
    reductions run in float32 (float64 gradients stay float64); the rare row whose variance left
    the range where float32 squares are exact (see `VAR_LOW`) is recomputed in float64, at the
    cost of one more transfer. Complex gradients are measured as their real view. Non-finite
    gradients give non-finite statistics.
    """
    rows: dict[torch.device, list[tuple[int, Tensor, bool]]] = {}
    for index, grad in enumerate(grads):
        row, exact = _stats_row(grad)
        rows.setdefault(grad.device, []).append((index, row, exact))
    stats: list[GradStats] = [GradStats(0.0, 0.0, 0.0)] * len(grads)
    for device_rows in rows.values():
        values = torch.stack([row for _, row, _ in device_rows]).tolist()
        for (index, _, exact), (count, mean, m2) in zip(device_rows, values):
            stats[index] = GradStats(count, mean, m2)
            if not (exact or _float32_row_is_exact(stats[index])):
                stats[index] = _float64_stats(grads[index])
    return stats


def _flat(grad: Tensor) -> Tensor:
    g = grad.detach()
    if g.is_complex():
        g = torch.view_as_real(g)
    return g.reshape(-1)


def _stats_row(grad: Tensor) -> tuple[Tensor, bool]:
    """The `(count, mean, m2)` row of one gradient as a float64 device tensor, and whether it is
    exact whatever the magnitude (a float64 gradient's)."""
    g = _flat(grad)
    if g.numel() == 0:
        return torch.zeros(3, dtype=torch.float64, device=g.device), True
    count = torch.tensor(float(g.numel()), dtype=torch.float64, device=g.device)
    if g.device.type == "cpu" and g.numel() > CPU_CHUNK:
        mean, m2 = _two_pass_mean_m2(g if g.dtype == torch.float64 else g.float())
        return torch.stack([count, mean, m2]), g.dtype == torch.float64
    var, mean = torch.var_mean(g if g.dtype == torch.float64 else g.float(), correction=0)
    return torch.stack([count, mean.double(), var.double() * g.numel()]), g.dtype == torch.float64


#: A bound on the relative rounding of a float32 `mean` of many elements (measured: about
#: $10^{-7}$ for 40M); it decides when the two-pass statistics need their correction pass.
MEAN_RTOL = 2.0**-20


def _two_pass_mean_m2(g: Tensor) -> tuple[Tensor, Tensor]:
    r"""The mean and $\sum (g - \bar g)^2$ of a 1-D CPU `g`, in float64, from two streaming passes.

    On CPU `torch.var_mean` runs at about a tenth of memory bandwidth (measured: 150 ms for 39M
    float32 elements, where a pass of `mean` takes 8 ms); two streaming passes through a reused
    chunk buffer cost about 2.5 passes and keep the centred sum free of the cancellation that
    $\sum g^2 - n \bar g^2$ would suffer when $|\bar g| \gg \sigma$. The second pass centres each
    cache-sized chunk on the first pass's float32 mean $\hat g$ and sums $d^2$, $d = g - \hat g$,
    with `dot` (within about $5 \times 10^{-7}$ of $M_2$ for ordinary gradients).

    Two errors grow when $|\bar g| \gg \sigma$: the rounding of $\hat g$ adds
    $n (\hat g - \bar g)^2$ to the sum ($2 \times 10^{-4}$ of $M_2$ for 40M elements of relative
    spread $10^{-5}$), and a float32 `dot` of such nearly equal values loses about
    $3 \times 10^{-5}$. Where the bound `MEAN_RTOL` allows the first more than $10^{-7}$ of $M_2$
    ($|\bar g| \gtrsim 300 \sigma$), the second pass is repeated, summing $d$ and $d^2$ pairwise
    (by `sum`) for the corrected two-pass formulas $\bar g = \hat g + \sum d / n$ and
    $M_2 = \sum d^2 - (\sum d)^2 / n$.
    """
    n = g.numel()
    mean = g.mean()
    buffer = torch.empty(CPU_CHUNK, dtype=g.dtype)
    squares = torch.zeros((), dtype=torch.float64)
    for chunk in torch.split(g, CPU_CHUNK):
        centred = torch.sub(chunk, mean, out=buffer[: chunk.numel()])
        squares += torch.dot(centred, centred)
    if n * (MEAN_RTOL * mean.item()) ** 2 <= 1e-7 * squares.item():  # CPU: reading is free
        return mean.double(), squares
    linear = torch.zeros((), dtype=torch.float64)
    squares.zero_()
    for chunk in torch.split(g, CPU_CHUNK):
        centred = torch.sub(chunk, mean, out=buffer[: chunk.numel()])
        linear += centred.sum()
        squares += centred.square_().sum()
    return mean.double() + linear / n, squares - linear * linear / n


def _float32_row_is_exact(stats: GradStats) -> bool:
    """Whether float32 reductions can have kept these statistics exact to float32 rounding."""
    if not (math.isfinite(stats.mean) and math.isfinite(stats.m2)):
        return False  # an overflow, or a non-finite gradient: float64 tells them apart
    var = stats.m2 / stats.count
    if VAR_LOW <= var <= VAR_HIGH:
        return True
    if var > VAR_HIGH:
        return False
    # Squares may have vanished, but the variance is still far below the constant threshold.
    # Both exactly zero: the gradient is all-zero (or its elements cancel below ~1e-19).
    return (stats.mean == 0.0 and stats.m2 == 0.0) or (CONSTANT_RTOL * stats.mean) ** 2 >= 4 * VAR_LOW


def _float64_stats(grad: Tensor) -> GradStats:
    """Exact statistics of any finite float32 gradient: float64 reductions over chunks of it."""
    g = _flat(grad)
    chunk_numel = CPU_CHUNK if g.device.type == "cpu" else 1 << 24  # bounds the float64 copy
    rows = []
    for chunk in torch.split(g, chunk_numel):
        var, mean = torch.var_mean(chunk.double(), correction=0)
        count = float(chunk.numel())
        rows.append(
            torch.stack([torch.tensor(count, dtype=torch.float64, device=g.device), mean, var * count])
        )
    return combine([GradStats(*row) for row in torch.stack(rows).tolist()])


class Kind(enum.Enum):
    """What a first gradient says about its tensor."""

    REGULAR = "regular"  #: noise measurable: the g-SNR is defined
    CONSTANT = "constant"  #: one element, or all elements equal: noise unmeasurable
    ZERO = "zero"  #: all-zero gradient: nothing measured, try again at the next gradient
    NONFINITE = "nonfinite"  #: inf/NaN: nothing measured, try again at the next gradient


@dataclass(frozen=True)
class Measurement:
    kind: Kind
    #: the raw value: set for REGULAR, and for a ZERO gradient whose value needs no gradient (numel)
    gsnr: float | None

    @property
    def deferred(self) -> bool:
        return self.kind in (Kind.ZERO, Kind.NONFINITE)


def measure(stats: GradStats, eps: float, unbiased: bool = False) -> Measurement:
    """Classify a first gradient and, when its noise is measurable, compute its g-SNR."""
    if not (math.isfinite(stats.mean) and math.isfinite(stats.m2)):
        return Measurement(Kind.NONFINITE, None)
    if stats.count == 0:
        return Measurement(Kind.CONSTANT, None)
    norm = stats.norm
    if norm == 0.0:
        return Measurement(Kind.ZERO, None)
    std = stats.std(unbiased)
    if stats.count == 1 or std <= CONSTANT_RTOL * abs(stats.mean):
        return Measurement(Kind.CONSTANT, None)
    return Measurement(Kind.REGULAR, norm / (std + eps))


def measure_numel(numel: int, nonzero: bool) -> Measurement:
    r"""The $\sqrt{\text{numel}}$ stand-in for a g-SNR (`scale="numel"`): no statistics.

    Its value is known without a gradient, so an all-zero first gradient still carries it (and can
    set the reference), while the tensor waits for a non-zero gradient to start its momentum. A
    0-element tensor is `CONSTANT`: it gets the largest scale and never sets the reference.
    """
    if numel == 0:
        return Measurement(Kind.CONSTANT, None)
    return Measurement(Kind.REGULAR if nonzero else Kind.ZERO, math.sqrt(numel))


def nonzero(grads: Sequence[Tensor]) -> list[bool]:
    """Whether each gradient has a non-zero element, with one device-to-host transfer per device."""
    rows: dict[torch.device, list[tuple[int, Tensor]]] = {}
    for index, grad in enumerate(grads):
        g = torch.view_as_real(grad) if grad.is_complex() else grad
        rows.setdefault(g.device, []).append((index, g.detach().ne(0).any()))
    flags = [False] * len(grads)
    for device_rows in rows.values():
        for (index, _), flag in zip(device_rows, torch.stack([f for _, f in device_rows]).tolist()):
            flags[index] = bool(flag)
    return flags


def lr_scale(measurement: Measurement, reference: float, normalize: bool) -> float:
    r"""The constant learning-rate scale $\tilde G$ of a measured tensor.

    `reference` is the largest regular g-SNR measured at the optimizer's first measuring step.
    With `normalize` the scale is $\min(G / \text{reference}, 1)$; without it, $G$.
    A tensor whose noise is unmeasurable (`CONSTANT`) is pure signal: it gets the largest scale,
    1 normalised or `reference` raw, and never takes part in choosing `reference`.
    """
    if measurement.deferred:
        raise ValueError(f"a {measurement.kind.value} gradient has no g-SNR")
    if measurement.gsnr is None:
        return 1.0 if normalize else reference
    return min(measurement.gsnr / reference, 1.0) if normalize else measurement.gsnr


def tensor_gsnr(grad: Tensor, eps: float = 1e-8, unbiased: bool = False) -> float:
    """The raw g-SNR of one gradient, for analysis; `nan` where the noise is unmeasurable."""
    result = measure(stack_stats([grad])[0], eps, unbiased)
    return math.nan if result.gsnr is None else result.gsnr
