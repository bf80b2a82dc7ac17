"""The command line keeps a timestamped log file for training jobs, as well as the console."""

from __future__ import annotations

import logging

import pytest

from sgdsai_lab import cli


@pytest.fixture
def clean_root_logger():
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in root.handlers[len(before) :]:
        handler.close()
        root.removeHandler(handler)


def test_log_file_receives_the_commands_log(tmp_path, monkeypatch, clean_root_logger) -> None:
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "logs" / "run.log"
    assert cli.main(["--log-file", str(log), "bench", "table", "--records", str(tmp_path), "--latest"]) == 0
    logging.getLogger("sgdsai.test").info("a line for the file")
    assert "a line for the file" in log.read_text()


def test_training_commands_log_to_the_default_file(tmp_path, monkeypatch, clean_root_logger) -> None:
    monkeypatch.chdir(tmp_path)
    config = ["train", "vit", "--data", "synthetic", "--steps", "2", "--batch-size", "4",
              "--optimizer", "sgdsai", "--records", str(tmp_path / "records")]  # fmt: skip
    assert cli.main(config) == 0
    assert "vit-synthetic-tiny-sgdsai" in (tmp_path / cli.TRAINING_LOG).read_text()
