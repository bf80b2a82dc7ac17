"""The paper's claims, checked against the records: one row per claim and setting, with a verdict.

Every verdict follows a fixed rule (:data:`RULES`, printed under the table), so that the summary is
reproducible from the records and cannot be argued into shape afterwards. The statistics and the
performance rules are :mod:`sgdsai_lab.stats`'; this module picks the cells and words the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sgdsai_lab import stats
from sgdsai_lab.analysis import best_rows, grid_stats, metric_of, smooth, summarise

#: each setting's equivalence margin, also the distance that bounds its robustness region, by metric
MARGINS = {"val_accuracy": stats.Margin(0.01), "val_loss": stats.Margin(0.01, relative=True)}
#: the range of the median first g-SNR / √numel read as "≈ √numel"
SQRT_NUMEL = (0.9, 1.2)
#: fraction of AdamW's run at which its smoothed loss is the target of "slower early"
LAG_AT = 0.25


@dataclass(frozen=True)
class Stated:
    """What a setting states before its runs: the equivalence margin, its floor (the bigram
    cross-entropy of an LM setting, a linear model's accuracy of an image one; ``None`` while not
    stated) and, for an accuracy, the evaluation-set size (``None``: its noise is not counted)."""

    margin: stats.Margin
    floor: float | None = None
    eval_size: int | None = None


RULES = (
    "each optimizer's best cell of a setting (task, data, size, steps, preset) is its best seed-0 run, as "
    "the sweep chose it",
    *stats.RULES,
    "margins (and robustness distances): 1 point of accuracy, 1% of the loss; an accuracy whose "
    "evaluation-set size is not stated is shown without the binomial term",
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


def _label(key: tuple) -> str:
    task, data, size, steps, preset = key
    return f"{task} {size} / {data}, {steps} steps (`{preset or '-'}`)"


def _fmt(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return "diverged"
    return f"{100 * value:.2f}%" if metric.endswith("accuracy") else f"{value:.4f}"


def _verdict(held: bool) -> str:
    return "held" if held else "**not held**"


def _open(word: str, reason: str) -> str:
    """The verdict of a row the rules leave open: *inconclusive* or *below floor*, with the reason."""
    return f"{word}: {reason}" if reason else word


def _goal(metric: str) -> stats.Goal:
    return "max" if metric.endswith("accuracy") else "min"


#: SGD-SaI variants that get claim rows, with the label shown beside the setting
MODES = {"sgdsai": "paper mode", "sgdsai-official": "released-code mode"}


def setting_claims(
    key: tuple, runs: list[dict[str, Any]], stated: Stated | None = None
) -> list[tuple[str, str, str, str]]:
    """``(claim, paper, ours, verdict)`` rows for one setting: performance claims for each SGD-SaI
    mode run there, then g-SNR and LoRA claims for the first. ``stated``: what the setting stated
    before its runs (default: the margin of its metric, the floor its records declare, no
    evaluation-set size)."""
    rows = summarise(runs)
    metric = metric_of(runs)
    stated = stated or Stated(MARGINS[metric], recorded_floor(runs, metric))
    best = best_rows(rows, metric)
    table2 = grid_stats(rows, metric)
    arms = {opt: _arm(opt, row, rows, metric, stated) for opt, row in best.items()}
    modes = [m for m in MODES if m in best]
    out: list[tuple[str, str, str, str]] = []
    for mode in modes:
        label = f"{_label(key)}, SGD-SaI {MODES[mode]}" if len(modes) > 1 else _label(key)
        out += _performance_claims(key[0], mode, label, rows, best, arms, table2, metric, stated)
    if modes:
        out += _state_claims(best, modes[0], _label(key)) + _gsnr_claims(best[modes[0]], _label(key))
    return out + _lora_claims(best, _label(key))


def _state_claims(best: dict[str, dict[str, Any]], mode: str, where: str) -> list[tuple[str, str, str, str]]:
    if "adamw" not in best:
        return []
    ours, theirs = best[mode]["state_bytes"], best["adamw"]["state_bytes"]
    ratio = ours / theirs
    return [(f"half of AdamW's optimizer state — {where}", STATE_PAPER,
             f"{100 * ratio:.2f}% ({ours:,} vs {theirs:,} B)", _verdict(abs(ratio - 0.5) <= 0.005))]  # fmt: skip


def recorded_floor(runs: list[dict[str, Any]], metric: str) -> float | None:
    """The bigram floor the task declared in its records for ``metric``'s split (``val_loss``:
    ``bigram_val``), ``None`` where the records declare none (image tasks, older records)."""
    split = metric.split("_")[0]
    floors = {r["floors"].get(f"bigram_{split}") for r in runs if r.get("floors")}
    floors.discard(None)
    if len(floors) > 1:
        raise ValueError(f"the records of one setting declare different {split} floors: {sorted(floors)}")
    return floors.pop() if floors else None


def _lr_grid(rows: list[dict[str, Any]], optimizer: str, metric: str) -> dict[float, float | None]:
    """Each lr's best seed-0 value over weight decay (as the sweep chose), ``None`` where every run
    at that lr diverged."""
    sign = 1 if _goal(metric) == "max" else -1
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


def _arm(
    optimizer: str, best: dict[str, Any], rows: list[dict[str, Any]], metric: str, stated: Stated
) -> stats.Arm:
    """An optimizer's best cell over its seeds, with the bracket of its lr grid."""
    values = [None if r["metrics"]["diverged"] else r["metrics"].get(metric) for r in best["runs"]]
    eval_size = stated.eval_size if metric.endswith("accuracy") else None
    cell = stats.summarise(values, eval_size=eval_size)
    return stats.Arm(optimizer, cell, stats.bracket(_lr_grid(rows, optimizer, metric), _goal(metric)))


def _diff(c: stats.Comparison, metric: str, stated: Stated) -> str:
    """The difference with its intervals, n per side and the margin, in the metric's units."""
    scale, unit, spec = (100, " pt", ".2f") if metric.endswith("accuracy") else (1, "", ".4f")

    def f(x: float) -> str:
        return "—" if not math.isfinite(x) else format(scale * x, "+" + spec)

    lo90, hi90 = c.interval_90
    lo95, hi95 = c.interval_95
    return (
        f"Δ {f(c.difference)}{unit}, 90% [{f(lo90)}, {f(hi90)}], 95% [{f(lo95)}, {f(hi95)}], "
        f"margin ±{format(scale * c.margin, spec)}{unit}, n {c.n_a} vs {c.n_b}"
        + (
            " (evaluation-set noise not counted)"
            if metric.endswith("accuracy") and stated.eval_size is None
            else ""
        )
    )


def _comparison(
    a: stats.Arm, b: stats.Arm, metric: str, stated: Stated, reference: float
) -> stats.Comparison:
    return stats.compare(a, b, stated.margin, _goal(metric), reference=reference, floor=stated.floor)


def _performance_claims(
    task: str,
    mode: str,
    where: str,
    rows: list[dict[str, Any]],
    best: dict[str, dict[str, Any]],
    arms: dict[str, stats.Arm],
    table2: dict[str, dict[str, Any]],
    metric: str,
    stated: Stated,
) -> list[tuple[str, str, str, str]]:
    paper = PAPER.get(task, {})
    sai = arms[mode]
    goal = _goal(metric)
    out: list[tuple[str, str, str, str]] = []
    if "adamw" in arms:
        adamw = arms["adamw"]
        c = _comparison(sai, adamw, metric, stated, adamw.cell.mean)
        held = {stats.MATCHES: True, stats.BEATS: True, stats.TRAILS: False}.get(c.verdict)
        out.append((
            f"matches AdamW at its best — {where}",
            paper.get("peak", "—"),
            f"{_fmt(sai.cell.mean, metric)} vs {_fmt(adamw.cell.mean, metric)}; {_diff(c, metric, stated)}",
            _open(c.verdict, c.reason) if held is None else _verdict(held),
        ))  # fmt: skip
        grids = {opt: _lr_grid(rows, opt, metric) for opt in (mode, "adamw")}
        if all(len(g) > 1 for g in grids.values()):
            worst = {
                opt: (best[opt]["runs"][0].get("chance_accuracy") or 0.0) if goal == "max" else None
                for opt in grids
            }
            r = {opt: stats.robustness(g, stated.margin, goal, worst=worst[opt]) for opt, g in grids.items()}
            step = 1 / min(arms[opt].grid.points_per_decade for opt in grids)
            order = stats.wider(r[mode], r["adamw"], step)
            s, a = table2[mode], table2["adamw"]
            out.append((
                f"more robust over the lr grid — {where}",
                paper.get("robust", "—"),
                f"width within {_fmt(r[mode].distance, metric)} of the peak: {_width(r[mode])} vs "
                f"{_width(r['adamw'])} decades of lr (step {step:.2g}); grid avg "
                f"{_fmt(s['avg'], metric)} ± {_fmt(s['avg_std'], metric)} vs "
                f"{_fmt(a['avg'], metric)} ± {_fmt(a['avg_std'], metric)} ({s['cells']} vs {a['cells']} cells)",
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
    sgdm = next((arms[o] for o in SGDM_NAMES if o in arms), None)
    if sgdm is not None:
        reference = arms["adamw"].cell.mean if "adamw" in arms else sgdm.cell.mean
        c = _comparison(sai, sgdm, metric, stated, reference)
        held = {stats.BEATS: True, stats.MATCHES: False, stats.TRAILS: False}.get(c.verdict)
        out.append((
            f"beats SGD with momentum — {where}",
            paper.get("sgdm", "—"),
            f"{_fmt(sai.cell.mean, metric)} vs {_fmt(sgdm.cell.mean, metric)}; {_diff(c, metric, stated)}",
            _open(c.verdict, c.reason) if held is None else _verdict(held),
        ))  # fmt: skip
    return out


def _width(r: stats.Robustness) -> str:
    """A region's width, "≥" where it reaches the grid's edge (a lower bound)."""
    return ("≥ " if r.open_low or r.open_high else "") + f"{r.width_decades:.2f}"


def _gsnr_claims(sai: dict[str, Any], where: str) -> list[tuple[str, str, str, str]]:
    trace = sai["runs"][0]["gsnr_trace"]
    numel = trace.get("numel", {})
    if not numel or set(trace["tensors"]) - set(numel):
        return []  # a record from before the trace stored element counts
    d = stats.gsnr_drift(trace["tensors"], numel)
    if not d.tensors:
        return []
    small = sum(t.numel < stats.SMALL_NUMEL for t in d.tensors)
    text = f"largest drift of {len(d.tensors)} traced tensors: {100 * d.max_drift:.1f}% ({d.tensors[0].name})"
    if small:
        text += f"; of the {small} under {stats.SMALL_NUMEL:,} elements: {100 * d.max_drift_small:.1f}%"
    return [
        (f"g-SNR nearly constant through training — {where}", GSNR_PAPER, text, _verdict(d.within)),
        (
            f"g-SNR ≈ √numel — {where}",
            GSNR_PAPER,
            f"median first g-SNR / √numel: {d.median_over_sqrt_numel:.3f}",
            _verdict(SQRT_NUMEL[0] <= d.median_over_sqrt_numel <= SQRT_NUMEL[1]),
        ),
    ]


def _lora_claims(best: dict[str, dict[str, Any]], where: str) -> list[tuple[str, str, str, str]]:
    """Whether every LoRA ``A`` trained: its change orthogonal to ``A0`` (weight decay alone leaves
    that at rounding level), smallest over the A matrices, at each optimizer's best run."""
    moved = {
        opt: row["runs"][0]["metrics"]["lora_A_orth_change_min"]
        for opt, row in best.items()
        if row["runs"][0]["metrics"].get("lora_A_orth_change_min") is not None
    }
    if "sgdsai" not in moved:
        return []
    ours, released = moved["sgdsai"], moved.get("sgd-sai-1.0.3")
    text = f"smallest orthogonal change of an A: ours {ours:.2g}" + (
        "" if released is None else f", released package {released:.2g}"
    )
    held = ours > LORA_TRAINED and (released is None or released < LORA_TRAINED)
    return [(f"LoRA A: frozen by the released code, trained by ours — {where}",
             "A never trains with B = 0 under the released code (inferred, §9)", text, _verdict(held))]  # fmt: skip


def claims_markdown(
    groups: dict[tuple, list[dict[str, Any]]], stated: dict[tuple, Stated] | None = None
) -> list[str]:
    """The claims table over every setting (see the module docstring for the rules); ``stated``: what
    each setting stated before its runs, by setting key (default: :class:`Stated` of its metric)."""
    stated = stated or {}
    rows = [row for key, runs in groups.items() for row in setting_claims(key, runs, stated.get(key))]
    if not rows:
        return ["No setting has SGD-SaI runs yet."]
    lines = [
        "| claim — setting | paper | this machine (SGD-SaI vs baseline) | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c} | {p} | {o} | {v} |" for c, p, o, v in rows]
    lines += [
        "",
        "Verdict rules: " + "; ".join(RULES) + ".",
    ]
    return lines
