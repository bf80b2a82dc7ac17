r"""``sgdsai train``: one run of one optimizer on one task, written as one JSON record.

The learning rate follows linear warmup then cosine decay to ``min_lr_ratio`` of the peak:

.. math::
    \eta_t = \eta \cdot \begin{cases} (t + 1) / W & t < W \\
    r + (1 - r)\,\tfrac12\bigl(1 + \cos(\pi (t - W) / (T - W))\bigr) & t \ge W \end{cases}

with :math:`W` warmup steps, :math:`T` total steps and :math:`r` = ``min_lr_ratio``. Every
optimizer sees the same model initialisation and the same batches for a given seed. Every
``gsnr_every`` steps the raw g-SNR (`sgdsai.tensor_gsnr`) of the task's traced tensors is
recorded, to check the paper's claim that it stays nearly constant during training.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from sgdsai_lab import records
from sgdsai_lab.config import RunConfig, add_arguments, config_from_args, task_revision
from sgdsai_lab.resume import DEFAULT_EVERY_S, Checkpointer, checkpoint_path

logger = logging.getLogger(__name__)

DEFAULT_RECORDS = Path("experiments/records")


def record_path(config: RunConfig, records: Path) -> Path:
    return records / config.resolved().task / f"{config.run_id}.json"


def lr_factor(step: int, steps: int, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def run(
    config: RunConfig,
    device: str = "cpu",
    checkpoint: Path | None = None,
    checkpoint_every_s: float = DEFAULT_EVERY_S,
) -> dict[str, Any]:
    """Train once and return the record (nothing else is written but the checkpoint).

    With `checkpoint`, the run's state is saved there every `checkpoint_every_s` seconds and a
    run started again resumes from it (`sgdsai_lab.resume`); the caller removes it once the record
    is written.
    """
    from tqdm import tqdm

    from sgdsai import SGDSaI, tensor_gsnr
    from sgdsai_lab.tasks import build_task
    from sgdsai_lab.zoo import OPTIMIZERS, build_optimizer, state_bytes

    config = config.resolved()
    task = build_task(config.task, config.data, config.size, config.seed, config.batch_size)
    model = task.model.to(device).train()
    params = dict(model.named_parameters())
    opt = build_optimizer(config.optimizer, model, config.lr, config.weight_decay, task.info)
    warmup = max(1, round(config.warmup_ratio * config.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: lr_factor(t, config.steps, warmup, config.min_lr_ratio)
    )
    checkpointer = Checkpointer(checkpoint, config.run_id, checkpoint_every_s)
    progress = checkpointer.load(model, opt, sched)
    progress.started_at = progress.started_at or records.now_utc()
    losses = progress.losses  # [step, loss or None when diverged, lr]
    evals = progress.evals
    trace: dict[str, Any] = {
        "steps": progress.trace_steps,
        "tensors": {name: progress.trace_values.setdefault(name, []) for name in task.traced},
        "numel": {name: params[name].numel() for name in task.traced},
    }
    step_s, iter_s = progress.step_s, progress.iter_s
    diverged = False
    start = time.perf_counter() - progress.elapsed_s
    bar = tqdm(
        range(progress.step, config.steps),
        initial=progress.step,
        total=config.steps,
        desc=f"{config.task}/{config.optimizer} lr={config.lr:g}",
        leave=False,
    )
    for step in bar:
        tick = time.perf_counter()
        loss = task.loss(model, _to(task.batch(step), device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.item()
        if not math.isfinite(value):
            diverged = True
            losses.append([step, None, sched.get_last_lr()[0]])
            break
        if config.gsnr_every and step % config.gsnr_every == 0:
            trace["steps"].append(step)
            for name in task.traced:
                grad = params[name].grad
                g = tensor_gsnr(grad) if grad is not None else math.nan
                trace["tensors"][name].append(g if math.isfinite(g) else None)
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        losses.append([step, value, sched.get_last_lr()[0]])
        tock = time.perf_counter()
        opt.step()
        step_s.append(time.perf_counter() - tock)
        sched.step()
        iter_s.append(time.perf_counter() - tick)
        if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
            evals.append({"step": step + 1, **task.evaluate(model)})
        bar.set_postfix(loss=f"{value:.3f}")
        if step + 1 < config.steps:
            progress.step = step + 1
            checkpointer.maybe_save(model, opt, sched, progress, time.perf_counter() - start)
    wall = time.perf_counter() - start
    final_eval = {} if diverged else task.evaluate(model)
    evals.append({"step": len(losses), **final_eval})
    tail = [v for _, v, _ in losses[-max(1, len(losses) // 10) :] if v is not None]
    metrics = {
        "diverged": diverged,
        "final_train_loss": None if diverged else statistics.fmean(tail),
        **{k: _finite(v) for k, v in final_eval.items()},
    }
    # the SGD-SaI part of a composite (sgdsai-vec1's matrices) measured its scales too
    sai = next((o for o in getattr(opt, "optimizers", [opt]) if isinstance(o, SGDSaI)), None)
    scales = sai.gsnr(model) if sai is not None else None
    return {
        "schema": records.SCHEMA,
        "kind": "run",
        "id": config.run_id,
        "group": config.task,
        "created_utc": progress.started_at,
        **records.environment(tuple(filter(None, [OPTIMIZERS[config.optimizer].package])), device),
        "config": dataclasses.asdict(config),
        "notes": "",
        "task_revision": task_revision(config.task),
        "preset": config.preset,
        "task_description": task.description,
        "optimizer_description": OPTIMIZERS[config.optimizer].description,
        "wall_clock_s": wall,
        "median_step_ms": 1e3 * statistics.median(step_s) if step_s else None,
        "median_iter_ms": 1e3 * statistics.median(iter_s) if iter_s else None,
        "param_count": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad),
        "state_bytes": state_bytes(opt),
        "metrics": metrics,
        "chance_accuracy": task.info.get("chance_accuracy"),
        "floors": task.info.get("floors"),
        "eval_sizes": task.info.get("eval_sizes"),
        "eval_digests": task.info.get("eval_digests"),
        "eval_correct": None
        if diverged or task.outcomes is None
        else {split: records.pack_flags(flags.tolist()) for split, flags in task.outcomes().items()},
        "tokens_per_step": task.info.get("tokens_per_step"),
        "peak_rss_mib": _peak_rss_mib(),
        "loss_curve": losses,
        "eval_curve": [{k: _finite(v) for k, v in e.items()} for e in evals],
        "gsnr_trace": trace,
        "sgdsai_scales": scales,
        "sgdsai_gsnr_max": sai.param_groups[0]["gsnr_max"] if sai is not None else None,
    }


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory so far (Linux and macOS), in MiB."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if platform.system() == "Linux" else peak / 2**20


def _to(batch: Any, device: str) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device)
    return type(batch)(_to(b, device) for b in batch)


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def add_runner_arguments(p: argparse.ArgumentParser) -> None:
    """Where and how ``train`` and ``sweep`` run (what a run is: `sgdsai_lab.config.add_arguments`)."""
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument(
        "--records", type=Path, default=DEFAULT_RECORDS, help=f"records folder (default: {DEFAULT_RECORDS})"
    )
    p.add_argument(
        "--checkpoint-every",
        type=float,
        default=DEFAULT_EVERY_S,
        help="seconds between mid-run checkpoints (beside the record, removed when it is written); "
        f"a run started again resumes from its checkpoint (default: {DEFAULT_EVERY_S:g})",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train one task with one optimizer; write a JSON record")
    add_arguments(p, "train")
    add_runner_arguments(p)
    p.add_argument("--force", action="store_true", help="rerun even if the record exists")
    p.set_defaults(run=_main)


def _main(args: argparse.Namespace) -> int:
    config = config_from_args(args, preset="cli")
    path = record_path(config, args.records)
    if path.exists() and not args.force:
        logger.info("record exists, not rerun: %s", path)
        return 0
    checkpoint = checkpoint_path(path)
    record = run(config, args.device, checkpoint, args.checkpoint_every)
    records.write(record, args.records)
    checkpoint.unlink(missing_ok=True)
    m = record["metrics"]
    logger.info("%s: %s -> %s", config.run_id, {k: v for k, v in m.items()}, path)
    return 0
