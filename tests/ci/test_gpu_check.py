"""`make gpu-check` (.ci/gpu_check.py) on a machine without CUDA: it says so, writes nothing, exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    records = ROOT / "experiments" / "records"
    before = sorted(records.iterdir()) if records.is_dir() else []
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides any GPU, so this holds on CUDA machines too
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "gpu_check.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "no CUDA device here" in done.stdout + done.stderr
    assert (sorted(records.iterdir()) if records.is_dir() else []) == before
