"""The cache of computed values: computed once per key, read back unchanged, never half-written."""

from __future__ import annotations

import pytest

from sgdsai_lab import fetch


def test_cached_json_computes_once_per_key_and_reads_back_the_same_value(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    calls = []

    def compute() -> dict[str, float]:
        calls.append(1)
        return {"untrained_val": 1 / 3}

    first = fetch.cached_json("floors", {"model": "a", "n": 1}, compute)
    again = fetch.cached_json("floors", {"n": 1, "model": "a"}, compute)  # the same key, reordered
    other = fetch.cached_json("floors", {"model": "b", "n": 1}, compute)
    assert first == again == other == {"untrained_val": 1 / 3} and len(calls) == 2
    assert len(list((tmp_path / "floors").glob("*.json"))) == 2


def test_cached_json_leaves_nothing_behind_when_the_value_cannot_be_written(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    with pytest.raises(TypeError):
        fetch.cached_json("floors", {"model": "a"}, lambda: {"not json": object()})
    assert list((tmp_path / "floors").iterdir()) == []
