"""``sgdsai demo``: a small GPT-2 trained on the Python standard library with SGD-SaI, AdamW and the
authors' released ``sgd-sai`` package, side by side.

The corpus is the installed standard library's own source (no download), read as bytes, so the
vocabulary is 256 and there is no tokenizer to train; every 10th file is held out. All three runs
see the same initial weights and batches (the lab's ``gpt2`` task, size ``small``).
The released package uses the raw g-SNR (no division by the largest, :math:`M`), so it is run at the
equivalent point ``lr / M, weight_decay * M``, with :math:`M` read from the SGD-SaI run: the two
should then train alike (its unbiased std differs by a factor :math:`\\sqrt{n/(n-1)}`).

Writes one JSON record per run, ``demo.png`` (loss curves, state memory, step time) and
``summary.md`` into ``--out``, and logs the table.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="train a small GPT-2 on the stdlib with SGD-SaI, AdamW and the released sgd-sai package"
    )
    p.add_argument("--steps", type=int, default=150, help="optimizer steps per run (default: 150)")
    p.add_argument("--sgdsai-lr", type=float, default=1.0)
    p.add_argument("--sgdsai-weight-decay", type=float, default=1e-4)
    p.add_argument("--adamw-lr", type=float, default=2e-3)
    p.add_argument("--adamw-weight-decay", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="records, plot and summary (default: demo-out)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sgdsai_lab import records as record_files
    from sgdsai_lab.config import RunConfig
    from sgdsai_lab.run import run as train

    def config(optimizer: str, lr: float, weight_decay: float) -> RunConfig:
        return RunConfig("gpt2", optimizer, lr, weight_decay, args.steps, seed=args.seed, data="stdlib",
                         size="small", preset="demo")  # fmt: skip

    sgdsai = train(config("sgdsai", args.sgdsai_lr, args.sgdsai_weight_decay))
    reference = sgdsai["sgdsai_gsnr_max"]
    plan = [
        ("adamw", args.adamw_lr, args.adamw_weight_decay),
        ("sgd-sai-1.0.3", args.sgdsai_lr / reference, args.sgdsai_weight_decay * reference),
    ]
    records = [sgdsai] + [train(config(*point)) for point in plan]
    for record in records:
        record_files.write(record, args.out / "records")
    table = summary(records, reference)
    (args.out / "summary.md").write_text(table + "\n")
    plot(records, args.out / "demo.png")
    logger.info("\n%s\n\nrecords, demo.png and summary.md in %s", table, args.out)
    return 0


LABELS = {"sgdsai": "SGD-SaI (this package)", "adamw": "AdamW", "sgd-sai-1.0.3": "sgd-sai 1.0.3 (released)"}


def summary(records: list[dict[str, Any]], reference: float) -> str:
    adamw = next(r for r in records if r["config"]["optimizer"] == "adamw")
    lines = [
        "| optimizer | lr | weight decay | train loss | val loss | state | vs AdamW | optimizer step (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        c, m = r["config"], r["metrics"]
        lines.append(
            f"| {LABELS[c['optimizer']]} | {c['lr']:.3g} | {c['weight_decay']:.3g} | {m['final_train_loss']:.3f} "
            f"| {m['val_loss']:.3f} | {r['state_bytes']:,} B | {r['state_bytes'] / adamw['state_bytes']:.1%} "
            f"| {r['median_step_ms']:.2f} ms |"
        )
    lines += [
        "",
        f"Largest first-step g-SNR M = {reference:.1f}; the released package runs at lr / M, wd * M.",
    ]
    return "\n".join(lines)


def plot(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sgdsai_lab.analysis import smooth

    fig, (curves, state, step) = plt.subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [2, 1, 1]})
    names = [LABELS[r["config"]["optimizer"]] for r in records]
    for name, r in zip(names, records):
        points = [(s, v) for s, v, _ in r["loss_curve"] if v is not None]
        curves.plot(
            [s for s, _ in points],
            smooth([v for _, v in points]),
            "--"
            if r["config"]["optimizer"] == "sgd-sai-1.0.3"
            else "-",  # on SGD-SaI's curve: keep both visible
            label=f"{name}: val {r['metrics']['val_loss']:.3f}",
        )
    curves.set(xlabel="step", ylabel="training loss (smoothed)", title="GPT-2 small on stdlib bytes")
    curves.legend()
    state.barh(names, [r["state_bytes"] / 2**20 for r in records], color="tab:gray")
    state.set(xlabel="MiB", title="optimizer state")
    step.barh(names, [r["median_step_ms"] for r in records], color="tab:gray")
    step.set(xlabel="ms (median)", title="optimizer step")
    for ax in (state, step):
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
