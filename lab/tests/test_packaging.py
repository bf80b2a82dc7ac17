"""The core wheel's file-list check (``.ci/check_wheel.py``, run by ``make wheel``) accepts exactly
the files of src/sgdsai/ and refuses anything of the lab, a subpackage or a console script."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _checker():
    spec = importlib.util.spec_from_file_location("check_wheel", ROOT / ".ci" / "check_wheel.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name in names:
            z.writestr(name, "")
    return path


CORE = sorted(
    f"sgdsai/{p.name}" for p in (ROOT / "src" / "sgdsai").iterdir() if p.suffix in (".py", ".typed")
)
META = ["sgdsai-0.1.0.dist-info/METADATA", "sgdsai-0.1.0.dist-info/RECORD"]


def test_the_core_files_alone_pass(tmp_path) -> None:
    assert _checker().problems(_wheel(tmp_path / "ok.whl", CORE + META)) == []


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("sgdsai_lab/cli.py", "not a core file: sgdsai_lab/cli.py"),
        ("sgdsai/experiments/train.py", "subpackage or data folder: sgdsai/experiments/train.py"),
        ("sgdsai-0.1.0.dist-info/entry_points.txt", "declares entry points"),
    ],
)
def test_a_lab_file_subpackage_or_console_script_fails(tmp_path, extra: str, problem: str) -> None:
    found = _checker().problems(_wheel(tmp_path / "bad.whl", [*CORE, *META, extra]))
    assert any(problem in line for line in found), found


def test_a_missing_core_file_fails(tmp_path) -> None:
    found = _checker().problems(_wheel(tmp_path / "short.whl", CORE[1:] + META))
    assert found == [f"in src/sgdsai/ but not in the wheel: {CORE[0].removeprefix('sgdsai/')}"]
