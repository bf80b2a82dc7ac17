"""The one record format: every training run and every benchmark writes one JSON file.

A record is ``<records>/<group>/<id>.json``: ``group`` is the run's task (``vit``, ``gpt2``, ...) or
``bench``, ``id`` the run's content-hashed id or a benchmark's ``<date>_<name>[_n]``. A benchmark's
figures lie beside its record as ``<id>-<figure>.png``. Every record holds the same envelope::

    schema, kind ("run" | "bench"), id, group, created_utc,
    git {sha, dirty}, versions {python, torch, ...}, machine {platform, cpu, threads, ...},
    config {...}, notes

and the fields of its kind: a run its ``metrics``, ``loss_curve``, ``state_bytes`` and the rest
that `sgdsai_lab.run.run` measures; a benchmark its ``name`` and ``results``. Writes are
atomic (a killed job leaves no record, so a sweep reruns it); reads are validated, and a bad file
raises `RecordError` naming the file and the field.

Records written before this format (schema 1 runs, schema-less benchmark folders) are upgraded in
memory on reading (`upgrade`, old optimizer names through `sgdsai_lab.zoo.RENAMED`);
``lab/scripts/migrate_records.py`` rewrites them on disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

SCHEMA = 2
KINDS = ("run", "bench")
RECORDS = Path("experiments/records")  #: relative to the repository root (the current directory)
BENCH = "bench"  #: the group of benchmark records

#: envelope field -> its JSON type
ENVELOPE: dict[str, type | tuple[type, ...]] = {
    "schema": int, "kind": str, "id": str, "group": str, "created_utc": str,
    "git": dict, "versions": dict, "machine": dict, "config": dict, "notes": str,
}  # fmt: skip
#: fields each kind adds, with their JSON types
BODY: dict[str, dict[str, type | tuple[type, ...]]] = {
    "run": {"metrics": dict, "loss_curve": list, "state_bytes": int, "task_revision": int},
    "bench": {"name": str, "results": (dict, list)},
}


class RecordError(ValueError):
    """A record file that cannot be read: the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One record: the envelope, and the fields of its kind in ``body``."""

    kind: str
    id: str
    group: str
    created_utc: str
    git: dict[str, Any]
    versions: dict[str, Any]
    machine: dict[str, Any]
    config: dict[str, Any]
    body: dict[str, Any]
    notes: str = ""
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        envelope = {f: getattr(self, f) for f in ENVELOPE}
        return {**envelope, **self.body}

    @classmethod
    def from_dict(cls, raw: Any, source: Path | str = "<record>") -> Record:
        """Validate ``raw`` (a schema-2 record as read from JSON) and type it."""
        if not isinstance(raw, dict):
            raise RecordError(f"{source}: a record is a JSON object, not {type(raw).__name__}")
        if raw.get("schema") != SCHEMA:
            raise RecordError(f"{source}: field 'schema' must be {SCHEMA}, got {raw.get('schema')!r}")
        if raw.get("kind") not in KINDS:
            raise RecordError(
                f"{source}: field 'kind' must be one of {', '.join(KINDS)}, got {raw.get('kind')!r}"
            )
        for field, expected in {**ENVELOPE, **BODY[raw["kind"]]}.items():
            if field not in raw:
                raise RecordError(f"{source}: missing field {field!r}")
            if not isinstance(raw[field], expected) or (isinstance(raw[field], bool) and expected is int):
                names = " or ".join(
                    t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,))
                )
                raise RecordError(
                    f"{source}: field {field!r} must be {names}, got {type(raw[field]).__name__}"
                )
        body = {k: v for k, v in raw.items() if k not in ENVELOPE}
        return cls(**{f: raw[f] for f in ENVELOPE if f != "schema"}, body=body)

    def path(self, root: Path) -> Path:
        return root / self.group / f"{self.id}.json"


def read(path: Path) -> Record:
    """The validated record at ``path`` (an older format is upgraded in memory)."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordError(f"{path}: not a readable JSON record ({e})") from e
    record = Record.from_dict(upgrade(raw, path), path)
    if raw.get("schema") == SCHEMA and record.path(Path(path).parent.parent) != Path(path):
        raise RecordError(f"{path}: fields 'group' and 'id' say {record.group}/{record.id}.json")
    return record


def read_all(root: Path, kind: str | None = None) -> list[Record]:
    """Every record under ``root`` (of ``kind``, if given), in path order."""
    found = [read(p) for p in sorted(Path(root).rglob("*.json"))]
    return [r for r in found if kind is None or r.kind == kind]


def write(record: Record | dict[str, Any], root: Path) -> Path:
    """Validate, then write atomically to ``<root>/<group>/<id>.json``; returns that path."""
    if isinstance(record, dict):
        record = Record.from_dict(record, f"record {record.get('id')!r}")
    path = record.path(root)
    write_json(record.to_dict(), path)
    return path


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def pack_flags(flags: Any) -> str:
    """A sequence of booleans (per-example outcomes) as hex, four to a digit, the first flag in the
    highest bit of the first digit; `unpack_flags` reads it back given the count."""
    bits = "".join("1" if f else "0" for f in flags)
    bits += "0" * (-len(bits) % 4)
    return "".join(f"{int(bits[i : i + 4], 2):x}" for i in range(0, len(bits), 4))


def unpack_flags(text: str, count: int) -> list[bool]:
    """The ``count`` booleans `pack_flags` wrote as ``text``; a ``ValueError`` if they cannot be."""
    if len(text) != -(-count // 4):
        raise ValueError(f"{len(text)} hex digits cannot hold exactly {count} flags")
    bits = "".join(f"{int(c, 16):04b}" for c in text)
    return [b == "1" for b in bits[:count]]


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def bench_record(name: str, config: dict[str, Any], results: Any, *, packages: tuple[str, ...] = (),
                 notes: str = "", root: Path = RECORDS, device: str = "cpu") -> Record:  # fmt: skip
    """A benchmark's record, with a new id ``<YYYY-MM-DD>_<name>[_<n>]`` (never an existing one's)."""
    created = now_utc()
    base = f"{created[:10]}_{name}"
    n, ident = 1, base
    while (root / BENCH / f"{ident}.json").exists():
        n += 1
        ident = f"{base}_{n}"
    env = environment(packages, device)
    body = {"name": name, "results": results}
    return Record(
        "bench", ident, BENCH, created, env["git"], env["versions"], env["machine"], config, body, notes
    )


def figure_path(record: Record, root: Path, figure: str) -> Path:
    """Where a benchmark's figure lies: beside its record, ``<id>-<figure>.png``."""
    return root / record.group / f"{record.id}-{figure}.png"


# --- the one metadata helper: git, versions, machine ---------------------------------------------


def environment(packages: tuple[str, ...] = (), device: str = "cpu") -> dict[str, dict[str, Any]]:
    """``{"git", "versions", "machine"}`` of the current process, for a record's envelope."""
    return {"git": git(), "versions": versions(*packages), "machine": machine(device)}


def git() -> dict[str, Any]:
    """The commit of the lab's checkout and whether tracked files differ from it."""
    root = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return {"sha": None, "dirty": None}
    return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def versions(*packages: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in dict.fromkeys(("torch", "transformers", "sgdsai", "sgdsai-lab", *packages)):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict[str, Any]:
    import torch  # here, so that importing this module stays light (bench fits caps memory first)

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "load_average_1_5_15min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# --- older formats --------------------------------------------------------------------------------


def upgrade(raw: Any, path: Path) -> Any:
    """``raw`` in the current schema: a schema-1 run record (``<task>/<run_id>.json``) or a
    schema-less benchmark record (``<date>_<name>/record.json``) converted, every value kept;
    a current record unchanged. The id of a run whose optimizer was renamed is kept (the migration
    script gives it the id its config now hashes to)."""
    if not isinstance(raw, dict) or raw.get("schema") == SCHEMA:
        return raw
    if raw.get("schema") == 1:
        from sgdsai_lab.zoo import RENAMED

        out = {
            k: v for k, v in raw.items() if k not in ("run_id", "started_at", "git", "versions", "machine")
        }
        config = dict(raw.get("config") or {})
        if config.get("optimizer") in RENAMED:
            config["optimizer"] = RENAMED[config["optimizer"]]
        return {"schema": SCHEMA, "kind": "run", "id": raw.get("run_id"), "group": config.get("task"),
                "created_utc": raw.get("started_at"), "git": raw.get("git"), "versions": raw.get("versions"),
                "machine": raw.get("machine"), "config": config, "notes": "", **{k: v for k, v in out.items()
                if k not in ("schema", "config")}}  # fmt: skip
    if "schema" not in raw and {"name", "time_utc", "results"} <= raw.keys():
        sha = raw.get("git_sha")
        machine_info = dict(raw.get("machine") or {})
        python = machine_info.pop("python", None)
        if "cuda" in machine_info:
            machine_info["gpu"] = machine_info.pop("cuda")
        return {"schema": SCHEMA, "kind": "bench", "id": Path(path).parent.name, "group": BENCH,
                "created_utc": raw["time_utc"],
                "git": {"sha": sha.removesuffix("-dirty"), "dirty": sha.endswith("-dirty")} if sha else
                       {"sha": None, "dirty": None},
                "versions": {"python": python, **(raw.get("versions") or {})}, "machine": machine_info,
                "config": raw.get("config"), "notes": raw.get("notes", ""), "name": raw["name"],
                "results": raw["results"]}  # fmt: skip
    raise RecordError(f"{path}: field 'schema' is {raw.get('schema')!r}: not a record format this lab knows")
