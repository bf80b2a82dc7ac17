"""Mid-run checkpoints: a run killed at any moment resumes where it stopped and ends with the
record an uninterrupted run writes (timings and dates aside).

A checkpoint holds the model, the optimizer and LR scheduler states, the global RNG states and
everything the training loop has accumulated (`Progress`). Batches are drawn per step from
generators seeded by `(seed, step)`, so the data position is the step number. Checkpoints are
written atomically (a temporary file, then `os.replace`), so a kill during a write leaves the
previous checkpoint intact; they live beside the records, as `<run_id>.ckpt`, and are deleted
once the record is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["Checkpointer", "Progress", "checkpoint_path"]

logger = logging.getLogger(__name__)

#: Seconds between checkpoints of a running run, unless the caller says otherwise.
DEFAULT_EVERY_S = 300.0


@dataclasses.dataclass
class Progress:
    """What the training loop has accumulated before step `step`."""

    step: int = 0
    losses: list[list[Any]] = dataclasses.field(default_factory=list)
    evals: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    trace_steps: list[int] = dataclasses.field(default_factory=list)
    trace_values: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    step_s: list[float] = dataclasses.field(default_factory=list)
    iter_s: list[float] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0  #: training wall-clock spent before this process started
    started_at: str = ""


def checkpoint_path(record: Path) -> Path:
    """Where the checkpoint of the run whose record goes to `record` lives."""
    return record.with_suffix(".ckpt")


class Checkpointer:
    """Saves a run's state every `every_s` seconds to `path` and restores it on the next start.

    `path=None` disables checkpointing (`load` returns a fresh `Progress`, `maybe_save` does
    nothing).
    """

    def __init__(self, path: Path | None, run_id: str, every_s: float = DEFAULT_EVERY_S) -> None:
        if every_s < 0:
            raise ValueError(f"checkpoint interval must be >= 0 seconds, not {every_s}")
        self.path, self.run_id, self.every_s = path, run_id, every_s
        self._last = time.monotonic()

    def load(self, model: torch.nn.Module, opt: Any, sched: Any) -> Progress:
        if self.path is None or not self.path.exists():
            return Progress()
        saved = torch.load(self.path, weights_only=False)
        if saved.get("run_id") != self.run_id:
            raise ValueError(f"{self.path} holds run {saved.get('run_id')!r}, not {self.run_id!r}: remove it")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"]["cpu"])
        if saved["rng"].get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
        progress = Progress(**saved["progress"])
        logger.info("resuming %s at step %d from %s", self.run_id, progress.step, self.path)
        return progress

    def maybe_save(
        self, model: torch.nn.Module, opt: Any, sched: Any, progress: Progress, elapsed_s: float
    ) -> bool:
        """Save if `every_s` seconds have passed since the last save (or the start)."""
        if self.path is None or time.monotonic() - self._last < self.every_s:
            return False
        state = {
            "run_id": self.run_id,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": {
                "cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            "progress": dataclasses.asdict(dataclasses.replace(progress, elapsed_s=elapsed_s)),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".ckpt.tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        self._last = time.monotonic()
        return True

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
