"""The decisive study's answer, "Should I switch from AdamW?": one paragraph per workload, and the
three questions it was run to answer, written from the records alone.

A workload (`WORKLOADS`) is found by the presets of its records; its paragraph covers every
record of the settings those presets ran (`sgdsai_lab.analysis.setting`), so older runs of the
same problem count too. Each comparison is `sgdsai_lab.claims.Evaluated.compare`, with its
verdict word from `sgdsai_lab.stats.compare`. Where the records are not there, the paragraph
says "not run yet"; where the rules leave a comparison open, "inconclusive" with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgdsai_lab import stats
from sgdsai_lab.analysis import describe, presets, smooth
from sgdsai_lab.claims import Evaluated, diff_text, evaluate, floor_model, label, lr_grid
from sgdsai_lab.config import task_revision

#: the prefix of the study's preset names
STUDY = "study"
#: what the other optimizers are compared with, and who gets a line of their own against AdamW
BASELINE = "adamw"
AGAINST_ADAMW = ("sgdsai", "sgdsai-numel", "sgdsai-blocks-m", "sgdsai-m0", "sgdsai-vec1", "nesterov", "muon")

#: GPT-2's token embedding, tied to its output head
GPT2_EMBEDDING = "transformer.wte.weight"


@dataclass(frozen=True)
class Workload:
    """A workload of the study: the records of the presets named in ``presets``, or (where that is
    empty) of any study preset (named ``study…``) of one of ``tasks`` on ``data`` (any data if empty);
    ``embedding`` names its embedding tensor where the embedding-M question is asked of it."""

    name: str
    presets: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    data: str = ""
    embedding: str = ""

    def matches(self, record: dict[str, Any]) -> bool:
        c = record["config"]
        preset = c.get("preset") or record.get("preset") or ""
        if self.presets:
            return preset in self.presets
        return preset.startswith(STUDY) and c["task"] in self.tasks and self.data in ("", c.get("data"))


WORKLOADS = (
    Workload("Char-level LM, 16 × 128 tokens per step", presets=("study-a16",), embedding=GPT2_EMBEDDING),
    Workload("Char-level LM, 128 × 128 tokens per step", presets=("study-a128",)),
    Workload("BPE LM (GPT-2 on English BPE-8k)", tasks=("gpt2",), data="english", embedding=GPT2_EMBEDDING),
    Workload("ViT on Fashion-MNIST", tasks=("vit",)),
    Workload("LoRA", tasks=("lora", "lora-cls")),
)
#: the two batch sizes of the batch-size question (the first two workloads: equal tokens)
BATCH = WORKLOADS[:2]
#: where the embedding-M ablation is answered: at char level a block sets M, so the ablation is the
#: identity there and its preset does not run it; BPE's 8k-token embedding sets it (`m_setter` says)
EMBEDDING_M = (WORKLOADS[0], WORKLOADS[2])
#: the workload whose preset runs the momentum-0 ablation, and the vectors-at-scale-1 one
STATELESS = VECTORS = WORKLOADS[0]


def _fmt(value: float, metric: str, digits: int = 4) -> str:
    if not math.isfinite(value):
        return "diverged"
    return f"{100 * value:.2f}%" if metric.endswith("accuracy") else f"{value:.{digits}f}"


def settings_of(
    workload: Workload, groups: dict[tuple, list[dict[str, Any]]]
) -> list[tuple[tuple, list[dict[str, Any]]]]:
    """The settings (key and every record of it) in which ``workload``'s presets ran: those at their
    task's current revision first (a superseded one is still shown, after them), then in a fixed order."""
    found = [(key, runs) for key, runs in groups.items() if any(workload.matches(r) for r in runs)]
    return sorted(found, key=lambda kr: (not _current(kr[0]), str(kr[0])))


def _current(key: tuple) -> bool:
    d = describe(key)
    return d["task_revision"] == task_revision(d["task"])


def cases(
    workload: Workload, groups: dict[tuple, list[dict[str, Any]]], *, current: bool = False
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each setting of ``workload`` with its name: the workload's, or with two or more settings
    (the two LoRA tasks), the workload's and the setting's label (`sgdsai_lab.claims.label`);
    ``current``: only those at their task's current revision, where there are any."""
    found = settings_of(workload, groups)
    if current and any(_current(key) for key, _ in found):
        found = [(key, runs) for key, runs in found if _current(key)]
    if len(found) == 1:
        return [(workload.name, found[0][1])]
    return [(f"{workload.name} ({label(key, runs)})", runs) for key, runs in found]


def _arm_text(ev: Evaluated, opt: str, *, brief: bool = False) -> str:
    arm, row = ev.arms[opt], ev.best[opt]
    if brief:
        return f"`{opt}` {_fmt(arm.cell.mean, ev.metric, 3)} (lr {row['lr']:g}, n {arm.cell.n})"
    return f"{opt} {_fmt(arm.cell.mean, ev.metric)} (n {arm.cell.n}, lr {row['lr']:g})"


def brief_diff(c: stats.Comparison, ev: Evaluated) -> str:
    """The difference and its 95% interval, in the metric's units (points for an accuracy), the
    margin where the tests left the verdict open, and whether an accuracy's evaluation-set noise
    went uncounted."""
    scale, unit, spec = (100, " pt", "+.2f") if ev.metric.endswith("accuracy") else (1, "", "+.3f")
    if not math.isfinite(c.difference):
        return "Δ —"
    lo, hi = c.interval_95
    finite = math.isfinite(lo) and math.isfinite(hi)
    interval = f"[{scale * lo:{spec}}, {scale * hi:{spec}}]" if finite else "[—, —]"
    uncounted = ev.metric.endswith("accuracy") and ev.stated.eval_size is None
    note = " (evaluation-set noise not counted)" if uncounted else ""
    margin = f", margin ±{scale * c.margin:{spec[1:]}}{unit}" if c.reason == stats.OPEN_INTERVAL else ""
    return f"Δ {scale * c.difference:{spec}}{unit} {interval}{margin}{note}"


def _runs(runs: list[dict[str, Any]]) -> str:
    return f"{len(runs)} run{'' if len(runs) == 1 else 's'}"


def _rss(row: dict[str, Any]) -> str:
    rss = row["peak_rss_mib"]
    return f", peak RSS {rss:.0f} MiB" if math.isfinite(rss) else ""


def verdict_text(c: stats.Comparison) -> str:
    """The verdict word, in bold, with its reason where the rules left it open."""
    return f"**{c.verdict}**" + (f" ({c.reason})" if c.reason else "")


def comparison_line(ev: Evaluated, a: str, b: str, *, brief: bool = False) -> str:
    """``a`` against ``b`` in one setting: both values, the difference with its intervals, the
    verdict; ``brief``: the 95% interval only (the 90% one and the margin are in the report)."""
    c = ev.compare(a, b)
    if brief:
        arms = f"{_arm_text(ev, a, brief=True)} vs {_arm_text(ev, b, brief=True)}"
        return f"{arms}: {brief_diff(c, ev)} — {verdict_text(c)}"
    return (
        f"{_arm_text(ev, a)} vs {_arm_text(ev, b)}: {diff_text(c, ev.metric, ev.stated)} — {verdict_text(c)}"
    )


def time_to_target(ev: Evaluated) -> str:
    """Steps each optimizer's best seed-0 run needs to reach the final smoothed training loss of
    AdamW's, and the seconds that is at the run's median iteration time (robust to the pauses of a
    shared machine, unlike its wall-clock; comparable between runs that ran alike, one thread each)."""
    if BASELINE not in ev.best:
        return ""
    curves = {}
    for opt, row in ev.best.items():
        run = row["runs"][0]
        losses = [(s + 1, v) for s, v, _ in run["loss_curve"] if v is not None]
        curves[opt] = (list(zip([s for s, _ in losses], smooth([v for _, v in losses]), strict=True)), run)
    target = curves[BASELINE][0][-1][1]
    parts = []
    for opt, (curve, run) in sorted(curves.items()):
        reached = stats.steps_to_target(curve, target, "min")
        seconds = run["median_iter_ms"] * reached / 1e3 if reached else None
        when = "never" if reached is None else f"step {reached} (≈ {seconds:.0f} s)"
        parts.append(f"{opt} {when}")
    return f"Time to AdamW's final smoothed training loss ({target:.4f}), seed 0: " + "; ".join(parts) + "."


def _floor_text(ev: Evaluated, model: str | None) -> str:
    floor = ev.stated.floor
    split = ev.metric.split("_")[0]
    if floor is None:
        return "no floor stated in the records"
    return f"floor ({model}, {split}) {_fmt(floor, ev.metric)}"


def brief_paragraph(workload: Workload, key: tuple, runs: list[dict[str, Any]]) -> str:
    """The README's paragraph for one setting of a workload: AdamW's best cell, every other
    optimizer's against it (difference, 95% interval, verdict), time to AdamW's loss, the cost."""
    ev = evaluate(runs)
    hours = sum(r["wall_clock_s"] for r in runs) / 3600
    head = (
        f"**{workload.name}** — {label(key, runs)}; {ev.metric.replace('_', ' ')}, "
        f"{_floor_text(ev, floor_model(runs))}; {_runs(runs)}, {hours:.1f} h."
    )
    if BASELINE not in ev.arms:
        ran = "; ".join(_arm_text(ev, opt, brief=True) for opt in sorted(ev.arms))
        return f"{head} AdamW not run yet: no verdict against it. Best cells so far: {ran}."
    compared = {opt: ev.compare(opt, BASELINE) for opt in AGAINST_ADAMW if opt in ev.arms}
    against = [
        f"{_arm_text(ev, opt, brief=True)}: {brief_diff(c, ev)} — {verdict_text(c)}"
        for opt, c in compared.items()
    ]
    verdicts = f"Against it (Δ, 95% interval): {'; '.join(against)}." if against else ""
    return " ".join(part for part in (head, f"{_arm_text(ev, BASELINE, brief=True)}.", verdicts,
                                      time_to_target(ev)) if part)  # fmt: skip


def paragraph(workload: Workload, key: tuple, runs: list[dict[str, Any]]) -> str:
    """One workload's paragraph for one of its settings: the setting, the verdicts against AdamW,
    then every best cell with its memory, time to AdamW's loss and what the runs cost."""
    ev = evaluate(runs)
    floor = _floor_text(ev, floor_model(runs))
    head = (
        f"**{workload.name}** — {label(key, runs)}; {ev.metric.replace('_', ' ')}, {floor}"
        + (f"; {ev.caveats}" if ev.caveats else "")
        + "."
    )
    ran = "; ".join(_arm_text(ev, opt) + _rss(ev.best[opt]) for opt in sorted(ev.best))
    hours = sum(r["wall_clock_s"] for r in runs) / 3600
    cost = [f"Best cells so far: {ran}.", f"{_runs(runs)} so far, {hours:.1f} h of wall-clock in all."]
    if BASELINE not in ev.arms:
        verdicts = f"AdamW not run yet: no verdict against it ({_runs(runs)} so far)."
        return " ".join([head, verdicts, *cost])
    against = [comparison_line(ev, opt, BASELINE) for opt in AGAINST_ADAMW if opt in ev.arms]
    verdicts = f"Against AdamW: {'; '.join(against)}." if against else "No SGD-SaI run yet."
    return " ".join(line for line in (head, verdicts, cost[0], time_to_target(ev), cost[1]) if line)


def _pair(
    groups: dict[tuple, list[dict[str, Any]]],
    workload: Workload,
    a: str,
    b: str,
    *,
    brief: bool = False,
    detail: Callable[[list[dict[str, Any]]], str] = lambda runs: "",
) -> str:
    """``a`` against ``b`` in each setting of ``workload`` (with ``detail`` of its runs where that
    says something), or "not run yet" naming who has no records."""
    found = cases(workload, groups)
    if not found:
        return f"{workload.name}: not run yet"
    parts = []
    for name, runs in found:
        ev = evaluate(runs)
        missing = [o for o in (a, b) if o not in ev.arms]
        if missing:
            parts.append(f"{name}: not run yet ({', '.join(missing)} has no records)")
        else:
            more = detail(runs)
            parts.append(f"{name}: {comparison_line(ev, a, b, brief=brief)}" + (f"; {more}" if more else ""))
    return "; ".join(parts)


def _scales(runs: list[dict[str, Any]], optimizer: str) -> dict[str, float] | None:
    """The first-step scales of ``optimizer``'s lowest-seed record that has them."""
    mine = sorted(
        (r for r in runs if r["config"]["optimizer"] == optimizer), key=lambda r: r["config"]["seed"]
    )
    return next((r["sgdsai_scales"] for r in mine if r.get("sgdsai_scales")), None)


def m_setter(runs: list[dict[str, Any]], embedding: str) -> tuple[str, bool]:
    """Which tensor set M (the one whose scale is 1) in a setting's `sgdsai` records (a seed-0 one
    where there is one), the scale of the ``embedding`` tensor and the largest of the others', and
    whether a block set M, alone or tied with the embedding (then M over the blocks is the same M,
    and `sgdsai-blocks-m` is `sgdsai` step for step)."""
    scales = _scales(runs, "sgdsai")
    if not scales or embedding not in scales:
        return f"no `sgdsai` record with the scale of `{embedding}`", False
    blocks = {name: v for name, v in scales.items() if name != embedding}
    block = max(blocks, key=blocks.__getitem__, default=None)
    block_sets_m = block is not None and blocks[block] >= scales[embedding]
    text = (
        f"M is set by `{block if block_sets_m else embedding}`; the embedding (`{embedding}`) gets "
        f"{scales[embedding]:.3g} of the rate and the largest other tensor "
        + (f"{blocks[block]:.3g}" if block is not None else "none")
    )
    return text, block_sets_m


def _embedding_m(
    groups: dict[tuple, list[dict[str, Any]]], workload: Workload, *, brief: bool = False
) -> str:
    found = settings_of(workload, groups)
    if not found:
        return f"{workload.name}: not run yet"
    setter, block_sets_m = m_setter(found[0][1], workload.embedding)
    if block_sets_m and "sgdsai-blocks-m" not in evaluate(found[0][1]).arms:
        return f"{workload.name}: {setter}, so `sgdsai-blocks-m` is `sgdsai` here and was not run"
    comparison = _pair(groups, workload, "sgdsai-blocks-m", "sgdsai", brief=brief).removeprefix(
        f"{workload.name}: "
    )
    return f"{workload.name}: {setter}; {comparison}"


def scale_gap(runs: list[dict[str, Any]]) -> str:
    """How far the scales `sgdsai-numel` fixes (√numel over its maximum) lie from those `sgdsai`
    measures in one setting: the largest and the median relative difference over the tensors, and
    the tensor of the largest (a near-zero gap makes the two optimizers one, step for step)."""
    measured, numel = _scales(runs, "sgdsai"), _scales(runs, "sgdsai-numel")
    if not measured or not numel or set(measured) != set(numel):
        return ""
    gaps = {name: abs(numel[name] / measured[name] - 1) for name in measured if measured[name] > 0}
    if not gaps:
        return ""
    worst = max(gaps, key=gaps.__getitem__)
    median = sorted(gaps.values())[len(gaps) // 2]
    return (
        f"the scales differ by {_percent(median)} (median over the tensors), at most "
        f"{_percent(gaps[worst])} (`{worst}`)"
    )


def _percent(fraction: float) -> str:
    """``0.055`` as ``5.5%``, ``1.5`` as ``150%``, ``1.1e-5`` as ``0.0011%``: two significant digits."""
    value = 100 * fraction
    return f"{value:.0f}%" if value >= 10 else f"{float(f'{value:.2g}'):g}%"


def answers(groups: dict[tuple, list[dict[str, Any]]], *, brief: bool = False) -> list[str]:
    """The study's answers: plain SGD, √numel, the embedding M, momentum 0, the vectors' scales and
    the batch size."""
    sgd = "; ".join(_pair(groups, w, "sgdsai", "nesterov", brief=brief) for w in WORKLOADS)
    numel = "; ".join(
        _pair(groups, w, "sgdsai-numel", "sgdsai", brief=brief, detail=scale_gap) for w in WORKLOADS
    )
    blocks = "; ".join(_embedding_m(groups, w, brief=brief) for w in EMBEDDING_M)
    stateless = _pair(groups, STATELESS, "sgdsai-m0", "sgdsai", brief=brief)  # ran at one batch size
    vectors = "; ".join(
        f"against `{b}`: {_pair(groups, VECTORS, 'sgdsai-vec1', b, brief=brief)}"
        for b in ("sgdsai", "nesterov")
    )
    return [
        f"- **Does the scaling add anything over plain SGD?** `sgdsai` against `nesterov` (SGD with "
        f"Nesterov momentum, tuned alike; at small batch it is reported to match Adam on transformers): {sgd}.",
        f"- **Does measuring the g-SNR matter (√numel)?** `sgdsai-numel` against `sgdsai`: {numel}.",
        f"- **Does the embedding set M (embedding-M)?** The first-step scales of `sgdsai`, and "
        f"`sgdsai-blocks-m` against `sgdsai` where the embedding sets M: {blocks}.",
        f"- **Does the momentum buffer earn its memory?** `sgdsai-m0` (no state beyond the scales) "
        f"against `sgdsai`: {stateless}.",
        f"- **Do the vectors' small scales cost it the gap to plain SGD?** Paper mode gives biases and "
        f"norm gains a g-SNR near √(their size), a few percent of the largest matrix's; `sgdsai-vec1` "
        f"trains them at scale 1 instead (the rest is `sgdsai`); {vectors}.",
        f"- **Does SGD-SaI's standing change with batch size** (16 × 128 vs 128 × 128 tokens per step, "
        f"equal tokens)? {batch_answer(groups)}",
    ]


def batch_answer(groups: dict[tuple, list[dict[str, Any]]]) -> str:
    """SGD-SaI's verdict against AdamW and Nesterov at each batch size, whether the verdict changed,
    and how far the gap moved between the two (`stats.gap_change`, with its 95% interval)."""
    comparisons: dict[str, list[stats.Comparison]] = {BASELINE: [], "nesterov": []}
    parts, goal = [], "min"
    for w in BATCH:
        found = settings_of(w, groups)
        ev = evaluate(found[0][1]) if found else None
        for other, done in comparisons.items():
            if ev is None or "sgdsai" not in ev.arms or other not in ev.arms:
                parts.append(f"{w.name} against {other}: not run yet")
                continue
            c, goal = ev.compare("sgdsai", other), ev.goal
            done.append(c)
            parts.append(f"{w.name} against {other}: {verdict_text(c)}")
    settled = []
    for other, cs in comparisons.items():
        words = {c.verdict for c in cs}
        if len(cs) < len(BATCH) or words & {stats.INCONCLUSIVE, stats.BELOW_FLOOR}:
            continue
        d, (lo, hi) = stats.gap_change(*cs)
        worse = (lambda x: x > 0) if goal == "min" else (lambda x: x < 0)
        moved = (
            "it moves against SGD-SaI" if worse(lo) and worse(hi)
            else "it moves in SGD-SaI's favour" if not worse(lo) and not worse(hi) and lo * hi > 0
            else "no clear move"
        )  # fmt: skip
        settled.append(
            f"against {other} the verdict {'does not change' if len(words) == 1 else 'changes'}; "
            f"the gap moves by {d:+.4f}, 95% [{lo:+.4f}, {hi:+.4f}]: {moved}"
        )
    verdict = (
        "; ".join(settled) if settled else "not answerable yet (no conclusive verdict at both batch sizes)"
    )
    return "; ".join(parts) + f". So far: {verdict}."


def batch_plot(groups: dict[tuple, list[dict[str, Any]]], out: Path) -> str | None:
    """Final test (else validation) loss of each optimizer's seed-0 runs against lr at both batch
    sizes (solid: the first, dashed: the second); the file name, or ``None`` without records."""
    found = [(w, settings_of(w, groups)) for w in BATCH]
    if not all(f for _, f in found):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    colours: dict[str, Any] = {}
    metric = ""
    for style, (_, settings) in zip(("-", "--"), found, strict=True):
        _, runs = settings[0]
        ev = evaluate(runs)
        metric = ev.metric
        for opt in sorted({r["optimizer"] for r in ev.rows}):
            pts = sorted((lr, v) for lr, v in lr_grid(ev.rows, opt, ev.metric).items() if v is not None)
            if pts:
                label = None if opt in colours else opt  # one legend entry per optimizer
                (line,) = ax.plot(*zip(*pts), style, marker="o", color=colours.get(opt), label=label)
                colours[opt] = line.get_color()
    ax.set(xscale="log", xlabel="peak learning rate", ylabel=f"final {metric.replace('_', ' ')} (seed 0)",
           title=f"solid: {BATCH[0].name}\ndashed: {BATCH[1].name}")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    name = "study-batch-size.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def against_adamw_rows(
    groups: dict[tuple, list[dict[str, Any]]],
) -> list[tuple[str, stats.Comparison, float, str]]:
    """The rows of `against_adamw_plot`: its tick label, the comparison with AdamW, AdamW's mean
    and the goal, for each optimizer in each setting that has both."""
    rows: list[tuple[str, stats.Comparison, float, str]] = []
    for w in WORKLOADS:
        found = settings_of(w, groups)
        for _, runs in found:
            ev = evaluate(runs)
            if BASELINE not in ev.arms:
                continue
            base = abs(ev.arms[BASELINE].cell.mean)
            # a workload of two settings (the LoRA tasks) names each by its presets, short enough for a tick
            name = w.name if len(found) == 1 else f"{w.name} ({', '.join(presets(runs))})"
            for opt in AGAINST_ADAMW:
                if opt in ev.arms:
                    c = ev.compare(opt, BASELINE)
                    rows.append((f"{name}: {opt}", c, base, ev.goal))
    return rows


def against_adamw_plot(groups: dict[tuple, list[dict[str, Any]]], out: Path) -> str | None:
    """Each optimizer's best cell minus AdamW's in every workload that has both, with its 95%
    interval (a dot alone where a side has one seed) and the equivalence margin shaded, relative to
    AdamW's mean so that losses and accuracies share an axis; the file name, or ``None`` when no
    workload has a comparison yet."""
    rows = against_adamw_rows(groups)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {stats.MATCHES: "tab:blue", stats.BEATS: "tab:green", stats.TRAILS: "tab:red"}
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    for y, (_, c, base, direction) in enumerate(reversed(rows)):
        sign = 100 / base * (1 if direction == "max" else -1)  # % of AdamW, better to the right
        lo, hi = sorted(sign * v for v in c.interval_95)
        colour = colours.get(c.verdict, "grey")
        if math.isfinite(lo) and math.isfinite(hi):
            ax.plot([lo, hi], [y, y], color=colour, lw=2)
        ax.plot([sign * c.difference], [y], "o", color=colour)
        ax.fill_between(
            [-100 * c.margin / base, 100 * c.margin / base], y - 0.4, y + 0.4, color="0.9", zorder=0
        )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(rows)), [name for name, *_ in reversed(rows)], fontsize=7)
    ax.set_xlabel("best cell minus AdamW's, in % of AdamW's mean (right of 0: better)", fontsize=8)
    ax.set_title("against tuned AdamW, 95% intervals; red trails, green beats, blue matches, grey open; "
                 "shaded: the margin", fontsize=7)  # fmt: skip
    name = "study-vs-adamw.png"
    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return name


def lr_table(groups: dict[tuple, list[dict[str, Any]]]) -> list[str]:
    """Where each optimizer's best lr fell in each workload, against its class default: the lrs its
    seed-0 runs tried, the one chosen on validation and whether a tried lr lies on each side."""
    from sgdsai_lab.zoo import entry

    lines = [
        "| workload | optimizer | default lr | lrs tried (seed 0) | best lr | best / default | bracketed |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in WORKLOADS:
        for name, runs in cases(w, groups):  # a workload of two settings names each
            ev = evaluate(runs)
            for opt in sorted(ev.best):
                grid = lr_grid(ev.rows, opt, ev.selection)
                tried = ", ".join(
                    f"{lr:g}" + (" (diverged)" if v is None else "") for lr, v in sorted(grid.items())
                )
                best, default = ev.best[opt]["lr"], entry(opt).lr
                bracket = ev.arms[opt].grid
                lines.append(
                    f"| {name} | `{opt}` | {default:g} | {tried} | {best:g} | {best / default:.3g} "
                    f"| {'yes' if bracket.bracketed else 'no: ' + bracket.reason} |"
                )
    return lines if len(lines) > 2 else []


def headline(groups: dict[tuple, list[dict[str, Any]]]) -> str:
    """SGD-SaI's verdict against tuned AdamW in every workload, in one line, losses first; then
    against tuned Nesterov SGD, which tells whether the scaling, not SGD, earned a result."""
    return (
        f"**So far, `sgdsai` against tuned AdamW:** {_tally(groups, BASELINE)}. **Against tuned Nesterov "
        f"SGD** (plain SGD, tuned alike): {_tally(groups, 'nesterov')}."
    )


def _tally(groups: dict[tuple, list[dict[str, Any]]], other: str) -> str:
    words: dict[str, list[str]] = {}
    for w in WORKLOADS:
        for name, runs in cases(w, groups, current=True) or [(w.name, [])]:
            ev = evaluate(runs) if runs else None
            verdict = "not run yet"
            if ev is not None and {"sgdsai", other} <= set(ev.arms):
                verdict = ev.compare("sgdsai", other).verdict
            words.setdefault(verdict, []).append(name)
    order = [stats.TRAILS, stats.BELOW_FLOOR, stats.INCONCLUSIVE, stats.MATCHES, stats.BEATS, "not run yet"]
    return ", ".join(f"**{v}** in {len(words[v])} ({'; '.join(words[v])})" for v in order if v in words)


def study_markdown(
    groups: dict[tuple, list[dict[str, Any]]], out: Path | None, *, brief: bool = False, report: str = ""
) -> list[str]:
    """The study's block: a paragraph per workload, the answers, and (with ``out``) the plots
    written there and linked; ``brief`` (the README's): the short paragraphs, 95% intervals only,
    pointing to the full ones in ``report`` (a path or URL)."""
    lines = [
        "Generated from the records by `sgdsai report`: each optimizer's best cell chosen on the "
        "validation metric by seed 0, reported on the test split; verdict words from the rules under "
        "the claims table."
        + (
            " Δ is the first best cell named minus the second (in the paragraphs: minus AdamW's; for a "
            "loss, positive is worse), with its 95% Welch interval; n seeds per cell; the 90% intervals, "
            f"margins, memory and per-cell detail are in [the report]({report})."
            if brief
            else ""
        ),
        "",
        headline(groups),
        "",
    ]
    for w in WORKLOADS:
        found = settings_of(w, groups)
        if not found:
            lines += [
                f"**{w.name}** — not run yet (no records of its study preset; older presets' runs of it "
                "are in the claims table).",
                "",
            ]
        for key, runs in found:
            lines += [brief_paragraph(w, key, runs) if brief else paragraph(w, key, runs), ""]
    lines += answers(groups, brief=brief)
    if out is not None:
        for plot, alt in (
            (against_adamw_plot(groups, out), "against AdamW"),
            (batch_plot(groups, out), "batch size"),
        ):
            if plot:
                lines += ["", f"![{alt}]({plot})"]
    return lines
