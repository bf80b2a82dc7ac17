"""The paper's claims, checked against the records: one row per performance claim and setting, and
one properties table for the mechanical facts (state size, g-SNR, LoRA A), each stated once.

Every verdict follows a fixed rule (`RULES`, printed under the table), so that the summary is
reproducible from the records and cannot be argued into shape afterwards. The statistics and the
performance rules are `sgdsai_lab.stats`'; this module picks the cells (`evaluate`) and
words the rows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from sgdsai_lab import stats
from sgdsai_lab.analysis import (
    best_rows,
    describe,
    grid_stats,
    metric_of,
    presets,
    report_metric,
    reported_runs,
    smooth,
    summarise,
)
from sgdsai_lab.config import task_revision
from sgdsai_lab.metrics import goal
from sgdsai_lab.records import unpack_flags
from sgdsai_lab.tasks import task_spec

#: each setting's equivalence margin, also the distance that bounds its robustness region, by metric
MARGINS = {
    **dict.fromkeys(("val_accuracy", "test_accuracy"), stats.Margin(0.01)),
    **dict.fromkeys(("val_loss", "test_loss"), stats.Margin(0.01, relative=True)),
}
#: the range of the median first g-SNR / √numel read as "≈ √numel"
SQRT_NUMEL = (0.9, 1.2)
#: fraction of AdamW's run at which its smoothed loss is the target of "slower early"
LAG_AT = 0.25


@dataclass(frozen=True)
class Stated:
    """What a setting states before its runs: the equivalence margin, its floor (the bigram
    cross-entropy of an LM setting, a linear model's accuracy of an image one, the majority class's
    accuracy or the untrained model's loss of a LoRA one; ``None`` while not stated) and, for an
    accuracy, the evaluation-set size (``None``: its noise is not counted)."""

    margin: stats.Margin
    floor: float | None = None
    eval_size: int | None = None


RULES = (
    "a setting is every config field that changes the problem (task, data, size, steps, batch size, "
    "schedule, clipping) and the task's revision, not the preset's name: each optimizer's best cell "
    "is chosen over every record of its setting, by its seed-0 run on the validation metric (as the "
    "sweep chose it); one run per seed counts (the newest where presets repeated a cell)",
    "the verdict is reported on the test split where every run of the setting has one, else on the "
    "validation metric with the caveat *no held-out test split*; the reported mean leaves seed 0 (the "
    "seed that chose the cell) out where 3 other seeds exist, else says that seed 0 chose it",
    *stats.RULES,
    "margins (and robustness distances): 1 point of accuracy, 1% of the loss; an accuracy's "
    "evaluation-set size m comes from its records (`eval_sizes`); one whose records do not state it "
    "(older ones) is shown without the binomial term, and says so",
    "floors come from the records, of the model the task declares (LM: `floors.bigram_test`, `bigram_val`; "
    "image: `floors.linear_test`, `linear_val`; LoRA classifier: `majority_test`, `majority_val`; LoRA LM: "
    "`untrained_test`, `untrained_val`): a setting whose records state none is *inconclusive*",
    f"*g-SNR ≈ √numel*: the median first g-SNR / √numel of the tensors of at least {stats.SMALL_NUMEL:,} "
    f"elements lies in [{SQRT_NUMEL[0]:g}, {SQRT_NUMEL[1]:g}]",
    "*half of AdamW's state*: state bytes 50 ± 0.5% of AdamW's",
    "*LoRA A*: under SGD-SaI every lora_A changed orthogonally to its start by more than 1e-5 (relative), "
    "under the released package by less (weight decay alone only shrinks A)",
)

#: relative change of a LoRA A orthogonal to its start above which it counts as trained
LORA_TRAINED = 1e-5

#: what the paper reports for the closest experiment, by task (paper.md section 7)
PAPER = {
    "vit": {
        "peak": "ViT-S/16, ImageNet: SGD-SaI 72.92 vs AdamW 73.04",
        "sgdm": "SGD-SaI 72.92 vs SGDM (Nesterov) 63.80",
        "robust": "grid avg SGD-SaI 57.55 ± 18.46 vs AdamW 37.21 ± 35.43",
        "seeds": "seed std SGD-SaI 0.07 vs AdamW 0.31",
        "lag": "slower early; eval accuracy lags until ~epoch 70 of 90",
    },
    "gpt2": {
        "peak": "GPT-2 small, OpenWebText: val loss 3.09 vs AdamW 3.12",
        "lag": "slower at the start (Fig. 8)",
    },
    "cnn": {
        "peak": "ResNet18, CIFAR-10: 95.36 vs AdamW 94.74",
        "sgdm": "95.36 vs SGD(M) 95.26",
        "robust": "higher mean, lower spread over the grid (Fig. 5a, 10)",
    },
    "lora": {"peak": "GPT-2 medium LoRA, E2E: BLEU 69.9 vs AdamW 68.9"},
    "lora-cls": {"peak": "(no classification LoRA in the paper)"},
}
GSNR_PAPER = "flat over 25k steps (Fig. 4); ≈ √numel (e.g. qkv ≈ 660)"
STATE_PAPER = "50.00% of AdamW (GPT-2 1.5B: 5.93 vs 11.86 GB)"
SGDM_NAMES = ("nesterov", "sgdm")


def label(key: tuple, runs: list[dict[str, Any]]) -> str:
    """A setting in words: task, size, data, steps and batch size, the task's revision where it is
    not the current one, and the presets that ran it."""
    d = describe(key)
    batch = f", batch {d['batch_size']}" if d.get("batch_size") else ""
    clip = f", clip {d['grad_clip']:g}" if d.get("grad_clip") else ""
    now = task_revision(d["task"])
    old = f", task revision {d['task_revision']} (now {now})" if d["task_revision"] != now else ""
    names = ", ".join(f"`{p}`" for p in presets(runs))
    return f"{d['task']} {d['size']} / {d['data']}, {d['steps']} steps{batch}{clip}{old} ({names})"


def _fmt(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return "diverged"
    return f"{100 * value:.2f}%" if metric.endswith("accuracy") else f"{value:.4f}"


def _verdict(held: bool) -> str:
    return "held" if held else "**not held**"


def _open(word: str, reason: str) -> str:
    """The verdict of a row the rules leave open: *inconclusive* or *below floor*, with the reason."""
    return f"{word}: {reason}" if reason else word


#: SGD-SaI variants that get claim rows, with the label shown beside the setting
MODES = {"sgdsai": "paper mode", "sgdsai-official": "released-code mode"}


@dataclass(frozen=True)
class Evaluated:
    """One setting as the claims compare it: the metric its best cells were chosen on
    (``selection``) and the one they are reported on (``metric``), what it stated, its cells, each
    optimizer's best cell, its arm (the reported seeds, the bracket of its selection grid) and
    whether seed 0, which chose the cell, is among the reported seeds."""

    selection: str
    metric: str
    stated: Stated
    rows: list[dict[str, Any]]
    best: dict[str, dict[str, Any]]
    arms: dict[str, stats.Arm]
    chooser_reported: dict[str, bool]
    #: an accuracy's per-example outcomes of each arm's reported seeds (seeds × examples), where
    #: every one of them recorded its outcomes on the reported split
    outcomes: dict[str, list[list[bool]]] = dataclasses.field(default_factory=dict)

    @property
    def goal(self) -> stats.Goal:
        return goal(self.metric)

    @property
    def caveats(self) -> str:
        """What a reader must know about the reported numbers, in words ("" when nothing)."""
        notes = []
        if self.metric == self.selection:
            notes.append("no held-out test split: reported on the validation metric that chose the cell")
        chosen_by_0 = sorted(o for o, included in self.chooser_reported.items() if included)
        if chosen_by_0:
            notes.append(f"seed 0 chose the cell and is in the mean ({', '.join(chosen_by_0)})")
        return "; ".join(notes)

    def compare(self, a: str, b: str) -> stats.Comparison:
        """``a``'s best cell against ``b``'s, the floor judged on AdamW's (else ``b``'s) mean."""
        reference = self.arms["adamw"].cell.mean if "adamw" in self.arms else self.arms[b].cell.mean
        paired = a in self.outcomes and b in self.outcomes
        return stats.compare(
            self.arms[a], self.arms[b], self.stated.margin, self.goal, reference=reference,
            floor=self.stated.floor,
            eval_var=stats.paired_eval_var(self.outcomes[a], self.outcomes[b]) if paired else None,
        )  # fmt: skip


def evaluate(runs: list[dict[str, Any]], stated: Stated | None = None) -> Evaluated:
    """One setting's best cells: chosen on the selection metric by seed 0, reported on the report
    metric over `reported_runs`. ``stated``: what the setting stated before
    its runs (default: the margin of its report metric, the floor and evaluation-set size its records
    declare for that split)."""
    rows = summarise(runs)
    selection = metric_of(runs)
    metric = report_metric(runs, selection)
    stated = stated or Stated(MARGINS[metric], recorded_floor(runs, metric), recorded_eval_size(runs, metric))
    best = best_rows(rows, selection)
    arms, chooser = {}, {}
    eval_size = stated.eval_size if metric.endswith("accuracy") else None
    same_set = eval_size is not None and recorded_eval_digest(runs, metric) is not None
    outcomes = {}
    for opt, row in best.items():
        reported, chooser[opt] = reported_runs(row)
        values = [None if r["metrics"]["diverged"] else r["metrics"].get(metric) for r in reported]
        grid = stats.bracket(lr_grid(rows, opt, selection), goal(selection))
        arms[opt] = stats.Arm(opt, stats.summarise(values, eval_size=eval_size), grid)
        found = recorded_outcomes(reported, metric, eval_size) if same_set else None
        if found is not None:
            outcomes[opt] = found
    return Evaluated(selection, metric, stated, rows, best, arms, chooser, outcomes)


def setting_claims(
    key: tuple, runs: list[dict[str, Any]], stated: Stated | None = None
) -> list[tuple[str, str, str, str]]:
    """``(claim, paper, ours, verdict)`` performance rows for one setting, for each SGD-SaI mode run
    there (see `evaluate` for ``stated``)."""
    ev = evaluate(runs, stated)
    table2 = grid_stats(ev.rows, ev.selection)
    modes = [m for m in MODES if m in ev.best]
    out: list[tuple[str, str, str, str]] = []
    for mode in modes:
        where = f"{label(key, runs)}, SGD-SaI {MODES[mode]}" if len(modes) > 1 else label(key, runs)
        out += _performance_claims(key[0], mode, where, ev, table2)
    return out


def floor_model(runs: list[dict[str, Any]]) -> str | None:
    """The model whose floor a setting's verdicts are judged against: its task's declared floor
    (`floor_model`: ``bigram`` for gpt2, ``linear`` for vit and cnn, ``majority`` for lora-cls,
    ``untrained`` for lora), ``None`` where the task declares none."""
    tasks = {r["config"]["task"] for r in runs}
    if len(tasks) > 1:
        raise ValueError(f"the records of one setting are of different tasks: {sorted(tasks)}")
    return task_spec(tasks.pop()).floor_model if tasks else None


#: floors of one setting closer than this (relative) are one floor: a float32 loss floor evaluated
#: again with another thread count, library version or CPU differs in its last digits (LoRA's
#: untrained test loss: 1e-8 between thread counts, 2.1e-6 between two machines of this kind)
FLOOR_RTOL = 1e-5


def recorded_floor(runs: list[dict[str, Any]], metric: str, model: str | None = None) -> float | None:
    """The floor the task declared in its records for ``metric``'s split: their ``floors`` value
    ``{model}_{split}`` (``model`` defaults to `floor_model`: ``test_loss`` of gpt2 reads
    ``bigram_test``, ``val_accuracy`` of vit ``linear_val``; ``model="unigram"``: ``unigram_val``, ...),
    ``None`` where the records declare none (older records, tasks without a computed floor)."""
    model = model or floor_model(runs)
    if model is None:
        return None
    split = metric.split("_")[0]
    floors = sorted({r["floors"].get(f"{model}_{split}") for r in runs if r.get("floors")} - {None})
    if not floors:
        return None
    if not math.isclose(floors[0], floors[-1], rel_tol=FLOOR_RTOL):
        raise ValueError(f"the records of one setting declare different {split} floors: {floors}")
    return floors[0]


def recorded_eval_size(runs: list[dict[str, Any]], metric: str) -> int | None:
    """The number of examples ``metric``'s split was measured on, as classification tasks declare it
    in their records (``eval_sizes``); ``None`` for a loss, or where some record declares none (older
    records: their accuracies' evaluation-set noise is then not counted, and the report says so)."""
    size = _declared_once(runs, metric, "eval_sizes", "set sizes")
    return None if size is None else int(size)


def recorded_eval_digest(runs: list[dict[str, Any]], metric: str) -> str | None:
    """The `sgdsai_lab.tasks.tensors_digest` of the examples ``metric``'s split scored, which every
    run of the setting declares (``eval_digests``): per-example outcomes are paired across cells only
    where it exists. ``None`` for a loss, or where some record declares none (older records); a
    ``ValueError`` where the records declare different sets (the task's data changed without a new
    task revision)."""
    digest = _declared_once(
        runs, metric, "eval_digests", "set digests (a task whose data changes needs a new revision)"
    )
    return None if digest is None else str(digest)


def _declared_once(runs: list[dict[str, Any]], metric: str, field: str, what: str) -> Any:
    """The one value every run declares in ``record[field][split]`` for an accuracy ``metric``'s
    split; ``None`` for a loss or where some run declares none; a ``ValueError`` naming ``what``
    where two runs declare different ones (checked first: an older record does not hide it)."""
    if not metric.endswith("accuracy"):
        return None
    split = metric.split("_")[0]
    declared = [(r.get(field) or {}).get(split) for r in runs]
    values = sorted({v for v in declared if v is not None})
    if len(values) > 1:
        raise ValueError(f"the records of one setting declare different {split} {what}: {values}")
    return None if None in declared or not values else values[0]


def recorded_outcomes(
    runs: list[dict[str, Any]], metric: str, eval_size: int | None
) -> list[list[bool]] | None:
    """Each run's per-example outcomes on ``metric``'s split (``eval_correct``, `records.pack_flags`
    of ``eval_size`` flags), ``None`` unless every run recorded them (older records, a diverged seed)
    on a set of two or more examples. A ``ValueError`` names a record whose outcomes do not unpack
    or do not count its recorded accuracy."""
    split = metric.split("_")[0]
    packed = [(r.get("eval_correct") or {}).get(split) for r in runs]
    if eval_size is None or eval_size < 2 or not packed or None in packed:
        return None
    outcomes = []
    for run, text in zip(runs, packed, strict=True):
        try:
            flags = unpack_flags(str(text), eval_size)
        except (TypeError, ValueError) as error:
            raise ValueError(f"record {run['id']}: eval_correct.{split}: {error}") from None
        if abs(sum(flags) / eval_size - run["metrics"][metric]) > 0.5 / eval_size:
            raise ValueError(
                f"record {run['id']}: eval_correct.{split} counts {sum(flags)}/{eval_size} correct, "
                f"not its {metric} {run['metrics'][metric]:g}"
            )
        outcomes.append(flags)
    return outcomes


def lr_grid(rows: list[dict[str, Any]], optimizer: str, metric: str) -> dict[float, float | None]:
    """Each lr's best seed-0 value over weight decay (as the sweep chose), ``None`` where every run
    at that lr diverged."""
    sign = 1 if goal(metric) == "max" else -1
    grid: dict[float, float | None] = {}
    for row in rows:
        if row["optimizer"] != optimizer:
            continue
        first = next((r for r in row["runs"] if r["config"]["seed"] == 0), row["runs"][0])
        value = None if first["metrics"]["diverged"] else first["metrics"].get(metric)
        current = grid.get(row["lr"])
        if current is None or (value is not None and sign * value > sign * current):
            grid[row["lr"]] = value
    return grid


def diff_text(c: stats.Comparison, metric: str, stated: Stated) -> str:
    """The difference with its intervals, n per side and the margin, in the metric's units."""
    scale, unit, spec = (100, " pt", ".2f") if metric.endswith("accuracy") else (1, "", ".4f")

    def f(x: float) -> str:
        return "—" if not math.isfinite(x) else format(scale * x, "+" + spec)

    lo90, hi90 = c.interval_90
    lo95, hi95 = c.interval_95
    return (
        f"Δ {f(c.difference)}{unit}, 90% [{f(lo90)}, {f(hi90)}], 95% [{f(lo95)}, {f(hi95)}], "
        f"margin ±{format(scale * c.margin, spec)}{unit}, n {c.n_a} vs {c.n_b}"
        + _eval_noise(c, metric, stated)
    )


def _eval_noise(c: stats.Comparison, metric: str, stated: Stated) -> str:
    """How an accuracy's evaluation-set noise entered ``c``, in words ("" for a loss)."""
    if not metric.endswith("accuracy"):
        return ""
    if stated.eval_size is None:
        return " (evaluation-set noise not counted)"
    if c.paired:
        return f" (evaluation-set noise paired over the {stated.eval_size:,} examples)"
    return f" (evaluation-set noise binomial over {stated.eval_size:,} examples, unpaired)"


def _metric_words(ev: Evaluated) -> str:
    words = ev.metric.replace("_", " ")
    return f"{words}; {ev.caveats}" if ev.caveats else words


def _comparison_row(
    claim: str,
    paper: str,
    sai: Any,
    other: Any,
    other_name: str,
    c: stats.Comparison,
    held: bool | None,
    metric: str,
    stated: Stated,
) -> tuple[str, str, str, str]:
    """One row comparing SGD-SaI's cell with another optimizer's: values, difference, verdict."""
    return (
        claim,
        paper,
        f"{_fmt(sai.cell.mean, metric)} vs {_fmt(other.cell.mean, metric)} ({other_name}); "
        f"{diff_text(c, metric, stated)}",
        _open(c.verdict, c.reason) if held is None else _verdict(held),
    )  # fmt: skip


def _performance_claims(
    task: str, mode: str, where: str, ev: Evaluated, table2: dict[str, dict[str, Any]]
) -> list[tuple[str, str, str, str]]:
    paper = PAPER.get(task, {})
    arms, best, metric, stated = ev.arms, ev.best, ev.metric, ev.stated
    sai = arms[mode]
    direction = goal(ev.selection)
    out: list[tuple[str, str, str, str]] = []
    if "adamw" in arms:
        adamw = arms["adamw"]
        c = ev.compare(mode, "adamw")
        held = {stats.MATCHES: True, stats.BEATS: True, stats.TRAILS: False}.get(c.verdict)
        out.append(_comparison_row(f"matches AdamW at its best — {where}", paper.get("peak", "—"),
                                   sai, adamw, _metric_words(ev), c, held, metric, stated))  # fmt: skip
        grids = {opt: lr_grid(ev.rows, opt, ev.selection) for opt in (mode, "adamw")}
        if all(len(g) > 1 for g in grids.values()):
            worst = {
                opt: (best[opt]["runs"][0].get("chance_accuracy") or 0.0) if direction == "max" else None
                for opt in grids
            }
            distance = MARGINS[ev.selection]
            r = {opt: stats.robustness(g, distance, direction, worst=worst[opt]) for opt, g in grids.items()}
            step = 1 / min(arms[opt].grid.points_per_decade for opt in grids)
            order = stats.wider(r[mode], r["adamw"], step)
            s, a = table2[mode], table2["adamw"]
            sel = ev.selection
            out.append((
                f"more robust over the lr grid — {where}",
                paper.get("robust", "—"),
                f"width within {_fmt(r[mode].distance, sel)} of the peak {sel.replace('_', ' ')}: "
                f"{_width(r[mode])} vs {_width(r['adamw'])} decades of lr (step {step:.2g}); grid avg "
                f"{_fmt(s['avg'], sel)} ± {_fmt(s['avg_std'], sel)} vs "
                f"{_fmt(a['avg'], sel)} ± {_fmt(a['avg_std'], sel)} ({s['cells']} vs {a['cells']} cells)",
                _open(order, "a region reaches its grid's edge") if order == "inconclusive" else _verdict(order == "wider"),
            ))  # fmt: skip
        if sai.cell.n > 1 and adamw.cell.n > 1:
            sp = stats.spread(sai.cell, adamw.cell)
            out.append((
                f"lower seed spread at the best point — {where}",
                paper.get("seeds", "—"),
                f"std {_fmt(sai.cell.std, metric)} vs {_fmt(adamw.cell.std, metric)} "
                f"({sp.n_a} vs {sp.n_b} seeds; F-test p = {sp.p:.2g})",
                _open(sp.verdict, "the F-test does not separate the spreads")
                if sp.verdict == "inconclusive"
                else _verdict(sp.verdict == "lower"),
            ))  # fmt: skip
        ref = smooth([v for _, v, _ in best["adamw"]["runs"][0]["loss_curve"] if v is not None])
        oth = smooth([v for _, v, _ in best[mode]["runs"][0]["loss_curve"] if v is not None])
        at = max(0, min(len(ref) - 1, round(LAG_AT * len(best["adamw"]["runs"][0]["loss_curve"])) - 1))
        p = stats.pace(list(enumerate(oth, 1)), list(enumerate(ref, 1)), ref[at], "min")
        out.append((
            f"slower early than AdamW — {where}",
            paper.get("lag", "slower early convergence"),
            f"steps to AdamW's step-{at + 1} smoothed loss: "
            + ("never" if p.steps_a is None else str(p.steps_a))
            + f" vs {p.steps_b} (tolerance {100 * p.tolerance:g}%)",
            _open(p.verdict, "AdamW never reaches its own target") if p.verdict == "inconclusive"
            else _verdict(p.verdict == "slower"),
        ))  # fmt: skip
    sgdm = next((o for o in SGDM_NAMES if o in arms), None)
    if sgdm is not None:
        c = ev.compare(mode, sgdm)
        held = {stats.BEATS: True, stats.MATCHES: False, stats.TRAILS: False}.get(c.verdict)
        out.append(_comparison_row(f"beats SGD with momentum — {where}", paper.get("sgdm", "—"),
                                   sai, arms[sgdm], sgdm, c, held, metric, stated))  # fmt: skip
    return out


def _width(r: stats.Robustness) -> str:
    """A region's width, "≥" where it reaches the grid's edge (a lower bound)."""
    return ("≥ " if r.open_low or r.open_high else "") + f"{r.width_decades:.2f}"


# --- the properties table: mechanical facts, each stated once over every setting ------------------


def _sai(best: dict[str, dict[str, Any]]) -> str | None:
    return next((m for m in MODES if m in best), None)


def properties(
    groups: dict[tuple, list[dict[str, Any]]],
) -> list[tuple[str, str, str, str]]:
    """``(property, paper, measured, verdict)``: one row per mechanical fact over every setting where
    it can be read (each setting's best SGD-SaI run: paper mode where it ran, else released-code mode)."""
    ratios: list[tuple[float, str]] = []
    drifts: list[tuple[stats.Drift, str]] = []
    lora: list[tuple[float, float | None, str]] = []
    for key, runs in groups.items():
        best = best_rows(summarise(runs), metric_of(runs))
        mode, where = _sai(best), label(key, runs)
        if mode is None:
            continue
        if "adamw" in best:
            ratios.append((best[mode]["state_bytes"] / best["adamw"]["state_bytes"], where))
        trace = best[mode]["runs"][0]["gsnr_trace"]
        numel = trace.get("numel", {})
        if numel and not set(trace["tensors"]) - set(numel):  # older traces lack element counts
            d = stats.gsnr_drift(trace["tensors"], numel)
            if d.tensors:
                drifts.append((d, where))
        moved = {o: r["runs"][0]["metrics"].get("lora_A_orth_change_min") for o, r in best.items()}
        if moved.get("sgdsai") is not None:
            lora.append((moved["sgdsai"], moved.get("sgd-sai-1.0.3"), where))
    out = []
    if ratios:
        low, high = min(ratios), max(ratios)
        out.append((
            "half of AdamW's optimizer state", STATE_PAPER,
            f"{100 * low[0]:.2f}% to {100 * high[0]:.2f}% of AdamW's over {len(ratios)} settings",
            _verdict(all(abs(r - 0.5) <= 0.005 for r, _ in ratios)),
        ))  # fmt: skip
    if drifts:
        worst, where = max(drifts, key=lambda dw: dw[0].max_drift)
        small = [(d.max_drift_small, w) for d, w in drifts if math.isfinite(d.max_drift_small)]
        text = (
            f"largest drift over {len(drifts)} settings, every traced tensor: {100 * worst.max_drift:.1f}% "
            f"(`{worst.tensors[0].name}`, {where})"
        )
        if small:
            s_worst = max(small)
            text += f"; tensors under {stats.SMALL_NUMEL:,} elements: up to {100 * s_worst[0]:.1f}%"
        out.append((
            f"g-SNR nearly constant through training (within {100 * stats.DRIFT_TOLERANCE:g}% of its first value)",
            GSNR_PAPER, text, _verdict(all(d.within for d, _ in drifts)),
        ))  # fmt: skip
        medians = [d.median_over_sqrt_numel for d, _ in drifts if math.isfinite(d.median_over_sqrt_numel)]
        if medians:
            out.append((
                "g-SNR ≈ √numel", GSNR_PAPER,
                f"median first g-SNR / √numel per setting: {min(medians):.3f} to {max(medians):.3f} "
                f"({len(medians)} settings)",
                _verdict(all(SQRT_NUMEL[0] <= m <= SQRT_NUMEL[1] for m in medians)),
            ))  # fmt: skip
    if lora:
        parts = [
            f"{where}: ours {ours:.2g}" + ("" if released is None else f", released {released:.2g}")
            for ours, released, where in lora
        ]
        held = all(o > LORA_TRAINED and (r is None or r < LORA_TRAINED) for o, r, _ in lora)
        out.append((
            "LoRA A: frozen by the released code, trained by ours",
            "A never trains with B = 0 under the released code (inferred, §9)",
            "smallest orthogonal change of an A — " + "; ".join(parts), _verdict(held),
        ))  # fmt: skip
    return out


def _table(header: str, rows: list[tuple[str, str, str, str]]) -> list[str]:
    return [header, "|---|---|---|---|", *(f"| {c} | {p} | {o} | {v} |" for c, p, o, v in rows)]


def tally(rows: list[tuple[str, str, str, str]]) -> dict[str, int]:
    """How many rows read each verdict word (``held``, ``not held``, ``inconclusive``, ``below floor``)."""
    counts = {"held": 0, "not held": 0, "inconclusive": 0, "below floor": 0}
    for *_, verdict in rows:
        word = verdict.strip("*").split(":")[0]
        counts[word if word in counts else "inconclusive"] += 1
    return counts


def claims_markdown(
    groups: dict[tuple, list[dict[str, Any]]], stated: dict[tuple, Stated] | None = None
) -> list[str]:
    """The claims table over every setting, its tally, then the properties table (see the module
    docstring for the rules); ``stated``: what each setting stated before its runs, by setting key
    (default: `Stated` of its report metric)."""
    stated = stated or {}
    rows = [row for key, runs in groups.items() for row in setting_claims(key, runs, stated.get(key))]
    if not rows:
        return ["No setting has SGD-SaI runs yet."]
    counts = tally(rows)
    lines = [
        *_table("| claim — setting | paper | this machine (SGD-SaI vs baseline) | verdict |", rows),
        "",
        f"{len(rows)} performance rows: " + ", ".join(f"{n} {word}" for word, n in counts.items()) + ".",
    ]
    props = properties(groups)
    if props:
        lines += ["", "Properties (mechanical facts, over every setting at once):", ""]
        lines += _table("| property | paper | this machine | verdict |", props)
    lines += ["", "Verdict rules: " + "; ".join(RULES) + "."]
    return lines
