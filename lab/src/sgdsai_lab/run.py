r"""``sgdsai train``: one run of one optimizer on one task, written as one JSON record.

The learning rate follows linear warmup then cosine decay to ``min_lr_ratio`` of the peak:

.. math::
    \eta_t = \eta \cdot \begin{cases} (t + 1) / W & t < W \\
    r + (1 - r)\,\tfrac12\bigl(1 + \cos(\pi (t - W) / (T - W))\bigr) & t \ge W \end{cases}

with :math:`W` warmup steps, :math:`T` total steps and :math:`r` = ``min_lr_ratio``. Every
optimizer sees the same model initialisation and the same batches for a given seed. Every
``gsnr_every`` steps the raw g-SNR (:func:`sgdsai.tensor_gsnr`) of the task's traced tensors is
recorded, to check the paper's claim that it stays nearly constant during training.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from sgdsai_lab import records
from sgdsai_lab.resume import DEFAULT_EVERY_S, Checkpointer, checkpoint_path

logger = logging.getLogger(__name__)

DEFAULT_RECORDS = Path("experiments/records")
DEFAULT_DATA = {
    "gpt2": "stdlib",
    "vit": "digits",
    "lora": "docstrings",
    "lora-cls": "fortunes",
    "cnn": "fashion-mnist",
}
#: Bumped whenever a task's data or model definition changes, so older records get other run ids
#: and a sweep does not take them for current ones. 2: stdlib split by file, not by position;
#: gpt2 3: fixed validation and test windows (held-out halves), whatever the batch size.
TASK_REVISIONS = {"gpt2": 3}
DEFAULT_TASK_REVISION = 2


def task_revision(task: str) -> int:
    return TASK_REVISIONS.get(task, DEFAULT_TASK_REVISION)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    task: str
    optimizer: str
    lr: float
    weight_decay: float
    steps: int
    seed: int = 0
    data: str = ""  #: empty: the task's embedded default
    size: str = "tiny"
    batch_size: int | None = None
    warmup_ratio: float = 0.1
    min_lr_ratio: float = 0.1
    grad_clip: float | None = None
    eval_every: int = 0  #: 0: evaluate at the end only
    gsnr_every: int = 10
    preset: str = ""  #: the named preset (or "cli") that produced the run

    def resolved(self) -> RunConfig:
        return dataclasses.replace(self, data=self.data or DEFAULT_DATA[self.task])

    @property
    def run_id(self) -> str:
        """Readable prefix plus a hash of every field: equal ids mean equal runs."""
        return self.run_id_at(task_revision(self.task))

    def run_id_at(self, revision: int) -> str:
        """:attr:`run_id` under task revision ``revision`` (for records of an older revision)."""
        c = self.resolved()
        key = json.dumps({**dataclasses.asdict(c), "task_revision": revision}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        return f"{c.task}-{c.data}-{c.size}-{c.optimizer}-lr{c.lr:g}-wd{c.weight_decay:g}-s{c.seed}-{digest}"


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
    scales = opt.gsnr(model) if isinstance(opt, SGDSaI) else None
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
        "tokens_per_step": task.info.get("tokens_per_step"),
        "peak_rss_mib": _peak_rss_mib(),
        "loss_curve": losses,
        "eval_curve": [{k: _finite(v) for k, v in e.items()} for e in evals],
        "gsnr_trace": trace,
        "sgdsai_scales": scales,
        "sgdsai_gsnr_max": opt.param_groups[0]["gsnr_max"] if isinstance(opt, SGDSaI) else None,
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


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``sweep``."""
    p.add_argument("task", choices=sorted(DEFAULT_DATA))
    p.add_argument(
        "--data",
        default="",
        help="dataset, default first (gpt2: stdlib|synthetic|english|python-docs|english+python-docs; "
        "vit: digits|fashion-mnist|synthetic; lora: docstrings|synthetic; lora-cls: fortunes|synthetic; "
        "cnn: fashion-mnist|digits|synthetic)",
    )
    p.add_argument(
        "--size",
        default="tiny",
        choices=["tiny", "mini", "small", "base"],
        help="model size (gpt2: mini is 2x64 for BPE sweeps; lora tasks: tiny|small|base = rank 8|16|32)",
    )
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=None)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--gsnr-every", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--records", type=Path, default=DEFAULT_RECORDS, help="records folder")
    p.add_argument(
        "--checkpoint-every",
        type=float,
        default=DEFAULT_EVERY_S,
        help="seconds between mid-run checkpoints (beside the record, removed when it is written); "
        "a run started again resumes from its checkpoint",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    from sgdsai_lab.zoo import OPTIMIZERS

    p = subparsers.add_parser("train", help="train one task with one optimizer; write a JSON record")
    add_run_arguments(p)
    p.add_argument("--optimizer", required=True, choices=sorted(OPTIMIZERS))
    p.add_argument("--lr", type=float, default=None, help="peak lr (default: the optimizer's)")
    p.add_argument("--weight-decay", type=float, default=None, help="default: the optimizer's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rerun even if the record exists")
    p.set_defaults(run=_main)


def config_from_args(args: argparse.Namespace, **overrides: Any) -> RunConfig:
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values.update(overrides)
    values.setdefault("preset", "cli")
    return RunConfig(**values)


def _main(args: argparse.Namespace) -> int:
    from sgdsai_lab.zoo import OPTIMIZERS

    spec = OPTIMIZERS[args.optimizer]
    lr = spec.lr if args.lr is None else args.lr
    wd = spec.weight_decay if args.weight_decay is None else args.weight_decay
    config = config_from_args(args, lr=lr, weight_decay=wd)
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
