"""A run killed with SIGKILL mid-way resumes from its checkpoint and writes the record an
uninterrupted run writes (timings and dates aside)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from sgdsai_lab.config import RunConfig
from sgdsai_lab.resume import Checkpointer
from sgdsai_lab.run import record_path

# Runs a one-run sweep with a checkpoint after every step; with a kill step, it SIGKILLs itself
# right after the first checkpoint at or past that step, as `kill -9` would.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from sgdsai_lab import resume
    from sgdsai_lab.config import RunConfig
    from sgdsai_lab.sweep import run_sweep

    records, optimizer, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    save = resume.Checkpointer.maybe_save

    def save_then_die(self, model, opt, sched, progress, elapsed_s):
        saved = save(self, model, opt, sched, progress, elapsed_s)
        if saved and kill_at and progress.step >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return saved

    resume.Checkpointer.maybe_save = save_then_die
    lr = {"sgdsai": 0.3, "adamw": 1e-3, "muon": 1e-3}[optimizer]
    config = RunConfig("vit", optimizer, lr, 1e-4, 12, data="synthetic", batch_size=8, eval_every=4, gsnr_every=3)
    run_sweep([config], records, "cpu", 0.0)
    """
)
TIMINGS = {
    "wall_clock_s",
    "median_step_ms",
    "median_iter_ms",
    "created_utc",
    "peak_rss_mib",
    "git",
    "machine",
}


def _sweep(records, optimizer: str, kill_at: int) -> int:
    return subprocess.run([sys.executable, "-c", SCRIPT, str(records), optimizer, str(kill_at)],
                          capture_output=True, timeout=300).returncode  # fmt: skip


@pytest.mark.parametrize("optimizer", ["sgdsai"])  # each case costs six interpreter starts
def test_sigkilled_run_resumes_to_the_uninterrupted_record(tmp_path, optimizer: str) -> None:
    lr = {"sgdsai": 0.3, "adamw": 1e-3, "muon": 1e-3}[optimizer]
    config = RunConfig(
        "vit", optimizer, lr, 1e-4, 12, data="synthetic", batch_size=8, eval_every=4, gsnr_every=3
    )
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert _sweep(whole, optimizer, 0) == 0
    assert _sweep(killed, optimizer, 7) == -signal.SIGKILL
    path = record_path(config, killed)
    assert not path.exists() and path.with_suffix(".ckpt").exists()  # killed after step 7's checkpoint
    assert _sweep(killed, optimizer, 0) == 0
    assert not path.with_suffix(".ckpt").exists()  # removed once the record is written
    want = json.loads(record_path(config, whole).read_text())
    got = json.loads(path.read_text())
    assert {k: v for k, v in got.items() if k not in TIMINGS} == {
        k: v for k, v in want.items() if k not in TIMINGS
    }
    assert len(got["loss_curve"]) == 12


def test_a_checkpoint_of_another_run_is_refused(tmp_path) -> None:
    import torch

    path = tmp_path / "x.ckpt"
    torch.save({"run_id": "other"}, path)
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="holds run 'other', not 'mine'"):
        Checkpointer(path, "mine").load(model, None, None)


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint interval must be >= 0 seconds"):
        Checkpointer(None, "run", -1.0)
