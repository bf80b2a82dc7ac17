"""The verdict rules on synthetic data whose answer is known."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from sgdsai_lab.stats import (
    ALPHA,
    BEATS,
    BELOW_FLOOR,
    INCONCLUSIVE,
    MATCHES,
    TRAILS,
    Arm,
    Margin,
    bracket,
    compare,
    gap_change,
    gsnr_drift,
    pace,
    paired_eval_var,
    robustness,
    spread,
    steps_to_target,
    summarise,
    welch,
    wider,
)

#: a grid whose best lr (1e-2) is bracketed, for arms whose grid is not the point of the test
BRACKETED = bracket({1e-3: 1.0, 1e-2: 0.0, 1e-1: 1.0}, "min")
#: an exact pattern with mean 0 and sample std 1
PATTERN = np.array([-1.0, 0.0, 1.0])


def arm(name: str, values, *, eval_size: int | None = None, grid=BRACKETED) -> Arm:
    return Arm(name, summarise(list(values), eval_size=eval_size), grid)


def verdict(a: Arm, b: Arm, margin: Margin, goal, *, reference=None, floor=-math.inf):
    if goal == "min" and floor == -math.inf:
        floor = math.inf
    ref = b.cell.mean if reference is None else reference
    return compare(a, b, margin, goal, reference=ref, floor=floor)


# --- summaries ---------------------------------------------------------------------------------


def test_summary_of_known_values_gives_mean_std_and_standard_error():
    s = summarise([1.0, 2.0, 3.0])
    assert (s.n, s.mean, s.std, s.eval_se, s.diverged) == (3, 2.0, 1.0, 0.0, 0)
    assert s.se == pytest.approx(1 / math.sqrt(3))


def test_accuracy_standard_error_adds_the_binomial_term_of_the_eval_set():
    s = summarise([0.79, 0.80, 0.81], eval_size=1000)
    assert s.eval_se == pytest.approx(math.sqrt(0.8 * 0.2 / 1000))
    assert s.se**2 == pytest.approx(0.01**2 / 3 + 0.8 * 0.2 / 1000)
    assert summarise([0.8] * 3, eval_size=100).se == pytest.approx(0.04)


def test_binomial_standard_error_matches_the_spread_of_accuracies_on_fresh_eval_sets():
    rng = np.random.default_rng(0)
    m, p = 400, 0.7
    accuracies = rng.binomial(m, p, size=4000) / m
    assert summarise([p], eval_size=m).eval_se == pytest.approx(accuracies.std(), rel=0.05)


def test_a_diverged_seed_is_counted_not_averaged():
    s = summarise([1.0, None, math.nan, 2.0])
    assert (s.n, s.diverged) == (2, 2)
    assert math.isnan(s.mean)
    assert s.std == pytest.approx(math.sqrt(0.5))


def test_one_seed_has_no_seed_spread():
    s = summarise([0.5])
    assert s.n == 1 and s.mean == 0.5
    assert math.isnan(s.std) and math.isnan(s.se)


@pytest.mark.parametrize(("values", "eval_size", "word"), [([0.5], 0, "eval_size"), ([1.5], 10, "[0, 1]")])
def test_bad_summary_input_raises_naming_it(values, eval_size, word):
    with pytest.raises(ValueError, match=re.escape(word)):
        summarise(values, eval_size=eval_size)


# --- comparisons -------------------------------------------------------------------------------


def test_identical_samples_never_differ_and_match_within_a_wide_margin():
    values = [3.1, 3.0, 3.2, 3.05]
    narrow = verdict(arm("a", values), arm("b", values), Margin(0.1), "min")
    assert narrow.difference == 0 and narrow.p_difference == pytest.approx(1.0)
    assert narrow.verdict == INCONCLUSIVE  # 90% interval ±0.12 with 4 seeds a side
    assert verdict(arm("a", values), arm("b", values), Margin(0.2), "min").verdict == MATCHES


def test_identical_distributions_rarely_beat():
    rng = np.random.default_rng(1)
    words = [
        verdict(
            arm("a", rng.normal(3.0, 0.1, 5)), arm("b", rng.normal(3.0, 0.1, 5)), Margin(0.0), "min"
        ).verdict
        for _ in range(400)
    ]
    assert words.count(BEATS) + words.count(TRAILS) <= 0.05 * 1.5 * len(words)  # 5% expected


def test_identical_distributions_match_with_a_wide_margin_and_many_seeds():
    rng = np.random.default_rng(2)
    loss = verdict(
        arm("a", rng.normal(3.0, 0.01, 30)),
        arm("b", rng.normal(3.0, 0.01, 30)),
        Margin(0.01, relative=True),
        "min",
    )
    assert loss.verdict == MATCHES and loss.margin == pytest.approx(0.03, rel=0.01)
    acc = verdict(
        arm("a", rng.normal(0.85, 0.003, 30), eval_size=10_000),
        arm("b", rng.normal(0.85, 0.003, 30), eval_size=10_000),
        Margin(0.01),
        "max",
    )
    assert acc.verdict == MATCHES
    assert -0.01 < acc.interval_90[0] < acc.interval_90[1] < 0.01


def test_a_narrow_margin_and_few_seeds_leave_identical_distributions_inconclusive():
    rng = np.random.default_rng(3)
    c = verdict(arm("a", rng.normal(3.0, 0.1, 3)), arm("b", rng.normal(3.0, 0.1, 3)), Margin(0.001), "min")
    assert c.verdict == INCONCLUSIVE and "interval" in c.reason


@pytest.mark.parametrize("goal", ["min", "max"])
def test_a_shift_of_five_standard_errors_beats_and_the_other_side_trails(goal):
    sigma = 0.1
    se = math.sqrt(2 * sigma**2 / len(PATTERN))
    better = 1 if goal == "max" else -1
    b = arm("b", 2.0 + sigma * PATTERN)
    a = arm("a", 2.0 + better * 5 * se + sigma * PATTERN)
    c = verdict(a, b, Margin(0.01), goal)
    assert c.verdict == BEATS
    assert c.difference == pytest.approx(better * 5 * se) and c.se == pytest.approx(se)
    assert c.interval_95[0] * c.interval_95[1] > 0  # excludes zero
    assert (c.n_a, c.n_b, c.margin) == (3, 3, 0.01)
    assert verdict(b, a, Margin(0.01), goal).verdict == TRAILS


def test_a_significant_difference_inside_the_margin_matches():
    sigma = 0.01
    b = arm("b", 2.0 + sigma * np.tile(PATTERN, 10))
    a = arm("a", 2.02 + sigma * np.tile(PATTERN, 10))
    c = verdict(a, b, Margin(0.05), "max")
    assert c.p_difference < ALPHA and c.verdict == MATCHES


def test_one_seed_is_inconclusive_and_says_seeds():
    c = verdict(arm("sgdsai", [0.9]), arm("adamw", [0.8, 0.81, 0.79]), Margin(0.01), "max")
    assert c.verdict == INCONCLUSIVE
    assert "sgdsai: 1 seed(s)" in c.reason and "adamw" not in c.reason


def test_an_unbracketed_best_is_inconclusive_and_says_bracket():
    edge = bracket({0.1: 0.5, 0.3: 0.6, 1.0: 0.9}, "max")
    c = verdict(
        arm("sgdsai", [0.9, 0.91, 0.92], grid=edge), arm("adamw", [0.5, 0.51, 0.52]), Margin(0.01), "max"
    )
    assert c.verdict == INCONCLUSIVE
    assert "bracket" in c.reason and "sgdsai" in c.reason


def test_a_diverged_seed_at_the_best_cell_is_inconclusive():
    c = verdict(arm("a", [1.0, 1.1, None, 1.2]), arm("b", [2.0, 2.1, 2.2]), Margin(0.01), "min")
    assert c.verdict == INCONCLUSIVE and "diverged" in c.reason


@pytest.mark.parametrize(
    ("goal", "adamw", "floor"),
    [("min", [5.84, 5.85, 5.83], 5.41), ("max", [0.80, 0.81, 0.79], 0.84)],
)
def test_a_reference_short_of_its_floor_reads_below_floor(goal, adamw, floor):
    sai = arm("sgdsai", [v - 0.5 for v in adamw] if goal == "min" else [v + 0.1 for v in adamw])
    ref = arm("adamw", adamw)
    c = compare(sai, ref, Margin(0.01), goal, reference=ref.cell.mean, floor=floor)
    assert c.verdict == BELOW_FLOOR and "floor" in c.reason
    beaten = compare(
        sai, ref, Margin(0.01), goal, reference=ref.cell.mean, floor=floor + (1 if goal == "min" else -1)
    )
    assert beaten.verdict == BEATS


def test_a_missing_floor_is_inconclusive():
    c = compare(
        arm("a", [1.0, 1.1, 1.2]), arm("b", [2.0, 2.1, 2.2]), Margin(0.01), "min", reference=2.1, floor=None
    )
    assert c.verdict == INCONCLUSIVE and "floor" in c.reason


def test_welch_degrees_of_freedom_are_the_satterthwaite_ones():
    a, b = summarise([1.0, 2.0, 3.0]), summarise([0.0, 0.0, 1.0, 3.0])
    va, vb = 1.0 / 3, np.var([0, 0, 1, 3], ddof=1) / 4
    d, se, df = welch(a, b)
    assert d == pytest.approx(1.0) and se == pytest.approx(math.sqrt(va + vb))
    assert df == pytest.approx((va + vb) ** 2 / (va**2 / 2 + vb**2 / 3))


def test_a_gap_change_adds_the_two_variances_and_satterthwaite_degrees_of_freedom():
    small = verdict(arm("a", 1.0 + PATTERN), arm("b", 0.0 + PATTERN), Margin(0.1), "min")
    large = verdict(arm("a", 3.0 + 2 * PATTERN), arm("b", 0.0 + PATTERN), Margin(0.1), "min")
    d, (lo, hi) = gap_change(small, large)
    se = math.sqrt(small.se**2 + large.se**2)
    df = se**4 / (small.se**4 / small.df + large.se**4 / large.df)
    half = float(scipy_stats.t(df).ppf(0.975)) * se
    assert d == pytest.approx(2.0) and (lo, hi) == pytest.approx((2.0 - half, 2.0 + half))
    assert gap_change(large, small)[0] == pytest.approx(-2.0)  # the order of the settings is the sign


def test_no_seed_variance_gives_normal_quantiles():
    c = verdict(arm("a", [0.5] * 3, eval_size=100), arm("b", [0.5] * 3, eval_size=100), Margin(0.2), "max")
    assert math.isinf(c.df)
    assert c.interval_95[1] == pytest.approx(1.959964 * math.sqrt(2) * 0.05)


def test_bad_goal_or_margin_raises_naming_it():
    with pytest.raises(ValueError, match="goal"):
        verdict(arm("a", [1.0] * 3), arm("b", [1.0] * 3), Margin(0.1), "lower")
    with pytest.raises(ValueError, match="margin"):
        Margin(-1.0)


seeds = st.lists(st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 3)), min_size=3, max_size=8)
margins = st.floats(0, 2, allow_nan=False)
goals = st.sampled_from(["min", "max"])


@settings(max_examples=200, deadline=None)
@given(seeds, seeds, margins, goals)
def test_verdict_is_antisymmetric_when_the_sides_are_swapped(xs, ys, size, goal):
    ab = verdict(arm("a", xs), arm("b", ys), Margin(size), goal, reference=0.0)
    ba = verdict(arm("b", ys), arm("a", xs), Margin(size), goal, reference=0.0)
    mirror = {BEATS: TRAILS, TRAILS: BEATS, MATCHES: MATCHES, INCONCLUSIVE: INCONCLUSIVE}
    assert ba.verdict == mirror[ab.verdict]
    assert ba.difference == -ab.difference
    assert ba.p_equivalence == pytest.approx(ab.p_equivalence)


@settings(max_examples=200, deadline=None)
@given(seeds, seeds, margins, goals)
def test_matches_exactly_when_the_90_percent_interval_lies_inside_the_margin(xs, ys, size, goal):
    c = verdict(arm("a", xs), arm("b", ys), Margin(size), goal, reference=0.0)
    lo, hi = c.interval_90
    assume(min(abs(lo + size), abs(hi - size)) > 1e-9)  # not on the boundary
    assert (c.verdict == MATCHES) == (-size < lo and hi < size)


@settings(max_examples=200, deadline=None)
@given(seeds, seeds, margins, goals)
def test_beats_exactly_when_not_matching_and_the_95_percent_interval_excludes_zero_the_right_way(
    xs, ys, size, goal
):
    c = verdict(arm("a", xs), arm("b", ys), Margin(size), goal, reference=0.0)
    lo, hi = c.interval_95
    assume(min(abs(lo), abs(hi)) > 1e-9 and c.verdict != MATCHES)
    better = lo > 0 if goal == "max" else hi < 0
    assert (c.verdict == BEATS) == better


@settings(max_examples=100, deadline=None)
@given(seeds, seeds, margins)
def test_minimising_a_metric_is_maximising_its_negative(xs, ys, size):
    low = verdict(arm("a", xs), arm("b", ys), Margin(size), "min", reference=0.0, floor=1e9)
    high = verdict(arm("a", [-x for x in xs]), arm("b", [-y for y in ys]), Margin(size), "max", reference=0.0)
    assert low.verdict == high.verdict


def test_spread_needs_a_variance_ratio_past_the_f_quantile():
    tight, loose = summarise(list(0.3 * PATTERN)), summarise(list(PATTERN))
    assert spread(tight, loose).verdict == "inconclusive"  # ratio 0.09, not below 1/39 with 3 against 3
    many_tight, many_loose = summarise(list(0.1 * np.tile(PATTERN, 3))), summarise(list(np.tile(PATTERN, 3)))
    s = spread(many_tight, many_loose)
    assert s.ratio == pytest.approx(0.01) and s.verdict == "lower" and s.p < ALPHA
    assert spread(many_loose, many_tight).verdict == "higher"
    assert spread(summarise([1.0]), loose).verdict == "inconclusive"


# --- bracketing ---------------------------------------------------------------------------------


def test_a_best_inside_the_grid_is_bracketed():
    b = bracket({1e-3: 0.70, 1e-2: 0.80, 1e-1: 0.75}, "max")
    assert (b.best_lr, b.bracketed, b.next_lr, b.edge) == (1e-2, True, None, None)


@pytest.mark.parametrize(
    ("grid", "goal", "edge", "next_lr", "density"),
    [
        ({1e-4: 0.5, 1e-3: 0.6, 1e-2: 0.7, 1e-1: 0.8}, "max", "high", 1.0, 1),
        ({0.1: 0.5, 0.3: 0.6, 1.0: 0.7}, "max", "high", 3.0, 2),
        ({0.1: 2.0, 0.3: 2.5, 1.0: 3.0}, "min", "low", 0.03, 2),
        ({1e-3: 0.5}, "max", "high", 1e-2, 1),
    ],
)
def test_a_best_at_an_edge_asks_for_the_next_lr_at_the_grid_density(grid, goal, edge, next_lr, density):
    b = bracket(grid, goal)
    assert not b.bracketed and b.edge == edge and "bracket" in b.reason
    assert b.next_lr == pytest.approx(next_lr) and b.points_per_decade == density


def test_a_single_tried_lr_is_reported_as_the_only_one_not_as_an_edge():
    alone = bracket({1e-3: 0.5}, "max")
    assert alone.reason == "only lr 0.001 tried so far (not bracketed)"
    assert "edge" in bracket({1e-3: 0.5, 1e-2: 0.6}, "max").reason
    assert "edge" in bracket({1e-3: 0.5, 1e-2: None}, "max").reason  # a diverged lr was tried too


def test_a_diverged_neighbour_counts_as_tried():
    b = bracket({0.1: 0.5, 0.3: 0.6, 1.0: None, 3.0: math.inf}, "max")
    assert b.best_lr == 0.3 and b.bracketed


def test_every_lr_diverged_asks_for_a_lower_lr():
    b = bracket({0.1: None, 1.0: math.nan}, "min")
    assert b.best_lr is None and not b.bracketed and b.edge == "low"
    assert b.next_lr == pytest.approx(0.01) and "diverged" in b.reason


def test_the_stated_limit_stops_the_extension():
    b = bracket({1e-3: 0.5, 1e-2: 0.9}, "max", lr_range=(1e-4, 1e-2))
    assert not b.bracketed and b.next_lr is None and "limit" in b.reason


def test_points_per_decade_sets_an_even_ladder_unless_the_grid_has_that_density():
    assert bracket({1e-3: 0.5}, "max", points_per_decade=2).next_lr == pytest.approx(10**-2.5, rel=1e-5)
    assert bracket({0.1: 0.5, 0.3: 0.6}, "max", points_per_decade=2).next_lr == pytest.approx(1.0)
    assert bracket({1e-2: 0.5, 1e-1: 0.6}, "max", points_per_decade=4).next_lr == pytest.approx(
        10**-0.75, rel=1e-5
    )


@pytest.mark.parametrize(
    ("grid", "kwargs", "word"),
    [
        ({}, {}, "grid"),
        ({0.0: 1.0}, {}, "positive"),
        ({1.0: 1.0}, {"points_per_decade": 0}, "points_per_decade"),
        ({1.0: 1.0}, {"lr_range": (1.0, 0.1)}, "lr_range"),
    ],
)
def test_bad_grid_input_raises_naming_it(grid, kwargs, word):
    with pytest.raises(ValueError, match=word):
        bracket(grid, "min", **kwargs)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-5, 1),
    st.integers(-6, 2),
    st.integers(1, 3),
    st.floats(0.2, 3),
)
def test_extending_a_grid_until_bracketed_finds_the_peak_of_a_unimodal_metric(peak, start, width, cliff):
    """Loss (log10 lr − peak)², diverging past peak + cliff decades: the sweep's loop ends bracketed, at
    the best tried lr, which is the ladder point nearest the peak unless the cliff hides it."""

    def loss(lr: float) -> float | None:
        x = math.log10(lr)
        return None if x > peak + cliff else (x - peak) ** 2

    grid = {10.0 ** (start + i): loss(10.0 ** (start + i)) for i in range(width)}
    for _ in range(20):
        b = bracket(grid, "min")
        if b.bracketed:
            break
        assert b.next_lr is not None and b.next_lr not in grid
        grid[b.next_lr] = loss(b.next_lr)
    assert b.bracketed
    finite = {lr: v for lr, v in grid.items() if v is not None}
    assert b.best_lr == min(finite, key=lambda lr: (finite[lr], lr))
    assert abs(math.log10(b.best_lr) - peak) <= (0.5 if cliff >= 1 else 1) + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=6), st.integers(-3, 3))
def test_bracketing_is_scale_free(values, shift):
    grid = {10.0 ** (i - 4) * 3 ** (i % 2): v for i, v in enumerate(values)}
    scaled = {lr * 10.0**shift: v for lr, v in grid.items()}
    b, s = bracket(grid, "max"), bracket(scaled, "max")
    assert s.bracketed == b.bracketed and s.edge == b.edge
    assert s.best_lr == pytest.approx(b.best_lr * 10.0**shift)
    assert (s.next_lr is None) == (b.next_lr is None)
    if b.next_lr is not None:
        assert s.next_lr == pytest.approx(b.next_lr * 10.0**shift, rel=1e-5)


# --- robustness --------------------------------------------------------------------------------

#: accuracy 1 − |log10 lr + 2| at lr = 1e-4 … 1
TRIANGLE = {10.0**e: 1 - abs(e + 2) for e in range(-4, 1)}


def test_width_of_a_triangular_peak_is_known():
    r = robustness(TRIANGLE, Margin(0.5), "max")
    assert (r.peak_lr, r.peak_value, r.distance) == (1e-2, 1.0, 0.5)
    assert r.width_decades == pytest.approx(1.0) and not (r.open_low or r.open_high)
    assert r.grid_mean == pytest.approx(np.mean(list(TRIANGLE.values())))
    assert r.grid_std == pytest.approx(np.std(list(TRIANGLE.values()), ddof=1))


def test_robustness_is_scale_free_and_goal_symmetric():
    shifted = robustness({lr * 1e3: v for lr, v in TRIANGLE.items()}, Margin(0.5), "max")
    loss = robustness({lr: 3 - v for lr, v in TRIANGLE.items()}, Margin(0.5), "min")
    assert shifted.width_decades == pytest.approx(1.0) and loss.width_decades == pytest.approx(1.0)


def test_a_region_reaching_the_grid_edge_is_a_lower_bound():
    r = robustness({1e-2: 0.9, 1e-1: 0.95, 1.0: 1.0, 10.0: 0.5}, Margin(0.2), "max")
    assert r.width_decades == pytest.approx(2.4) and r.open_low and not r.open_high
    assert robustness({1e-2: 0.9, 1.0: 1.0}, Margin(0.01), "max").open_high  # a peak at the edge


def test_a_diverged_point_counts_as_worst():
    grid = {1e-3: 0.5, 1e-2: 1.0, 1e-1: None}
    alone = robustness(grid, Margin(0.25), "max")
    chance = robustness(grid, Margin(0.25), "max", worst=0.0)
    assert alone.width_decades == pytest.approx(0.5)  # ends at its tried neighbour above
    assert chance.width_decades == pytest.approx(0.75)  # 1.0 → 0.0 crosses 0.75 a quarter decade up
    assert (alone.diverged, alone.grid_mean) == (1, 0.75)
    assert chance.grid_mean == pytest.approx(0.5)


def test_a_relative_distance_is_taken_against_the_peak():
    r = robustness({1e-3: 5.2, 1e-2: 5.0, 1e-1: 5.2}, Margin(0.02, relative=True), "min")
    assert r.distance == pytest.approx(0.1) and r.width_decades == pytest.approx(1.0)


def test_wider_orders_widths_to_within_a_grid_step():
    narrow = robustness(TRIANGLE, Margin(0.5), "max")  # 1 decade
    broad = robustness(TRIANGLE, Margin(1.5), "max")  # 3 decades
    assert wider(broad, narrow, 1.0) == "wider" and wider(narrow, broad, 1.0) == "narrower"
    assert wider(narrow, narrow, 1.0) == "similar"
    edge = robustness({1e-2: 0.9, 1.0: 1.0}, Margin(0.01), "max")  # open: a lower bound
    assert wider(edge, narrow, 1.0) == "inconclusive" and wider(narrow, edge, 1.0) == "inconclusive"
    with pytest.raises(ValueError, match="step"):
        wider(narrow, broad, 0.0)


# --- pace and drift ------------------------------------------------------------------------------


def curve(steps_to_one: int, total: int = 200) -> list[tuple[int, float]]:
    """A loss falling linearly from 2, crossing 1 at ``steps_to_one``."""
    return [(s, 2 - s / steps_to_one) for s in range(1, total + 1)]


@pytest.mark.parametrize(("a", "b", "word"), [(79, 75, "same pace"), (100, 75, "slower"), (60, 75, "faster")])
def test_pace_counts_steps_to_target_within_a_tolerance(a, b, word):
    p = pace(curve(a), curve(b), 1.0, "min", tolerance=0.1)
    assert (p.steps_a, p.steps_b, p.verdict) == (a, b, word)
    assert p.ratio == pytest.approx(a / b)


def test_pace_when_a_side_never_reaches_the_target():
    assert pace(curve(500), curve(75), 1.0, "min").verdict == "slower"
    assert pace(curve(75), curve(500), 1.0, "min").verdict == "inconclusive"
    assert steps_to_target([(1, 0.1), (2, 0.5)], 0.5, "max") == 2


def test_pace_rejects_step_zero():
    with pytest.raises(ValueError, match="curve_a"):
        pace([(0, 1.0)], [(1, 1.0)], 1.0, "min")


def test_gsnr_drift_counts_small_tensors():
    trace = {
        "blocks.0.ln.weight": [8.0, 7.0, None, 8.0 * 0.71],
        "blocks.0.qkv.weight": [660.0, 661.0, 659.0],
        "head.bias": [3.0],
    }
    numel = {"blocks.0.ln.weight": 64, "blocks.0.qkv.weight": 660**2, "head.bias": 10}
    d = gsnr_drift(trace, numel)
    assert [t.name for t in d.tensors] == ["blocks.0.ln.weight", "blocks.0.qkv.weight"]
    assert d.max_drift == pytest.approx(0.29) and d.max_drift_small == pytest.approx(0.29)
    assert d.tensors[0].low == pytest.approx(0.71) and not d.within
    assert d.skipped == ("head.bias",)
    assert d.median_over_sqrt_numel == pytest.approx(1.0)  # the large tensor's alone
    big = gsnr_drift({"w": [660.0, 661.0]}, {"w": 660**2})
    assert big.within and math.isnan(big.max_drift_small)


def test_gsnr_drift_needs_every_numel():
    with pytest.raises(ValueError, match="numel"):
        gsnr_drift({"w": [1.0, 1.0]}, {})


def test_the_paired_evaluation_variance_is_the_variance_of_the_difference_over_redrawn_test_sets() -> None:
    """Oracle: draw many test sets of m examples from a population on which two models' errors
    correlate; the variance of the difference of their accuracies across the draws is what
    paired_eval_var estimates from one draw, and is well below the two binomial terms."""
    rng = np.random.default_rng(0)
    m, draws = 400, 4000
    # per-example (a correct, b correct) with P = 0.70 both, 0.05 a only, 0.10 b only, 0.15 neither
    joint = np.array([[1, 1], [1, 0], [0, 1], [0, 0]])
    picks = rng.choice(4, size=(draws, m), p=[0.70, 0.05, 0.10, 0.15])
    outcomes = joint[picks]  # draws x m x 2
    diffs = outcomes[..., 0].mean(1) - outcomes[..., 1].mean(1)
    estimates = [paired_eval_var(o[None, :, 0], o[None, :, 1]) for o in outcomes[:200]]
    truth = diffs.var(ddof=1)
    assert np.mean(estimates) == pytest.approx(truth, rel=0.1)
    pa, pb = 0.75, 0.80
    assert truth < 0.5 * (pa * (1 - pa) + pb * (1 - pb)) / m  # the binomial sum overstates it


def test_seed_and_evaluation_terms_together_are_the_variance_over_redrawn_seeds_and_test_sets() -> None:
    """Oracle: each draw takes a new test set of m examples and n new seeds per cell (a seed shifts
    a model's logits; each outcome is then a coin). The variance of ā − b̄ across the draws is what
    s²_a/n + s²_b/n + paired_eval_var estimates. The cells share part of each example's difficulty,
    so the evaluation term is large and a wrong correction shows: without it the seeds'
    disagreement on examples is counted twice, with too much of it the evaluation noise is lost."""
    rng = np.random.default_rng(0)
    m, n, draws = 500, 3, 2000
    shared = rng.normal(size=(draws, 1, m))

    def cell(base: float) -> np.ndarray:  # draws x seeds x examples
        difficulty = shared + 0.5 * rng.normal(size=(draws, 1, m))
        logits = base + 4.0 * difficulty + rng.normal(0, 0.1, size=(draws, n, 1))
        return (rng.random((draws, n, m)) < 1 / (1 + np.exp(-logits))).astype(float)

    a, b = cell(2.2), cell(2.0)
    truth = (a.mean((1, 2)) - b.mean((1, 2))).var(ddof=1)
    seeds = a.mean(2).var(1, ddof=1) / n + b.mean(2).var(1, ddof=1) / n
    estimates = seeds + [paired_eval_var(x, y) for x, y in zip(a, b, strict=True)]
    uncorrected = seeds + (a.mean(1) - b.mean(1)).var(1, ddof=1) / m
    assert np.mean(estimates) == pytest.approx(truth, rel=0.1)
    assert np.mean(uncorrected) > 1.25 * truth
    assert np.mean(seeds) < 0.8 * truth  # the evaluation term is a large part: a zero one would fail


@given(st.lists(st.booleans(), min_size=2, max_size=60))
def test_an_arm_against_its_own_outcomes_has_no_evaluation_noise_and_flipped_ones_have_all(flags) -> None:
    a = np.array([flags], dtype=float)
    assert paired_eval_var(a, a) == 0.0
    d = 2 * a[0] - 1  # a against its complement: d_i = ±1
    assert paired_eval_var(a, 1 - a) == pytest.approx(d.var(ddof=1) / len(flags))


def test_paired_outcomes_of_two_evaluation_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="one evaluation set"):
        paired_eval_var(np.ones((3, 10)), np.ones((3, 11)))


def test_the_paired_term_replaces_the_binomial_ones_and_marks_the_comparison() -> None:
    a = arm("a", [0.800, 0.801, 0.799], eval_size=500)
    b = arm("b", [0.800, 0.8005, 0.7995], eval_size=500)
    unpaired = compare(a, b, Margin(0.01), "max", reference=0.8, floor=0.5)
    paired = compare(a, b, Margin(0.01), "max", reference=0.8, floor=0.5, eval_var=1e-6)
    assert not unpaired.paired and paired.paired
    assert paired.se == pytest.approx(math.sqrt(a.cell.seed_se**2 + b.cell.seed_se**2 + 1e-6))
    assert unpaired.se == pytest.approx(math.sqrt(a.cell.se**2 + b.cell.se**2))
    assert paired.se < unpaired.se
    assert paired.verdict == MATCHES and unpaired.verdict == INCONCLUSIVE
