"""Download, verify and cache: the ground floor every data source stands on.

Everything fetched lands in ``$SGDSAI_DATA`` (default ``~/.cache/sgdsai``), copied there only once
each file matches its recorded sha256, so a cache folder is never half-updated. Values that are
slow to compute from the fetched files (a pretrained model's loss on a task's data) are kept there
too, by `cached_json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class DatasetMissing(FileNotFoundError):
    """A dataset that must be fetched first; the message names the command that fetches it."""


def cache_dir() -> Path:
    return Path(os.environ.get("SGDSAI_DATA", Path.home() / ".cache" / "sgdsai"))


def cached_json(kind: str, key: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """``compute()`` (a JSON value), computed once per ``key`` and kept in
    ``cache_dir()/kind/<sha256 of key>.json`` with the key beside it. The file is written under a
    temporary name and renamed into place, so an interrupted or concurrent writer never leaves a
    half-written one; ``key`` must name everything the value depends on."""
    text = json.dumps(key, sort_keys=True)
    path = cache_dir() / kind / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.json"
    if path.exists():
        return json.loads(path.read_text())["value"]
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(handle, 0o644)  # mkstemp made it private; the cache is shared like the fetched files
        with os.fdopen(handle, "w") as out:
            json.dump({"key": key, "value": value}, out)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return json.loads(path.read_text())["value"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified(folder: Path, files: dict[str, str]) -> bool:
    """Whether every ``name -> sha256`` in ``files`` is present in ``folder`` with that hash."""
    return all((folder / n).exists() and sha256(folder / n) == h for n, h in files.items())


def install_verified(source: Path, folder: Path, files: dict[str, str], origin: str) -> None:
    """Check ``files`` (relative names -> sha256) under ``source``, then copy them into ``folder``.
    Nothing is copied unless every file matches, so a cache folder is never half-updated."""
    for name, digest in files.items():
        if sha256(source / name) != digest:
            raise RuntimeError(f"{name} from {origin} does not match its recorded sha256")
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, folder / name)


def unpack_deb(package: str, workdir: Path) -> Path:
    """``apt-get download PACKAGE`` into ``workdir`` and unpack it there (no install, no
    dependencies, no root needed); returns the unpacked root."""
    try:
        subprocess.run(["apt-get", "download", package], cwd=workdir, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        raise RuntimeError(
            f"apt-get download {package} failed: {detail.decode(errors='replace') or e}"
        ) from e
    (deb,) = workdir.glob(f"{package}_*.deb")
    root = workdir / f"{package}-unpacked"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def pip_download(requirement: str, workdir: Path, *, sdist: bool = False) -> Path:
    """``pip download --no-deps REQUIREMENT`` (a wheel, or the sdist) into ``workdir``; returns the file."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "-d",
        str(workdir),
        requirement,
    ]
    if sdist:
        command[4:4] = ["--no-binary", ":all:"]
    subprocess.run(command, check=True)
    (path,) = [p for p in workdir.iterdir() if p.is_file()]
    return path
