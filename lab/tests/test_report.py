"""The report is made from records alone: tables pick the best lr per optimizer, plots are written
and the figures of settings that no longer exist are removed."""

from __future__ import annotations

import json

from sgdsai_lab.analysis import load_records, setting
from sgdsai_lab.report import render, slug

from .fake_records import run_record


def test_report_renders_from_records_only(tmp_path) -> None:
    records = tmp_path / "records"
    (records / "gpt2").mkdir(parents=True)
    runs = [
        run_record("sgdsai", 0.1, 3.0, state=100),
        run_record("sgdsai", 0.3, None),
        run_record("adamw", 1e-3, 3.2, state=200),
        run_record("adamw", 1e-2, 3.1, state=200),
        run_record("adamw", 1e-2, 3.2, seed=1, state=200),
    ]
    for r in runs:
        (records / "gpt2" / f"{r['id']}.json").write_text(json.dumps(r))
    loaded = load_records(records)
    assert len(loaded) == 5

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "gone-setting-loss.png").write_bytes(b"")  # a setting an older report had
    (tmp_path / "out" / "bench-figure1.png").write_bytes(b"")  # another command's figure
    path = render(loaded, tmp_path / "out")
    text = path.read_text()
    assert "| sgdsai | 0.1 | 0.1 | 1 | 3.0000 |" in text  # best sgdsai lr; the diverged lr is not chosen
    assert (
        "| adamw | 0.01 | 0.1 | 2 | 3.1500 ± 0.0707 |" in text
    )  # its seed 0 (3.1) beats 3.2; shown as the mean
    assert "| 50.0% |" in text  # state relative to AdamW
    assert "| sgdsai | 0.3 | 0.1 | 1 | 1 | diverged |" in text
    assert "| `w` | 1600 | 10.0 | 0.250 | 11.0 | 1.100 | 0.909 |" in text  # g-SNR vs sqrt(numel) = 40
    stem = slug(setting(runs[0]))
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert stem.startswith("gpt2-stdlib-tiny-4-")
    assert pngs == ["bench-figure1.png", f"{stem}-gsnr.png", f"{stem}-loss.png", f"{stem}-lr.png"]
    assert all(f"]({name})" in text for name in pngs[1:])


def test_report_readme_writes_the_study_and_results_blocks(tmp_path) -> None:
    from sgdsai_lab.cli import main

    records = tmp_path / "records"
    (records / "gpt2").mkdir(parents=True)
    for r in (run_record("sgdsai", 0.1, 3.0), run_record("adamw", 1e-2, 3.1, state=200)):
        (records / "gpt2" / f"{r['id']}.json").write_text(json.dumps(r))
    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- headline:begin -->\n<!-- headline:end -->\nx\n"
        "<!-- study:begin -->\n<!-- study:end -->\nx\n<!-- results:begin -->\n<!-- results:end -->\n"
    )
    assert (
        main(["report", "--records", str(records), "--out", str(tmp_path / "out"), "--readme", str(readme)])
        == 0
    )
    top, study, results = readme.read_text().split("\nx\n")
    assert "**So far, `sgdsai` against tuned AdamW:** **not run yet** in 5" in top
    assert "[Should I switch from AdamW?](#should-i-switch-from-adamw)" in top
    assert "**Char-level LM, 16 × 128 tokens per step** — not run yet" in study
    assert "| matches AdamW at its best — gpt2 tiny / stdlib" in results and "Verdict rules:" in results
