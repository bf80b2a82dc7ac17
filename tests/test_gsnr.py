"""Properties of the g-SNR statistics (sgdsai.gsnr), checked against direct formulas."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sgdsai import gsnr
from sgdsai.gsnr import GradStats, Kind

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_subnormal=False)
vectors = st.lists(finite, min_size=2, max_size=64)
fast = settings(max_examples=60, deadline=None)


def stats_of(values: list[float]) -> GradStats:
    return gsnr.stack_stats([torch.tensor(values, dtype=torch.float64)])[0]


def direct_gsnr(values: list[float], eps: float, unbiased: bool) -> float:
    g = torch.tensor(values, dtype=torch.float64)
    return (g.norm() / (g.std(correction=1 if unbiased else 0) + eps)).item()


@fast
@given(vectors, st.booleans())
def test_gsnr_matches_norm_over_std(values: list[float], unbiased: bool) -> None:
    result = gsnr.measure(stats_of(values), eps=1e-8, unbiased=unbiased)
    assume(result.kind is Kind.REGULAR)
    assert result.gsnr == pytest.approx(direct_gsnr(values, 1e-8, unbiased), rel=1e-9)


@fast
@given(vectors, st.floats(min_value=1e-3, max_value=1e3))
def test_gsnr_scale_invariant(values: list[float], scale: float) -> None:
    base = gsnr.measure(stats_of(values), eps=0.0)
    assume(base.kind is Kind.REGULAR)
    scaled = gsnr.measure(stats_of([scale * v for v in values]), eps=0.0)
    assert scaled.gsnr == pytest.approx(base.gsnr, rel=1e-9)


@fast
@given(vectors, st.randoms(use_true_random=False))
def test_gsnr_permutation_invariant(values: list[float], rng) -> None:
    shuffled = list(values)
    rng.shuffle(shuffled)
    a, b = stats_of(values), stats_of(shuffled)
    assert (a.count, a.norm) == pytest.approx((b.count, b.norm), rel=1e-12)
    assert a.m2 == pytest.approx(b.m2, rel=1e-9, abs=1e-9)


@fast
@given(vectors, st.lists(st.integers(min_value=1, max_value=63), max_size=4))
def test_combined_pieces_equal_whole(values: list[float], cuts: list[int]) -> None:
    bounds = sorted({0, len(values), *(c for c in cuts if c < len(values))})
    pieces = [stats_of(values[a:b]) for a, b in zip(bounds, bounds[1:])]
    whole, combined = stats_of(values), gsnr.combine(pieces)
    assert combined.count == whole.count
    assert combined.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-9)
    assert combined.m2 == pytest.approx(whole.m2, rel=1e-8, abs=1e-6)


@fast
@given(vectors)
def test_population_gsnr_at_least_sqrt_numel(values: list[float]) -> None:
    result = gsnr.measure(stats_of(values), eps=0.0)
    assume(result.kind is Kind.REGULAR)
    assert result.gsnr >= math.sqrt(len(values)) * (1 - 1e-9)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([0.0, 0.0, 0.0], Kind.ZERO),
        ([2.5], Kind.CONSTANT),
        ([0.1] * 1000, Kind.CONSTANT),
        ([], Kind.CONSTANT),
        ([1.0, math.inf], Kind.NONFINITE),
        ([1.0, math.nan], Kind.NONFINITE),
        ([1.0, -1.0], Kind.REGULAR),
    ],
)
def test_degenerate_gradients_are_classified(values: list[float], kind: Kind) -> None:
    result = gsnr.measure(gsnr.stack_stats([torch.tensor(values, dtype=torch.float32)])[0], 1e-8)
    assert result.kind is kind
    assert (result.gsnr is not None) == (kind is Kind.REGULAR)
    if result.gsnr is not None:
        assert math.isfinite(result.gsnr)


@fast
@given(st.floats(min_value=-1e6, max_value=1e6, width=32, allow_subnormal=False), st.integers(1, 300))
def test_constant_gradients_are_never_regular(value: float, n: int) -> None:
    assume(abs(value) > 1e-30)
    result = gsnr.measure(gsnr.stack_stats([torch.full((n,), value)])[0], eps=1e-8)
    assert result.kind is Kind.CONSTANT


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_a_low_precision_gradient_is_measured_exactly_as_its_stored_values(dtype: torch.dtype) -> None:
    values = torch.linspace(-3, 5, 4097)
    low = values.to(dtype)
    got = gsnr.stack_stats([low])[0]
    want = stats_of(low.double().tolist())  # the rounded values, not the float32 ones they round
    assert got.mean == pytest.approx(want.mean, rel=1e-6)
    assert got.m2 == pytest.approx(want.m2, rel=1e-6)


def test_lr_scale_normalises_and_clamps() -> None:
    regular = gsnr.Measurement(Kind.REGULAR, 30.0)
    constant = gsnr.Measurement(Kind.CONSTANT, None)
    assert gsnr.lr_scale(regular, 60.0, normalize=True) == 0.5
    assert gsnr.lr_scale(regular, 10.0, normalize=True) == 1.0
    assert gsnr.lr_scale(regular, 60.0, normalize=False) == 30.0
    assert gsnr.lr_scale(constant, 60.0, normalize=True) == 1.0
    assert gsnr.lr_scale(constant, 60.0, normalize=False) == 60.0
    with pytest.raises(ValueError, match="zero"):
        gsnr.lr_scale(gsnr.Measurement(Kind.ZERO, None), 60.0, normalize=True)


def test_tensor_gsnr_is_about_sqrt_numel_for_zero_mean_noise() -> None:
    g = torch.randn(256, 64)
    assert gsnr.tensor_gsnr(g) == pytest.approx(128.0, rel=0.02)
    assert math.isnan(gsnr.tensor_gsnr(torch.ones(5)))


def test_large_cpu_gradients_take_the_two_pass_route_and_match_float64_statistics() -> None:
    n = 3 * gsnr.CPU_CHUNK + 17  # several chunks and a ragged tail
    gen = torch.Generator().manual_seed(0)
    for offset, spread in [(0.0, 1e-3), (1e3, 1e-2)]:  # zero-mean, and a mean far above the spread
        g = (offset + spread * torch.randn(n, generator=gen)).float()
        (stats,) = gsnr.stack_stats([g])
        exact = g.double()
        assert stats.count == n
        assert stats.mean == pytest.approx(exact.mean().item(), rel=1e-6)
        assert stats.m2 == pytest.approx(((exact - exact.mean()) ** 2).sum().item(), rel=1e-3)
    constant = torch.full((n,), 0.37)
    (stats,) = gsnr.stack_stats([constant])
    assert gsnr.measure(stats, 1e-8).kind is gsnr.Kind.CONSTANT


# --- exact at any magnitude -------------------------------------------------------------------

#: One size per route: one float32 `var_mean`, or two float32 passes (large CPU gradients).
SIZES = [pytest.param(1000, id="small"), pytest.param(3 * gsnr.CPU_CHUNK + 17, id="two-pass")]


def float64_gsnr(g: torch.Tensor, eps: float) -> float:
    """The float64 value of ‖g‖ / (σ + ε) of the float32 data, the population std."""
    d = g.double().flatten()
    return (d.norm() / (d.std(correction=0) + eps)).item()


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("magnitude", [1e-30, 1e-25, 1e-10, 1.0, 1e10, 1e20, 1e30])
def test_gsnr_equals_its_float64_value_at_any_magnitude(magnitude: float, n: int) -> None:
    """Above ε the value is scale-invariant; below ε it shrinks, exactly as the formula says
    (float32 squares would overflow above about 1e19 and vanish below about 1e-19)."""
    gen = torch.Generator().manual_seed(0)
    g = (magnitude * (0.3 + torch.randn(n, generator=gen, dtype=torch.float64))).float()
    result = gsnr.measure(gsnr.stack_stats([g])[0], 1e-8)
    assert result.kind is Kind.REGULAR
    assert result.gsnr == pytest.approx(float64_gsnr(g, 1e-8), rel=1e-6)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("centre", [0.37, 1.0])
@pytest.mark.parametrize("spread", [1e-3, 1e-5])
def test_small_but_measurable_noise_is_regular_with_its_float64_gsnr(
    spread: float, centre: float, n: int
) -> None:
    gen = torch.Generator().manual_seed(1)
    g = (centre * (1 + spread * torch.randn(n, generator=gen, dtype=torch.float64))).float()
    result = gsnr.measure(gsnr.stack_stats([g])[0], 1e-8)
    assert result.kind is Kind.REGULAR
    assert result.gsnr == pytest.approx(float64_gsnr(g, 1e-8), rel=1e-6)


def test_float32_statistics_in_the_exact_range_are_not_recomputed(monkeypatch) -> None:
    """The float64 recomputation is for extreme magnitudes only: the measuring pass of an
    ordinary large gradient stays two float32 passes."""
    computed = []
    monkeypatch.setattr(gsnr, "_float64_stats", lambda g: computed.append(g) or GradStats(1.0, 0.0, 0.0))
    gen = torch.Generator().manual_seed(2)
    n = 2 * gsnr.CPU_CHUNK + 1
    ordinary = [1e-3 * torch.randn(n, generator=gen), torch.full((n,), 0.1), torch.zeros(n)]
    gsnr.stack_stats(ordinary)
    assert computed == []
    gsnr.stack_stats([1e25 * torch.randn(n, generator=gen), 1e-25 * torch.randn(n, generator=gen)])
    assert len(computed) == 2
