"""README blocks are replaced between their markers and nowhere else."""

from __future__ import annotations

import pytest


def test_readme_block_is_replaced_between_markers_only(tmp_path) -> None:
    from sgdsai_lab.readme import replace_block

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:begin -->\nold\n<!-- results:end -->\noutro\n")
    replace_block(readme, "results", "new table")
    assert readme.read_text() == "intro\n<!-- results:begin -->\nnew table\n<!-- results:end -->\noutro\n"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="results:begin"):
        replace_block(readme, "results", "x")
