"""Benchmark records: one JSON file per run, with the config and the machine it ran on."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

#: Where records live, relative to the repository root (the current directory by default).
RECORDS = Path("experiments") / "records"


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(*packages: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("torch", "sgdsai", *packages):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average_1_5_15min": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def write(
    name: str,
    config: dict[str, Any],
    results: Any,
    *,
    packages: tuple[str, ...] = (),
    notes: str = "",
    root: Path = RECORDS,
) -> Path:
    """Write ``<root>/<YYYY-MM-DD>_<name>[_<n>]/record.json`` (a new folder, never overwriting one)
    and return that directory."""
    today = datetime.datetime.now(datetime.timezone.utc)
    folder = root / f"{today:%Y-%m-%d}_{name}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{today:%Y-%m-%d}_{name}_{n}"
    folder.mkdir(parents=True)
    record = {
        "name": name,
        "time_utc": today.isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "versions": versions(*packages),
        "machine": machine(),
        "config": config,
        "notes": notes,
        "results": results,
    }
    (folder / "record.json").write_text(json.dumps(record, indent=1) + "\n")
    return folder


def load(path: Path) -> dict[str, Any]:
    """Read a record from its ``record.json`` or its folder."""
    path = Path(path)
    return json.loads((path / "record.json" if path.is_dir() else path).read_text())
