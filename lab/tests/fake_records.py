"""Run records made up for the analysis, claims and report tests (schema 2, only the fields they read)."""

from __future__ import annotations


def run_record(optimizer: str, lr: float, val: float | None, seed: int = 0, state: int = 100) -> dict:
    diverged = val is None
    return {
        "schema": 2,
        "kind": "run",
        "id": f"{optimizer}-{lr}-{seed}",
        "group": "gpt2",
        "created_utc": "2026-01-01T00:00:00+00:00",
        "notes": "",
        "preset": "quick",
        "task_revision": 3,
        "config": {
            "task": "gpt2",
            "data": "stdlib",
            "size": "tiny",
            "steps": 4,
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": 0.1,
            "seed": seed,
        },
        "task_description": "GPT-2 tiny",
        "versions": {"torch": "x"},
        "git": {"sha": "abc"},
        "machine": {"platform": "p", "torch_threads": 2, "device": "cpu"},
        "metrics": {
            "diverged": diverged,
            "val_loss": val,
            "final_train_loss": None if diverged else val + 0.1,
        },
        "state_bytes": state,
        "param_bytes": 100,
        "median_step_ms": 1.0,
        "median_iter_ms": 4.0,
        "wall_clock_s": 2.0,
        "loss_curve": [[0, 5.0, lr], [1, 4.0, lr], [2, None if diverged else 3.0, lr]],
        "gsnr_trace": {
            "steps": [0, 2],
            "tensors": {"w": [10.0, 11.0], "b": [None, None]},
            "numel": {"w": 1600, "b": 8},
        },
    }


def accuracy_record(optimizer: str, lr: float, wd: float, acc: float | None, seed: int = 0) -> dict:
    record = run_record(optimizer, lr, None if acc is None else 1.0, seed)
    record["config"].update(task="vit", weight_decay=wd)
    record["metrics"]["val_accuracy"] = acc
    record["chance_accuracy"] = 0.1
    return record


def lm_record(
    optimizer: str, lr: float, val: float | None, test: float | None, seed: int = 0, **config
) -> dict:
    """A study-like LM run: validation and test loss, the floors of both splits, peak memory;
    ``config`` overrides config fields (``batch_size``, ``preset``, ``steps``, ...)."""
    record = run_record(optimizer, lr, val, seed)
    record["config"].update({"batch_size": 16, "preset": "study-a16", **config})
    record["preset"] = record["config"]["preset"]
    record["id"] += f"-{record['config']['preset']}-{record['config']['batch_size']}"
    record["metrics"]["test_loss"] = test
    record["floors"] = {"bigram_val": 2.46, "bigram_test": 2.42, "unigram_val": 3.15, "unigram_test": 3.39}
    record["peak_rss_mib"] = 500.0
    record["loss_curve"] = [[i, 5.0 - i / 10 * (1 if val is None else 4.0 / val), lr] for i in range(10)]
    return record


def lm_cell(optimizer: str, lr: float, test: float, **config) -> list[dict]:
    """A bracketed best cell: three seeds at ``lr`` (test ``test`` and ``test`` ± 0.001), one seed at
    lrs 10× either side, 0.5 worse."""
    deltas = (0.0, -0.001, 0.001)
    cell = [lm_record(optimizer, lr, test, test + d, seed=s, **config) for s, d in enumerate(deltas)]
    return cell + [lm_record(optimizer, lr * f, test + 0.5, test + 0.5, **config) for f in (0.1, 10.0)]
