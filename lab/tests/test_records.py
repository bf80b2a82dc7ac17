"""One record format: validated reads that name the file and field, atomic writes, and a migration
of the older formats that loses nothing: the report's tables and the bench tables read as the code
before the migration rendered them from the same records, and claims, report and bench tables read
the same from migrated records as from the old files."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgdsai_lab import records

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "legacy_records"  #: a sample of records as the lab wrote them before schema 2
#: what the code before schema 2 rendered from LEGACY (report, bench tables); of the report, its per-cell
#: tables are compared, since its other sections changed with the verdict rules (sgdsai_lab.stats, claims)
RENDERED = DATA / "legacy_rendered"
REPO_RECORDS = Path(__file__).resolve().parents[2] / "experiments" / "records"


def _migration():
    path = Path(__file__).resolve().parents[1] / "scripts" / "migrate_records.py"
    spec = importlib.util.spec_from_file_location("migrate_records", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render(root: Path, out: Path) -> dict[str, str]:
    pytest.importorskip("matplotlib")
    from sgdsai_lab.analysis import group, load_records
    from sgdsai_lab.bench import table
    from sgdsai_lab.claims import claims_markdown
    from sgdsai_lab.report import render

    loaded = load_records(root)
    return {
        "claims.md": "\n".join(claims_markdown(group(loaded))) + "\n",
        "report.md": render(loaded, out).read_text(),
        "bench.md": table.render(root).replace(root.as_posix(), "<root>"),
    }


def _every_configuration(report: str) -> list[str]:
    """The rows of every "Every configuration" table (the per-cell numbers, whose format the later
    report kept; its other sections changed with the verdict rules)."""
    rows, inside = [], False
    for line in report.splitlines():
        if line.startswith("### "):
            inside = line == "### Every configuration"
        elif inside and line.startswith("| ") and not line.startswith("| optimizer"):
            rows.append(line)
    return rows


def _expected() -> dict[str, str]:
    """The old renderings, with the one name that changed and the records' new paths."""
    out = {}
    for name in ("report.md", "bench.md"):
        text = (RENDERED / name).read_text().replace("sgd-sai-pkg", "sgd-sai-1.0.3")
        for folder in LEGACY.glob("*/record.json"):
            text = text.replace(
                f"/tmp/sample/{folder.parent.name}/record.json", f"<root>/bench/{folder.parent.name}.json"
            )
        out[name] = text
    return out


@pytest.fixture
def legacy(tmp_path) -> Path:
    root = tmp_path / "records"
    shutil.copytree(LEGACY, root)
    return root


def test_migrated_records_render_the_same_claims_report_and_bench_tables(legacy, tmp_path) -> None:
    unmigrated = _render(legacy, tmp_path / "before")
    migrated, current = _migration().migrate(legacy)
    assert (migrated, current) == (16, 0)
    rendered = _render(legacy, tmp_path / "after")
    assert (
        rendered["claims.md"] == unmigrated["claims.md"] and rendered["report.md"] == unmigrated["report.md"]
    )
    expected = _expected()
    assert rendered["bench.md"] == expected["bench.md"]
    old_rows = _every_configuration(expected["report.md"])
    assert old_rows and sorted(_every_configuration(rendered["report.md"])) == sorted(old_rows)


def test_migration_keeps_every_value_and_a_rerun_changes_nothing(legacy) -> None:
    (legacy / "2026-11-24_memory_state" / "memory.png").write_bytes(b"png")
    migration = _migration()
    pairs = []
    for path in sorted(legacy.rglob("*.json")):
        old = json.loads(path.read_text())
        pairs.append((old, migration.migrate_file(path, legacy)))
    after = {p.relative_to(legacy): p.read_bytes() for p in legacy.rglob("*") if p.is_file()}
    assert migration.migrate(legacy) == (0, 16)
    assert {p.relative_to(legacy): p.read_bytes() for p in legacy.rglob("*") if p.is_file()} == after
    assert (legacy / "bench" / "2026-11-24_memory_state-memory.png").read_bytes() == b"png"
    assert not (legacy / "2026-11-24_memory_state").exists()
    moved = {"run_id": "id", "started_at": "created_utc", "time_utc": "created_utc"}
    for old, path in pairs:
        new = records.read(path).to_dict()
        renamed = old["config"].get("optimizer") == "sgd-sai-pkg"
        for key, value in old.items():
            if key == "schema":
                continue
            if key == "config" and renamed:
                assert new["config"] == {**value, "optimizer": "sgd-sai-1.0.3"}, path
            elif key == "run_id" and renamed:
                assert new["id"].startswith(value.split("-sgd-sai-pkg-")[0] + "-sgd-sai-1.0.3-"), path
            elif key == "git_sha":
                assert new["git"]["sha"] + ("-dirty" if new["git"]["dirty"] else "") == value, path
            elif key == "machine" and new["kind"] == "bench":
                assert new["versions"]["python"] == value["python"], path
                gpu = {"cuda": "gpu"}
                assert {k: new["machine"][gpu.get(k, k)] for k in value if k != "python"} == {
                    k: v for k, v in value.items() if k != "python"
                }, path
            elif key == "versions" and new["kind"] == "bench":
                assert {k: new["versions"][k] for k in value} == value, path
            else:
                assert new[moved.get(key, key)] == value, (path, key)


def test_a_renamed_run_gets_the_id_its_config_hashes_to(legacy) -> None:
    from sgdsai_lab.config import RunConfig

    _migration().migrate(legacy)
    (path,) = (legacy / "lora-cls").glob("*sgd-sai-1.0.3*.json")
    record = records.read(path)
    assert record.id == RunConfig(**record.config).run_id_at(record.body["task_revision"]) == path.stem


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("metrics"), r"missing field 'metrics'"),
        (lambda r: r.update(state_bytes="12"), r"field 'state_bytes' must be int, got str"),
        (lambda r: r.update(kind="other"), r"field 'kind' must be one of run, bench, got 'other'"),
        (lambda r: r.update(schema=3), r"field 'schema' is 3: not a record format"),
        (lambda r: r.update(id="elsewhere"), r"fields 'group' and 'id' say gpt2/elsewhere.json"),
    ],
)
def test_a_bad_record_names_its_file_and_field(legacy, change, message) -> None:
    _migration().migrate(legacy)
    path = sorted((legacy / "gpt2").glob("*.json"))[0]
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(records.RecordError, match=rf"{path.name}: {message}"):
        records.read(path)


def test_unreadable_json_is_a_record_error_naming_the_file(tmp_path) -> None:
    (tmp_path / "vit").mkdir()
    (tmp_path / "vit" / "x.json").write_text("{")
    with pytest.raises(records.RecordError, match=r"x.json: not a readable JSON record"):
        records.read_all(tmp_path)


def test_write_validates_first_and_leaves_no_temporary_file(tmp_path) -> None:
    record = records.bench_record("x", {"a": 1}, [1, 2], root=tmp_path)
    path = records.write(record, tmp_path)
    assert path == tmp_path / "bench" / f"{record.id}.json" and records.read(path) == record
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == [path.name]
    with pytest.raises(records.RecordError, match="missing field 'results'"):
        records.write({k: v for k, v in record.to_dict().items() if k != "results"}, tmp_path)
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == [path.name]


def test_every_record_in_the_repository_is_current() -> None:
    """One schema across experiments/records (rerun lab/scripts/migrate_records.py after old code wrote some)."""
    paths = sorted(REPO_RECORDS.rglob("*.json"))
    assert paths, f"no records under {REPO_RECORDS}"
    old = [p for p in paths if json.loads(p.read_text()).get("schema") != records.SCHEMA]
    assert old == [], f"{len(old)} records in an older format; run python lab/scripts/migrate_records.py"
    for path in paths:
        records.read(path)


@given(st.lists(st.booleans(), max_size=40))
def test_packed_flags_read_back_as_written(flags) -> None:
    text = records.pack_flags(flags)
    assert records.unpack_flags(text, len(flags)) == flags
    assert len(text) == -(-len(flags) // 4) and set(text) <= set("0123456789abcdef")


def test_packed_flags_fill_each_hex_digit_from_its_highest_bit() -> None:
    assert records.pack_flags([True, False, False, False, True]) == "88"  # 1000 1(000)
    assert records.pack_flags([]) == "" and records.pack_flags([False, True, True, True]) == "7"


def test_packed_flags_of_another_count_are_refused() -> None:
    text = records.pack_flags([True] * 9)  # three hex digits
    with pytest.raises(ValueError, match="cannot hold exactly 13 flags"):
        records.unpack_flags(text, 13)
