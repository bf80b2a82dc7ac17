"""Rewrite every record under a records folder in the current format (``sgdsai_lab.records``).

    python lab/scripts/migrate_records.py [experiments/records]

Schema-1 run records (``<task>/<run_id>.json``) are rewritten in place; schema-less benchmark
records (``<date>_<name>/record.json`` and their PNGs) move to ``bench/<date>_<name>.json`` and
``bench/<date>_<name>-<figure>.png``. Every value is kept (:func:`sgdsai_lab.records.upgrade`); a
run whose optimizer was renamed (:data:`sgdsai_lab.zoo.RENAMED`) gets the id its config hashes to
now, under its own task revision, so a sweep finds it. Current records are left alone, so the
script can be rerun at any time (e.g. after old code wrote more records); it never overwrites a
different record.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from sgdsai_lab import records
from sgdsai_lab.config import RunConfig, task_revision

logger = logging.getLogger("migrate_records")


def migrate_file(path: Path, root: Path) -> Path | None:
    """Migrate one record file; returns its new path, or ``None`` when it was current already."""
    raw = json.loads(path.read_text())
    if isinstance(raw, dict) and raw.get("schema") == records.SCHEMA:
        records.read(path)  # validated, and where its group and id say
        return None
    upgraded = records.upgrade(raw, path)
    if upgraded["kind"] == "run" and upgraded["config"]["optimizer"] != raw["config"]["optimizer"]:
        config = RunConfig(**upgraded["config"])
        upgraded["id"] = config.run_id_at(raw.get("task_revision", task_revision(config.task)))
    record = records.Record.from_dict(upgraded, path)
    target = record.path(root)
    if target != path and target.exists() and records.read(target).to_dict() != record.to_dict():
        raise records.RecordError(f"{path}: would overwrite the different record {target}")
    records.write(record, root)
    if record.kind == "bench":
        for figure in sorted(path.parent.glob("*.png")):
            figure.replace(records.figure_path(record, root, figure.stem))
    if target != path:
        path.unlink()
        if path.name == "record.json" and not any(path.parent.iterdir()):
            path.parent.rmdir()
    return target


def migrate(root: Path) -> tuple[int, int]:
    """Migrate every record under ``root``; returns ``(migrated, already current)``."""
    migrated = current = 0
    for path in sorted(root.rglob("*.json")):
        if migrate_file(path, root) is None:
            current += 1
        else:
            migrated += 1
    return migrated, current


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = Path(argv[0] if argv else records.RECORDS)
    migrated, current = migrate(root)
    logger.info("%s: %d records migrated, %d already current", root, migrated, current)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
