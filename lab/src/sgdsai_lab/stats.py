"""Statistics and verdict rules for the claims table: pure functions of numbers, no I/O.

Everything here takes plain values (a cell's seed metrics, an lr grid, a loss curve, a g-SNR trace)
and returns a frozen dataclass, so that each rule is stated once, tested on synthetic data whose
answer is known, and printed under the table from `RULES`.

A *goal* says which way is better: ``"min"`` for losses, ``"max"`` for accuracies. A *diverged* value is
``None`` or any non-finite float.

Rules (the formulas are in each function's docstring):

* a cell (one optimizer, lr, wd) is summarised over its seeds by `summarise`; for an accuracy the
  evaluation set's binomial noise is added to the seed variance, or, where both cells' per-example
  outcomes are known, the paired noise of their difference (`paired_eval_var`) replaces it;
* two best cells are compared by `compare`: *matches* (two one-sided Welch tests within a margin
  stated before the runs), *beats* / *trails* (a 95% interval of the difference that excludes zero),
  else *inconclusive*; guards (seeds, bracketing, floor) force *inconclusive* or *below floor* first;
* `bracket` decides whether a grid's best lr is bracketed and which lr the sweep should try next;
* `spread` tests whether one cell's seeds spread less than another's (F-test);
* `robustness` is the scale-free width, in decades of lr, of the region near an optimizer's peak,
  and `wider` orders two such widths to within a grid step;
* `pace` compares steps to a target with a tolerance; `gsnr_drift` summarises a g-SNR trace.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as _scipy_stats

Goal = Literal["min", "max"]
GOALS: tuple[Goal, ...] = ("min", "max")

#: seeds needed on each side of a comparison
MIN_SEEDS = 3
#: two-sided level of the *beats* interval (95%); the *matches* interval is the (1 - 2·ALPHA) = 90% one
ALPHA = 0.05
#: tolerance on the steps-to-target ratio of `pace`
PACE_TOLERANCE = 0.10
#: tolerance on a tensor's g-SNR relative to its first value in `gsnr_drift`
DRIFT_TOLERANCE = 0.05
#: tensors smaller than this are reported apart in `gsnr_drift` (never left out)
SMALL_NUMEL = 1000

BEATS: Final = "beats"
TRAILS: Final = "trails"
MATCHES: Final = "matches"
INCONCLUSIVE: Final = "inconclusive"
BELOW_FLOOR: Final = "below floor: not informative"
Verdict = Literal["beats", "trails", "matches", "inconclusive", "below floor: not informative"]


def _check_goal(goal: str) -> None:
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {GOALS}, got {goal!r}")


def _sign(goal: Goal) -> int:
    """+1 where larger is better, -1 where smaller is."""
    _check_goal(goal)
    return 1 if goal == "max" else -1


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _finite_only(grid: Mapping[float, float | None]) -> dict[float, float]:
    """The lrs of ``grid`` whose run did not diverge, with their values."""
    return {lr: float(v) for lr, v in grid.items() if v is not None and math.isfinite(v)}


# --------------------------------------------------------------------------------------------------
# one cell


@dataclass(frozen=True)
class CellSummary:
    """A cell's metric over its seeds.

    ``std`` is the sample standard deviation (ddof = 1; NaN below two seeds); ``seed_se = std / √n``;
    ``eval_se = √(p̄(1 − p̄)/m)`` for an accuracy p̄ measured on an evaluation set of ``m`` examples
    (0 for a loss); ``se = √(seed_se² + eval_se²)``. ``diverged`` seeds are counted, never averaged:
    with any of them the mean is NaN.
    """

    n: int
    mean: float
    std: float
    seed_se: float
    eval_se: float
    se: float
    diverged: int = 0
    eval_size: int | None = None


def summarise(values: Sequence[float | None], *, eval_size: int | None = None) -> CellSummary:
    """Summarise one cell's per-seed metric values.

    For an accuracy, pass ``eval_size`` (the number of evaluation examples, m). Each seed's accuracy
    is then a model's accuracy measured on the *same* finite evaluation set, so the seed variance s²
    holds the training noise, while the draw of the evaluation set itself is shared by every seed and
    does not average out over seeds. The standard error of the cell mean is therefore

        SE = √( s²/n + p̄(1 − p̄)/m ),

    the seed variance of the mean plus the binomial variance of an accuracy p̄ on m examples. Added on
    both sides of a comparison on one evaluation set, this is conservative (the shared part would cancel).
    """
    if eval_size is not None and eval_size < 1:
        raise ValueError(f"eval_size must be a positive number of examples or None, got {eval_size!r}")
    finite = np.array([v for v in values if _finite(v)], dtype=float)
    n, diverged = len(finite), len(values) - len(finite)
    if eval_size is not None and n and not ((finite >= 0) & (finite <= 1)).all():
        raise ValueError("with eval_size the values must be accuracies in [0, 1]")
    mean = float(finite.mean()) if n and not diverged else math.nan
    std = float(finite.std(ddof=1)) if n > 1 else math.nan
    seed_se = std / math.sqrt(n) if n > 1 else math.nan
    eval_se = 0.0
    if eval_size is not None and math.isfinite(mean):
        eval_se = math.sqrt(mean * (1 - mean) / eval_size)
    se = math.sqrt(seed_se**2 + eval_se**2)
    return CellSummary(n, mean, std, seed_se, eval_se, se, diverged, eval_size)


# --------------------------------------------------------------------------------------------------
# the lr grid: bracketing and the next point


@dataclass(frozen=True)
class Bracket:
    """Where a grid's best lr lies.

    ``bracketed``: a tried lr lies on each side of ``best_lr`` (a diverged one counts as tried).
    ``edge``: the side to extend when not bracketed; ``next_lr``: the lr to try there, on the grid's
    own ladder (``None`` when bracketed or past ``lr_range``). ``points_per_decade``: the ladder's density.
    """

    best_lr: float | None
    best_value: float | None
    bracketed: bool
    edge: Literal["low", "high"] | None
    next_lr: float | None
    points_per_decade: int
    reason: str


def _ladder(lrs: Sequence[float], points_per_decade: int | None) -> np.ndarray:
    """The ladder of log10 mantissas in [0, 1) that next lrs are drawn from: the grid's own, unless
    ``points_per_decade`` is given and differs from their count; then an even ladder of that many points
    through the grid's lowest lr."""
    logs = np.log10(np.asarray(lrs, dtype=float))
    own = np.unique(np.round(np.mod(logs, 1.0), 6) % 1.0)
    if points_per_decade is None or len(own) == points_per_decade:
        return own
    start = logs.min() % 1.0
    return np.sort(np.round((start + np.arange(points_per_decade) / points_per_decade) % 1.0, 6) % 1.0)


def _step(lr: float, ladder: np.ndarray, up: bool) -> float:
    """The next lr strictly above (``up``) or below ``lr`` on ``ladder``."""
    x = math.log10(lr)
    decade = math.floor(x)
    candidates = np.concatenate([ladder + d for d in (decade - 1, decade, decade + 1)])
    chosen = candidates[candidates > x + 1e-6].min() if up else candidates[candidates < x - 1e-6].max()
    return float(f"{10**chosen:.6g}")  # 3, not 2.9999993: the ladder is rounded to 6 digits


def bracket(
    grid: Mapping[float, float | None],
    goal: Goal,
    *,
    points_per_decade: int | None = None,
    lr_range: tuple[float, float] | None = None,
) -> Bracket:
    """Best lr of ``grid`` ({lr: metric, or None / non-finite where the run diverged}) and whether it is
    bracketed; if not, the lr to try next beyond the edge it sits on.

    The next lr keeps the grid's density: it is the nearest point past the edge on the ladder of the
    grid's own log10 mantissas (past 1e-4…1e-1 comes 1, past 0.1/0.3/1 comes 3), or, when
    ``points_per_decade`` is given (tuning parity) and the grid has another number of mantissas, on an
    even ladder of that many points per decade through the lowest lr (1e-3 at two: 3.16e-3). If every lr diverged,
    the next lr lies below the lowest. ``lr_range`` (inclusive) is the stated limit: a next lr outside it
    is ``None`` and the reason says the limit is reached. A one-lr grid extends upwards first. For an
    lr × wd grid pass each lr's best value over wd. Ties go to the lower lr.
    """
    _check_goal(goal)
    if not grid:
        raise ValueError("grid must hold at least one lr")
    if any(not (lr > 0 and math.isfinite(lr)) for lr in grid):
        raise ValueError(f"grid lrs must be positive and finite, got {sorted(grid)}")
    if lr_range is not None and not 0 < lr_range[0] <= lr_range[1]:
        raise ValueError(f"lr_range must be (low, high) with 0 < low <= high, got {lr_range!r}")
    if points_per_decade is not None and points_per_decade < 1:
        raise ValueError(f"points_per_decade must be a positive integer or None, got {points_per_decade!r}")
    lrs = sorted(grid)
    ladder = _ladder(lrs, points_per_decade)
    ppd = len(ladder)
    finite = _finite_only(grid)
    edge: Literal["low", "high"] = "low"
    best_lr: float | None = None
    best_value: float | None = None
    if not finite:
        reason = "every lr diverged"
    else:
        sign = _sign(goal)
        best_lr = max(finite, key=lambda lr: (sign * finite[lr], -lr))
        best_value = finite[best_lr]
        low, high = best_lr > lrs[0], best_lr < lrs[-1]
        if low and high:
            return Bracket(best_lr, best_value, True, None, None, ppd, f"best lr {best_lr:g} is bracketed")
        if not high:
            edge = "high"
        reason = (
            f"only lr {best_lr:g} tried so far (not bracketed)"
            if len(lrs) == 1
            else f"best lr {best_lr:g} at the {edge} edge of the grid (not bracketed)"
        )
    up = edge == "high"
    next_lr: float | None = _step(lrs[-1] if up else lrs[0], ladder, up)
    if lr_range is not None and next_lr is not None and not lr_range[0] <= next_lr <= lr_range[1]:
        reason += f"; the next lr {next_lr:g} lies outside the stated limit {lr_range}"
        next_lr = None
    return Bracket(best_lr, best_value, False, edge, next_lr, ppd, reason)


# --------------------------------------------------------------------------------------------------
# comparing two best cells


@dataclass(frozen=True)
class Margin:
    """The equivalence margin of a setting, stated before its runs: ``size`` in the metric's units, or
    with ``relative`` a fraction of the mean of the two sides' means (1% of the loss: ``Margin(0.01,
    relative=True)``; 1 accuracy point: ``Margin(0.01)``)."""

    size: float
    relative: bool = False

    def __post_init__(self) -> None:
        if not (self.size >= 0 and math.isfinite(self.size)):
            raise ValueError(f"margin size must be finite and >= 0, got {self.size!r}")

    def resolve(self, scale: float) -> float:
        """The margin in the metric's units, relative ones against ``scale``."""
        return self.size * abs(scale) if self.relative else self.size

    def __str__(self) -> str:
        return f"±{100 * self.size:g}%" if self.relative else f"±{self.size:g}"


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: an optimizer's best cell and the bracket of the grid it came from."""

    name: str
    cell: CellSummary
    grid: Bracket


#: the reason of an *inconclusive* that the tests, not a guard, left open (the margin, in the metric's
#: units, is shown beside it by whoever prints it)
OPEN_INTERVAL = "the 90% interval reaches past the margin and the 95% interval holds zero"


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``: the difference of means ``a − b`` (in the metric's units, whatever the goal),
    its standard error and Welch degrees of freedom, the 90% interval (*matches*) and the 95% interval
    (*beats* / *trails*), the TOST p-value (the larger of the two one-sided ones), the two-sided p-value
    of a difference, the verdict and, unless the tests decided, the reason; ``paired``: the
    evaluation-set noise is `paired_eval_var`'s, not the cells' binomial terms."""

    a: str
    b: str
    n_a: int
    n_b: int
    margin: float
    difference: float
    se: float
    df: float
    interval_90: tuple[float, float]
    interval_95: tuple[float, float]
    p_equivalence: float
    p_difference: float
    verdict: Verdict
    reason: str = ""
    paired: bool = False


def paired_eval_var(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """The evaluation-set variance of the difference of two cells' accuracies measured on the same
    m examples, from their per-example outcomes ``a`` (n_a seeds × m, 1 = correct) and ``b``: the
    part of Var(ā − b̄) that the seed variances s²_a/n_a + s²_b/n_b (`welch`) do not already hold.

    With dᵢ = āᵢ − b̄ᵢ (example i's correctness averaged over each cell's seeds), the cells' mean
    accuracies differ by d̄, and drawing the m examples anew moves d̄ by about s²_d / m (s²_d the
    sample variance of the dᵢ). Examples both cells get right (or wrong) cancel. The sum of the two
    binomial variances, p_a(1 − p_a)/m + p_b(1 − p_b)/m, ignores that: it equals s²_d / m for one
    seed a side with uncorrelated errors and exceeds it when the errors correlate, as two models'
    errors on one test set do.

    Seeds that disagree on an example also put their disagreement into s²_d, by σ²_× / n per cell
    (σ²_× the seed × example interaction variance), and into each cell's seed variance s², by σ²_× / m:
    counted twice. The two-way residual mean square of each cell's n × m outcomes,
    r = Σᵢⱼ (yⱼᵢ − ȳⱼ· − ȳ·ᵢ + ȳ··)² / ((n − 1)(m − 1)), estimates σ²_× without bias, so the
    variance returned is (s²_d − r_a/n_a − r_b/n_b) / m, floored at 0 (r = 0 for a single seed,
    where it cannot be estimated: the estimate then errs wide, never narrow). With the seed terms
    it estimates Var(ā − b̄) over redrawn seeds and examples without bias (an oracle test checks):
    the target is accuracy on the data distribution the test set was drawn from, not on that set.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape[1] != b.shape[1] or a.shape[1] < 2:
        raise ValueError(
            f"outcomes of one evaluation set of two or more examples needed, got {a.shape}, {b.shape}"
        )
    d = a.mean(axis=0) - b.mean(axis=0)
    twice = sum(_interaction_var(y) / len(y) for y in (a, b))
    return float(max(d.var(ddof=1) - twice, 0.0) / d.size)


def _interaction_var(y: npt.NDArray[np.float64]) -> float:
    """The two-way residual mean square of seeds × examples outcomes ``y`` (0 for one seed)."""
    n, m = y.shape
    if n < 2:
        return 0.0
    residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    return float((residual**2).sum() / ((n - 1) * (m - 1)))


def welch(a: CellSummary, b: CellSummary, *, eval_var: float | None = None) -> tuple[float, float, float]:
    """``(a.mean − b.mean, se, df)`` for two independent cells.

    se² = v_a + v_b with v = SE² of each cell (`summarise`, evaluation noise included); with
    ``eval_var`` (`paired_eval_var`), se² = s_a²/n_a + s_b²/n_b + eval_var instead of the two
    binomial terms. Welch–Satterthwaite df = se⁴ / Σ (s²/n)² / (n − 1), the evaluation part taken
    as known (infinite df), so df = ∞ (normal quantiles) when neither side has seed variance.
    """
    evaluation = a.eval_se**2 + b.eval_se**2 if eval_var is None else eval_var
    se = math.sqrt(a.seed_se**2 + b.seed_se**2 + evaluation)
    parts = [c.seed_se**4 / (c.n - 1) if c.n > 1 else math.nan for c in (a, b)]
    denominator = sum(parts)
    df = se**4 / denominator if denominator > 0 else math.inf
    return a.mean - b.mean, se, df


def _tests(d: float, se: float, df: float, margin: float) -> tuple[tuple[float, float], ...]:
    """``((lo90, hi90), (lo95, hi95), (p_equivalence, p_difference))``."""
    if not (math.isfinite(d) and math.isfinite(se) and not math.isnan(df)):
        nan = (math.nan, math.nan)
        return nan, nan, nan
    if se == 0:
        p_eq = 0.0 if abs(d) < margin else 1.0
        return (d, d), (d, d), (p_eq, 1.0 if d == 0 else 0.0)
    t = _scipy_stats.t(df)
    h90, h95 = float(t.ppf(1 - ALPHA)) * se, float(t.ppf(1 - ALPHA / 2)) * se
    # H0: d <= -margin (rejected for large d) and H0: d >= margin (rejected for small d)
    p_eq = max(float(t.sf((d + margin) / se)), float(t.cdf((d - margin) / se)))
    p_diff = float(2 * t.sf(abs(d) / se))
    return (d - h90, d + h90), (d - h95, d + h95), (p_eq, p_diff)


def beats_floor(value: float, floor: float, goal: Goal) -> bool:
    """Whether ``value`` is strictly better than ``floor`` (the bigram cross-entropy of an LM setting,
    the linear model's accuracy of an image setting)."""
    return _finite(value) and _sign(goal) * (value - floor) > 0


def gap_change(first: Comparison, second: Comparison) -> tuple[float, tuple[float, float]]:
    """How much the difference ``a − b`` of `second` exceeds that of `first` (two independent
    settings), with its 95% interval: d = d₂ − d₁, se² = se₁² + se₂², Welch–Satterthwaite
    df = se⁴ / (se₁⁴/df₁ + se₂⁴/df₂). NaN bounds where either side has no standard error."""
    d = second.difference - first.difference
    se = math.sqrt(first.se**2 + second.se**2)
    parts = [c.se**4 / c.df for c in (first, second) if c.df > 0]
    df = se**4 / sum(parts) if parts and sum(parts) > 0 else math.inf
    _, interval_95, _ = _tests(d, se, df, 0.0)
    return d, interval_95


def compare(
    a: Arm,
    b: Arm,
    margin: Margin,
    goal: Goal,
    *,
    reference: float,
    floor: float | None,
    eval_var: float | None = None,
) -> Comparison:
    """Verdict on ``a`` against ``b`` in one setting.

    ``reference`` is the setting's best AdamW mean and ``floor`` its floor (`beats_floor`); a
    ``None`` floor is a missing one; ``eval_var``, the paired evaluation-set variance of the
    difference (`paired_eval_var`, used in place of the cells' binomial terms). In this order:

    1. *below floor: not informative* when the reference does not beat the floor;
    2. *inconclusive* when a floor is missing, a side has fewer than `MIN_SEEDS` seeds or a
       diverged seed, or a side's best lr is not bracketed (the reason lists every guard that failed);
    3. *matches* when both one-sided Welch tests reject a difference of ±margin at level
       `ALPHA` (equivalently the 90% interval of a − b lies inside ±margin);
    4. *beats* / *trails* when the 95% interval excludes zero, on the better / worse side for ``goal``;
    5. else *inconclusive*.

    Swapping ``a`` and ``b`` negates the difference and exchanges *beats* and *trails*.
    """
    _check_goal(goal)
    m = margin.resolve((a.cell.mean + b.cell.mean) / 2)
    d, se, df = welch(a.cell, b.cell, eval_var=eval_var)
    i90, i95, (p_eq, p_diff) = _tests(d, se, df, m)

    def result(verdict: Verdict, reason: str = "") -> Comparison:
        return Comparison(
            a.name,
            b.name,
            a.cell.n,
            b.cell.n,
            m,
            d,
            se,
            df,
            i90,
            i95,
            p_eq,
            p_diff,
            verdict,
            reason,
            eval_var is not None,
        )

    if floor is not None and not beats_floor(reference, floor, goal):
        return result(BELOW_FLOOR, f"the best AdamW run ({reference:g}) does not beat the floor ({floor:g})")
    reasons = [] if floor is not None else ["no floor stated for this setting"]
    for arm in (a, b):
        if arm.cell.n < MIN_SEEDS:
            reasons.append(f"{arm.name}: {arm.cell.n} seed(s), fewer than {MIN_SEEDS}")
        if arm.cell.diverged:
            reasons.append(f"{arm.name}: {arm.cell.diverged} diverged seed(s) at the best cell")
        if not arm.grid.bracketed:
            reasons.append(f"{arm.name}: {arm.grid.reason}")
    if reasons:
        return result(INCONCLUSIVE, "; ".join(reasons))
    if p_eq < ALPHA:
        return result(MATCHES)
    if p_diff < ALPHA:
        return result(BEATS if _sign(goal) * d > 0 else TRAILS)
    return result(INCONCLUSIVE, OPEN_INTERVAL)


@dataclass(frozen=True)
class Spread:
    """Seed spread of ``a`` against ``b``: the variance ratio s_a²/s_b², its two-sided F-test p-value
    (df n_a − 1, n_b − 1) and the verdict, *lower* / *higher* at level `ALPHA`, else *inconclusive*
    (always below `MIN_SEEDS` seeds a side; with 3 against 3 the ratio must pass 39 or 1/39)."""

    n_a: int
    n_b: int
    ratio: float
    p: float
    verdict: Literal["lower", "higher", "inconclusive"]


def spread(a: CellSummary, b: CellSummary) -> Spread:
    """Whether ``a``'s seeds spread less than ``b``'s: an F-test of the two sample variances."""
    if min(a.n, b.n) < MIN_SEEDS or not (math.isfinite(a.std) and math.isfinite(b.std)) or b.std == 0:
        return Spread(a.n, b.n, math.nan, math.nan, "inconclusive")
    ratio = a.std**2 / b.std**2
    f = _scipy_stats.f(a.n - 1, b.n - 1)
    p = float(min(1.0, 2 * min(f.cdf(ratio), f.sf(ratio))))
    verdict: Literal["lower", "higher", "inconclusive"] = (
        "inconclusive" if p >= ALPHA else "lower" if ratio < 1 else "higher"
    )
    return Spread(a.n, b.n, ratio, p, verdict)


# --------------------------------------------------------------------------------------------------
# robustness over the lr grid


@dataclass(frozen=True)
class Robustness:
    """The width in decades of lr (log10 units, so scale-free) of the connected region around the
    peak whose value lies within ``distance`` of it, beside the paper's grid mean ± std.

    ``open_low`` / ``open_high``: the region reaches that end of the grid, so the width is a lower bound.
    """

    peak_lr: float | None
    peak_value: float | None
    distance: float
    width_decades: float
    open_low: bool
    open_high: bool
    grid_mean: float
    grid_std: float
    points: int
    diverged: int


def robustness(
    grid: Mapping[float, float | None], distance: Margin, goal: Goal, *, worst: float | None = None
) -> Robustness:
    """Scale-free robustness of one optimizer's lr grid ({lr: metric or diverged}).

    With score s = ±value (larger better) and threshold t = s_peak − distance (a relative distance is
    taken against the peak value), the region runs from the peak outwards while s ≥ t, interpolating s
    linearly in log10 lr between tried points; where s drops below t between x_j and x_{j+1} the edge
    lies at x_j + (s_j − t)/(s_j − s_{j+1})·(x_{j+1} − x_j). A diverged point counts as the worst: as
    ``worst`` when given (chance accuracy; the initial loss), else as −∞ (the region ends at its tried
    neighbour). The grid mean ± std (sample std) is over every lr, diverged ones as ``worst`` or, without
    it, left out (counted in ``diverged``).
    """
    _check_goal(goal)
    if not grid:
        raise ValueError("grid must hold at least one lr")
    sign = _sign(goal)
    lrs = sorted(grid)
    finite = _finite_only(grid)
    diverged = len(lrs) - len(finite)
    values = [finite.get(lr, worst) for lr in lrs]
    listed = [v for v in values if v is not None]
    grid_mean = float(np.mean(listed)) if listed else math.nan
    grid_std = float(np.std(listed, ddof=1)) if len(listed) > 1 else math.nan
    scores = [sign * v if v is not None else -math.inf for v in values]
    if not finite:
        return Robustness(None, None, math.nan, 0.0, False, False, grid_mean, grid_std, len(lrs), diverged)
    i_peak = max(range(len(lrs)), key=lambda i: (scores[i] if lrs[i] in finite else -math.inf, -i))
    peak = finite[lrs[i_peak]]
    dist = distance.resolve(peak)
    threshold = scores[i_peak] - dist
    xs = np.log10(lrs)

    def reach(step: int) -> tuple[float, bool]:
        j = i_peak
        while 0 <= j + step < len(lrs):
            k = j + step
            if scores[k] < threshold:
                frac = (scores[j] - threshold) / (scores[j] - scores[k]) if math.isfinite(scores[k]) else 0.0
                return float(abs(xs[j] + frac * (xs[k] - xs[j]) - xs[i_peak])), False
            j = k
        return float(abs(xs[j] - xs[i_peak])), True

    below, open_low = reach(-1)
    above, open_high = reach(+1)
    return Robustness(
        lrs[i_peak], peak, dist, below + above, open_low, open_high, grid_mean, grid_std, len(lrs), diverged
    )


def wider(
    a: Robustness, b: Robustness, step: float
) -> Literal["wider", "narrower", "similar", "inconclusive"]:
    """``a``'s region against ``b``'s: *wider* / *narrower* when the widths differ by at least ``step``
    decades (one grid step, 1 / points per decade: a width is only known to that), *similar* when less;
    *inconclusive* when a region reaching the grid's edge (a lower bound) leaves the order open."""
    if not step > 0:
        raise ValueError(f"step must be a positive number of decades, got {step!r}")
    d = a.width_decades - b.width_decades
    a_open, b_open = a.open_low or a.open_high, b.open_low or b.open_high
    if d >= step and not b_open:
        return "wider"
    if d <= -step and not a_open:
        return "narrower"
    if abs(d) < step and not (a_open or b_open):
        return "similar"
    return "inconclusive"


# --------------------------------------------------------------------------------------------------
# early pace and g-SNR drift


def steps_to_target(curve: Sequence[tuple[int, float]], target: float, goal: Goal) -> int | None:
    """The first step of ``curve`` ((step, value) pairs, steps ≥ 1, ascending) whose value is at least as
    good as ``target``; ``None`` if none is."""
    sign = _sign(goal)
    return next((step for step, value in curve if _finite(value) and sign * (value - target) >= 0), None)


@dataclass(frozen=True)
class Pace:
    """Steps to a target for ``a`` and ``b``, their ratio a/b and the verdict with its tolerance:
    *slower* when ratio > 1 + tolerance (or ``a`` never gets there), *faster* when ratio < 1/(1 + tolerance),
    *same pace* between, *inconclusive* when ``b`` never reaches the target."""

    target: float
    steps_a: int | None
    steps_b: int | None
    ratio: float
    tolerance: float
    verdict: Literal["slower", "faster", "same pace", "inconclusive"]


def pace(
    curve_a: Sequence[tuple[int, float]],
    curve_b: Sequence[tuple[int, float]],
    target: float,
    goal: Goal,
    *,
    tolerance: float = PACE_TOLERANCE,
) -> Pace:
    """Whether ``a`` is slower early than ``b``: steps each needs to reach ``target`` (e.g. b's smoothed
    loss at 25% of training), compared as a ratio within ``tolerance`` (0.1: within 10% is the same pace,
    so 79 against 75 steps is not slower)."""
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    for name, curve in (("curve_a", curve_a), ("curve_b", curve_b)):
        if any(step < 1 for step, _ in curve):
            raise ValueError(f"{name}: steps must count optimizer steps taken (>= 1)")
    sa, sb = steps_to_target(curve_a, target, goal), steps_to_target(curve_b, target, goal)
    if sb is None:
        return Pace(target, sa, sb, math.nan, tolerance, "inconclusive")
    ratio = math.inf if sa is None else sa / sb
    verdict: Literal["slower", "faster", "same pace"] = (
        "slower" if ratio > 1 + tolerance else "faster" if ratio < 1 / (1 + tolerance) else "same pace"
    )
    return Pace(target, sa, sb, ratio, tolerance, verdict)


@dataclass(frozen=True)
class TensorDrift:
    """One tensor's g-SNR over a run: its first value, the range of value / first value, the drift
    max |v/v₀ − 1| and first value / √numel."""

    name: str
    numel: int
    first: float
    low: float
    high: float
    drift: float
    over_sqrt_numel: float


@dataclass(frozen=True)
class Drift:
    """g-SNR drift over *every* traced tensor (sorted by drift, largest first), with the largest drift
    overall and among tensors under `SMALL_NUMEL` elements, whether every tensor stays within
    ``tolerance`` of its first value, and the median first g-SNR / √numel of the tensors of at least
    `SMALL_NUMEL` elements (the paper's √numel is a statement about large matrices).
    ``skipped``: tensors with fewer than two finite values."""

    tensors: tuple[TensorDrift, ...]
    max_drift: float
    max_drift_small: float
    median_over_sqrt_numel: float
    tolerance: float
    within: bool
    skipped: tuple[str, ...]


def gsnr_drift(
    trace: Mapping[str, Sequence[float | None]],
    numel: Mapping[str, int],
    *,
    tolerance: float = DRIFT_TOLERANCE,
) -> Drift:
    """Summarise a g-SNR trace ({tensor: values over time, None where not traced}) with each tensor's
    element count. No tensor is left out for its size. A first value of 0 gives drift 0 if every value is
    0, else ∞."""
    missing = sorted(set(trace) - set(numel))
    if missing:
        raise ValueError(f"numel lacks traced tensors: {missing}")
    rows, skipped = [], []
    for name, raw in trace.items():
        vs = [float(v) for v in raw if v is not None and math.isfinite(v)]
        if len(vs) < 2:
            skipped.append(name)
            continue
        v0 = vs[0]
        ratios = [v / v0 for v in vs] if v0 != 0 else [1.0 if v == 0 else math.inf for v in vs]
        drift = max(abs(r - 1) for r in ratios)
        rows.append(
            TensorDrift(name, numel[name], v0, min(ratios), max(ratios), drift, v0 / math.sqrt(numel[name]))
        )
    rows.sort(key=lambda t: (-t.drift, t.name))
    drifts = [t.drift for t in rows]
    small = [t.drift for t in rows if t.numel < SMALL_NUMEL]
    large = [t.over_sqrt_numel for t in rows if t.numel >= SMALL_NUMEL]
    return Drift(
        tuple(rows),
        max(drifts, default=math.nan),
        max(small, default=math.nan),
        float(np.median(large)) if large else math.nan,
        tolerance,
        bool(rows) and max(drifts) <= tolerance,
        tuple(sorted(skipped)),
    )


# --------------------------------------------------------------------------------------------------
# the rules as printed under the claims table

RULES: tuple[str, ...] = (
    "a cell is the mean over its seeds, its standard error √(s²/n + p̄(1−p̄)/m), the binomial term counting "
    "an accuracy p̄'s evaluation set of m examples (0 for a loss); where both cells of a comparison recorded "
    "their per-example outcomes on one evaluation set (every run of the setting declaring its digest), "
    "the two binomial terms give way to the paired one, (s²_d − r_a/n_a − r_b/n_b)/m floored at 0, s²_d the "
    "variance over the examples of the difference of their seed-averaged correctness, r a cell's seed × "
    "example residual mean square (the seeds' disagreement, which s² already counts)",
    f"*inconclusive* unless each side has ≥ {MIN_SEEDS} seeds and no diverged seed at its best cell, and its "
    "best lr is bracketed by a tried lr on each side (a diverged neighbour counts), and the setting states "
    "its floor; the reason is shown",
    "*below floor: not informative* where the best AdamW run does not beat the setting's floor on the "
    "reported split (LM: the bigram cross-entropy; image: a linear model's accuracy; LoRA: the majority "
    "class's accuracy, the untrained model's loss)",
    f"*matches*: two one-sided Welch tests at level {ALPHA:g} reject a difference of ±margin (the "
    f"{100 * (1 - 2 * ALPHA):g}% interval of the difference lies inside ±margin), the margin stated per "
    "setting before its runs",
    f"*beats* / *trails*: not *matches*, and the {100 * (1 - ALPHA):g}% Welch interval of the difference "
    "excludes zero on the better / worse side (loss minimised, accuracy maximised); otherwise *inconclusive*",
    "*more robust*: a region within a stated distance of its own peak wider by at least one grid step, "
    "its width in decades of lr (linear in log10 lr between tried points, a diverged point the worst), "
    "shown beside the paper's grid mean ± std; a region reaching the grid's edge is a lower bound",
    f"*lower seed spread*: a two-sided F-test of the seed variances at level {ALPHA:g}, ≥ {MIN_SEEDS} "
    "seeds a side",
    f"*slower early*: more than {100 * PACE_TOLERANCE:g}% more steps than the baseline to reach its "
    "smoothed loss at 25% of training",
    f"*g-SNR constant*: every traced tensor, whatever its size, stays within {100 * DRIFT_TOLERANCE:g}% of "
    "its first value",
)
