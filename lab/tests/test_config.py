"""Each run-config field is declared once: ``sgdsai train`` and ``sgdsai sweep`` take their options,
defaults and choices from it, and the sweep builds complete configs."""

from __future__ import annotations

import dataclasses

import pytest

from sgdsai_lab import cli, sweep
from sgdsai_lab.config import GRID_FIELDS, RunConfig, config_from_args
from sgdsai_lab.zoo import OPTIMIZERS


def _parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_train_defaults_are_the_config_fields_defaults() -> None:
    config = config_from_args(_parse("train", "vit", "--optimizer", "adamw"), preset="cli")
    spec = OPTIMIZERS["adamw"]
    assert config == RunConfig("vit", "adamw", spec.lr, spec.weight_decay, preset="cli")


def test_every_config_field_is_a_train_option() -> None:
    argv = ["train", "gpt2", "--optimizer", "sgdsai", "--lr", "0.5", "--weight-decay", "0.2", "--steps", "7",
            "--seed", "3", "--data", "synthetic", "--size", "mini", "--batch-size", "5", "--warmup-ratio", "0.2",
            "--min-lr-ratio", "0.3", "--grad-clip", "2", "--eval-every", "4", "--gsnr-every", "6"]  # fmt: skip
    config = config_from_args(_parse(*argv), preset="cli")
    assert config == RunConfig(
        "gpt2", "sgdsai", 0.5, 0.2, 7, 3, "synthetic", "mini", 5, 0.2, 0.3, 2.0, 4, 6, "cli"
    )


def test_train_help_lists_every_config_field_but_the_preset_label(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    shown = capsys.readouterr().out
    options = {f.name: f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(RunConfig)}
    assert [name for name, flag in options.items() if flag not in shown] == ["task", "preset"]  # task: TASK


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "vit", "--optimizer", "adamww"], "argument --optimizer: invalid choice: 'adamww'"),
        (["train", "vitt", "--optimizer", "adamw"], "argument TASK: invalid choice: 'vitt'"),
        (["train", "vit", "--optimizer", "adamw", "--steps", "many"], "argument --steps: invalid int value"),
        (["sweep", "vit", "--lrs", "0.1", "fast"], "argument --lrs: invalid float value: 'fast'"),
    ],
)
def test_a_bad_option_value_is_one_usage_error_naming_it(capsys, argv: list[str], fragment: str) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 2 and fragment in capsys.readouterr().err


def test_a_sweep_without_grid_options_builds_complete_configs_at_each_optimizers_defaults() -> None:
    configs = sweep.configs_from_args(
        _parse("sweep", "vit", "--optimizers", "sgdsai", "muon", "--seeds", "0", "1")
    )
    assert [(c.optimizer, c.lr, c.weight_decay, c.seed) for c in configs] == [
        (o, OPTIMIZERS[o].lr, OPTIMIZERS[o].weight_decay, s) for s in (0, 1) for o in ("sgdsai", "muon")
    ]
    assert {c.preset for c in configs} == {"sweep"} and {c.steps for c in configs} == {200}


def test_the_grid_fields_are_the_sweeps_plural_options() -> None:
    args = _parse("sweep", "vit", "--optimizers", "adamw", "--lrs", "1e-3", "1e-2", "--weight-decays", "0.1")
    assert {name: getattr(args, name) for name in GRID_FIELDS} == {
        "optimizer": ["adamw"], "lr": [1e-3, 1e-2], "weight_decay": [0.1], "seed": [0]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["train", "vit", "--optimizer", "adamw", "--size", "mini"],
         "sgdsai: error: --size for task vit: 'mini' is not one of tiny, small, base\n"),
        (["sweep", "lora", "--data", "english"],
         "sgdsai: error: --data for task lora: 'english' is not one of docstrings, synthetic\n"),
        (["train", "vit", "--optimizer", "adamw", "--steps", "0"], "sgdsai: error: --steps: must be at least 1, not 0\n"),
        (["sweep", "vit", "--lrs", "0.1", "-1"], "sgdsai: error: --lrs: must be above 0, not -1.0\n"),
        (["sweep", "vit", "--min-lr-ratio", "1.5"], "sgdsai: error: --min-lr-ratio: must be between 0 and 1, not 1.5\n"),
    ],
)  # fmt: skip
def test_a_value_outside_its_tasks_choices_or_its_range_is_one_line_naming_what_is_allowed(
    capsys, argv, line
) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == line


def test_the_data_and_size_help_comes_from_the_task_declarations(capsys) -> None:
    from sgdsai_lab.tasks import TASKS, task_spec

    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for name in TASKS:
        assert f"{name}: {'|'.join(task_spec(name).data)}" in shown.replace("| ", "|").replace("- ", "-")
