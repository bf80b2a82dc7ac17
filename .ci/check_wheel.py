"""Check that the core wheel ships the optimizer alone: exactly the files of src/sgdsai/ (no subpackage,
nothing of the lab) plus its metadata, and no console script.

Usage: python .ci/check_wheel.py build/wheel/sgdsai-*.whl
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "src" / "sgdsai"


def problems(wheel: Path) -> list[str]:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.removeprefix("sgdsai/") for n in names if n.startswith("sgdsai/")}
    expected = {p.name for p in CORE.iterdir() if p.is_file() and p.suffix in (".py", ".typed")}
    out = [f"not a core file: {n}" for n in names if not (n.startswith(("sgdsai/", "sgdsai-")))]
    out += [f"in the wheel but not in src/sgdsai/: sgdsai/{n}" for n in sorted(shipped - expected)]
    out += [f"in src/sgdsai/ but not in the wheel: {n}" for n in sorted(expected - shipped)]
    out += [f"subpackage or data folder: {n}" for n in names if n.startswith("sgdsai/") and n.count("/") > 1]
    entry_points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    if entry_points:
        out.append(f"the core declares entry points ({entry_points[0]}); the `sgdsai` command is the lab's")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write(__doc__ or "")
        return 2
    wheel = Path(argv[0])
    found = problems(wheel)
    for line in found:
        sys.stderr.write(f"{wheel.name}: {line}\n")
    if not found:
        sys.stdout.write(f"{wheel.name}: {len(zipfile.ZipFile(wheel).namelist())} files, core only\n")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
