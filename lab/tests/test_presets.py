"""Preset files give exactly the runs the presets gave when they were code, and a bad preset file
is refused with one line naming the file, the field and the allowed values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sgdsai_lab import cli, presets, sweep
from sgdsai_lab.config import ConfigError

#: every preset's configs and run ids as the code computed them before the presets became files
FROZEN = json.loads((Path(__file__).parent / "fixtures" / "preset_run_ids.json").read_text())


def _configs(preset: presets.Preset) -> list:
    args = cli.build_parser().parse_args(["sweep", preset.task, "--preset", preset.name])
    return sweep.preset_configs(preset, args)


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_every_preset_file_gives_the_frozen_configs_and_run_ids(name: str) -> None:
    configs = _configs(presets.find(name))
    assert [c.run_id for c in configs] == [run["run_id"] for run in FROZEN[name]["runs"]]
    assert [dataclasses.asdict(c) for c in configs] == [run["config"] for run in FROZEN[name]["runs"]]


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_every_preset_file_keeps_its_phases_and_description(name: str) -> None:
    preset, frozen = presets.find(name), FROZEN[name]["preset"]
    assert {k: getattr(preset, k) for k in ("metric", "extend", "description")} == {
        k: frozen[k] for k in ("metric", "extend", "description")
    }
    assert list(preset.best_seeds) == frozen["best_seeds"] and list(preset.grid) == list(frozen["grid"])


def test_the_shipped_presets_are_exactly_the_frozen_ones() -> None:
    assert presets.names() == sorted(FROZEN)


def test_a_preset_file_path_runs_like_a_name(tmp_path) -> None:
    copy = tmp_path / "quick.toml"
    copy.write_text((presets.PRESET_DIR / "quick.toml").read_text())
    assert presets.find(str(copy)) == presets.find("quick")


GOOD = """description = "test"
task = "vit"
data = "synthetic"
size = "tiny"
steps = 3
[grid.sgdsai]
lrs = [1]
weight_decays = [0.0001]
"""


def test_a_minimal_file_loads_with_defaults_the_tasks_metric_and_integer_lrs_as_floats(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    preset = presets.load(path)
    assert (preset.name, preset.seeds, preset.metric, preset.batch_size) == (
        "mine",
        (0,),
        "val_accuracy",
        None,
    )
    assert preset.grid == {"sgdsai": ((1.0,), (0.0001,))} and isinstance(preset.grid["sgdsai"][0][0], float)


#: a bad file's text -> what its error must name (the field, the value, some allowed values)
BAD = {
    "unknown key": ("stepz = 3\n" + GOOD, ("key", "'stepz'", "grad_clip")),
    "wrong type": (GOOD.replace("steps = 3", 'steps = "3"'), ("steps", "an integer", "str")),
    "bool for int": (GOOD.replace("steps = 3", "steps = true"), ("steps", "an integer")),
    "unknown task": (GOOD.replace('"vit"', '"vitt"'), ("task", "'vitt'", "gpt2", "lora-cls")),
    "unknown size": (GOOD.replace('"tiny"', '"huge"'), ("size", "'huge'", "tiny", "small")),
    "size of another task": (GOOD.replace('"tiny"', '"mini"'), ("size", "'mini'", "tiny, small, base")),
    "data of another task": (GOOD.replace('"synthetic"', '"english"'), ("data", "'english'", "digits")),
    "unknown optimizer": (GOOD.replace("grid.sgdsai", "grid.sgdsay"), ("'sgdsay'", "adamw", "nesterov")),
    "unknown metric": ('metric = "val_acc"\n' + GOOD, ("metric", "'val_acc'", "val_accuracy", "val_loss")),
    "unknown grid key": (GOOD + "lr = [1.0]\n", ("grid.sgdsai key", "'lr'", "lrs", "weight_decays")),
    "lr not a number": (GOOD.replace("lrs = [1]", 'lrs = ["1"]'), ("grid.sgdsai.lrs", "'1'")),
    "empty lrs": (GOOD.replace("lrs = [1]", "lrs = []"), ("grid.sgdsai.lrs", "empty")),
    "zero lr": (GOOD.replace("lrs = [1]", "lrs = [0]"), ("grid.sgdsai.lrs", "above 0", "not 0")),
    "negative weight decay": (GOOD.replace("[0.0001]", "[-1]"), ("grid.sgdsai.weight_decays", "at least 0")),
    "missing key": (GOOD.replace("steps = 3\n", ""), ("missing", "steps")),
    "best seed reused": ("best_seeds = [0]\n" + GOOD, ("best_seeds", "[0]")),
    "not toml": ("task = \n", ("not valid TOML",)),
}


def _bad_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(BAD[case][0])
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_preset_file_names_the_file_the_field_and_the_allowed_values(tmp_path, case: str) -> None:
    path = _bad_file(tmp_path, case)
    with pytest.raises(ConfigError) as error:
        presets.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for fragment in BAD[case][1]:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("case", ["unknown optimizer", "not toml"])
def test_the_command_line_prints_a_bad_preset_as_one_line_and_exits_2(tmp_path, capsys, case: str) -> None:
    path = _bad_file(tmp_path, case)
    assert cli.main(["sweep", "vit", "--preset", str(path), "--records", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sgdsai: error: {path}: ") and err.count("\n") == 1 and "Traceback" not in err


def test_the_command_line_names_the_presets_for_an_unknown_one(capsys) -> None:
    assert cli.main(["sweep", "gpt2", "--preset", "quik"]) == 2
    assert "--preset: 'quik' is not one of" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--preset", "quick", "--only", "lion"],
            "--only: 'lion' not in the grid of preset quick (sgdsai, adamw",
        ),
        (["--only", "adamw"], "--only: selects optimizers of a --preset; without one, use --optimizers"),
        (["--preset", "quick", "--only", "adamw", "adamw"], "--only: each optimizer once, not adamw adamw"),
    ],
)
def test_only_names_the_preset_grid_it_must_choose_from(tmp_path, capsys, argv, message) -> None:
    assert cli.main(["sweep", "gpt2", *argv, "--records", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing ran


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["--steps", "2"], "--steps"), (["--optimizers", "adamw"], "--optimizers"), (["--lrs", "1"], "--lrs"),
     (["--data", "synthetic"], "--data"), (["--grad-clip", "0.5"], "--grad-clip")],
)  # fmt: skip
def test_an_option_the_preset_sets_is_refused_not_silently_overridden(
    monkeypatch, tmp_path, capsys, argv, flag
) -> None:
    monkeypatch.setattr(sweep, "run_preset", lambda *_: None)  # were it not refused: exit 0, fast
    assert cli.main(["sweep", "gpt2", "--preset", "study-a16", *argv, "--records", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sgdsai: error: {flag}: set by --preset study-a16, which fixes --optimizers,")
    assert f"({presets.PRESET_DIR / 'study-a16.toml'}), edit the copy" in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())  # nothing ran


def test_an_option_given_with_the_presets_own_value_or_one_it_leaves_open_is_accepted(
    monkeypatch, tmp_path
) -> None:
    ran: list = []
    monkeypatch.setattr(sweep, "run_preset", lambda preset, args: ran.append(args))
    argv = [
        "sweep",
        "gpt2",
        "--preset",
        "study-a16",
        "--data",
        "stdlib",
        "--steps",
        "3000",
        "--warmup-ratio",
        "0.2",
    ]
    assert cli.main([*argv, "--records", str(tmp_path)]) == 0
    assert [a.warmup_ratio for a in ran] == [0.2]


def test_only_runs_the_chosen_optimizers_of_a_preset_in_the_order_given(monkeypatch, tmp_path) -> None:
    ran: list[str] = []
    monkeypatch.setattr(sweep, "run_sweep", lambda configs, *_: ran.extend(c.optimizer for c in configs))
    monkeypatch.setattr(sweep, "best_seed_configs", lambda *_: [])
    args = cli.build_parser().parse_args(
        ["sweep", "gpt2", "--preset", "quick", "--only", "adamw", "sgdsai", "--records", str(tmp_path)]
    )
    sweep.run_preset(presets.find("quick"), args)
    assert ran and ran == sorted(ran)  # every adamw run before any sgdsai run
    assert set(ran) == {"adamw", "sgdsai"} and ran[0] == "adamw"
