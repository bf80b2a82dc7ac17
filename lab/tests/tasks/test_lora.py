"""The LoRA tasks (``lora``, ``lora-cls``) on their synthetic data: only LoRA (and the new head)
trains, A's first gradient is zero, and the task's metrics tell whether the A matrices trained."""

from __future__ import annotations

import math
import types

import pytest
import torch
from torch import nn

pytest.importorskip("peft")

from sgdsai_lab.config import RunConfig
from sgdsai_lab.run import run
from sgdsai_lab.tasks import build_task
from sgdsai_lab.tasks.lora import IGNORE, pack, split_loss, spread
from sgdsai_lab.tasks.lora_cls import majority_floors, stratified_split, three_way_split
from sgdsai_lab.tasks.lora_metrics import lora_metrics, lora_snapshot
from sgdsai_lab.zoo import build_optimizer

LORA_TASKS = ["lora", "lora-cls"]


def _train(task, optimizer: str, lr: float, weight_decay: float, steps: int) -> None:
    opt = build_optimizer(optimizer, task.model, lr, weight_decay, task.info)
    for step in range(steps):
        loss = task.loss(task.model, task.batch(step))
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("name", LORA_TASKS)
def test_only_lora_and_head_train_and_every_lora_a_starts_with_zero_gradient(name: str) -> None:
    task = build_task(name, "synthetic", "tiny", 0)
    trainable = [n for n, p in task.model.named_parameters() if p.requires_grad]
    assert all(".lora_" in n or ".modules_to_save." in n for n in trainable)
    assert any(".modules_to_save." in n for n in trainable) == (name == "lora-cls")
    task.loss(task.model, task.batch(0)).backward()
    grads = {n: p.grad for n, p in task.model.named_parameters() if p.requires_grad}
    a_names = [n for n in grads if ".lora_A." in n]
    assert a_names and all(torch.count_nonzero(grads[n]) == 0 for n in a_names)
    assert all(torch.count_nonzero(grads[n.replace("lora_A", "lora_B")]) > 0 for n in a_names)
    assert set(task.traced) <= set(trainable)


@pytest.mark.parametrize("name", LORA_TASKS)
def test_sgdsai_trains_every_lora_a_and_leaves_the_base_bit_identical(name: str) -> None:
    task = build_task(name, "synthetic", "tiny", 0)
    frozen = {n: p.detach().clone() for n, p in task.model.named_parameters() if not p.requires_grad}
    _train(task, "sgdsai", 0.5, 0.01, 4)
    metrics = task.evaluate(task.model)
    assert metrics["lora_A_orth_change_min"] > 1e-5  # each A moved other than by shrinking
    assert metrics["lora_A_rel_change"] > 0 and metrics["lora_B_norm"] > 0
    for n, p in task.model.named_parameters():
        if n in frozen:
            torch.testing.assert_close(p.detach(), frozen[n], rtol=0, atol=0)


@pytest.mark.parametrize("name", LORA_TASKS)
def test_released_package_only_shrinks_lora_a(name: str) -> None:
    pytest.importorskip("sgd_sai")
    task = build_task(name, "synthetic", "tiny", 0)
    _train(task, "sgd-sai-1.0.3", 0.05, 0.1, 4)
    metrics = task.evaluate(task.model)
    assert metrics["lora_A_rel_change"] > 1e-4  # weight decay shrank A ...
    assert metrics["lora_A_orth_change"] < 1e-6  # ... and nothing else moved it
    assert metrics["lora_B_norm"] > 0


def test_lora_metrics_tell_shrinking_from_training() -> None:
    torch.manual_seed(0)
    factors = nn.ModuleDict({"lora_A": nn.Linear(6, 4, bias=False), "lora_B": nn.Linear(4, 6, bias=False)})
    model = nn.ModuleDict({"q": factors})
    initial = lora_snapshot(model)
    assert list(initial) == ["q.lora_A.weight"]
    with torch.no_grad():
        factors["lora_A"].weight.mul_(0.5)
    shrunk = lora_metrics(model, initial)
    assert shrunk["lora_A_rel_change"] == pytest.approx(0.5) and shrunk["lora_A_orth_change"] < 1e-12
    with torch.no_grad():
        factors["lora_A"].weight[0, 0] += 0.1
    moved = lora_metrics(model, initial)
    assert (
        moved["lora_A_orth_change"] > 1e-3 and moved["lora_A_orth_change_min"] == moved["lora_A_orth_change"]
    )
    assert moved["lora_B_norm"] == pytest.approx(factors["lora_B"].weight.norm().item())


def test_pack_masks_prompt_and_padding_and_keeps_the_prompt_end() -> None:
    ids, mask, labels = pack(
        [([1, 2, 3, 4, 5, 6], [7, 8]), ([1], [9, 9, 9, 9, 9, 9, 9, 9])], context=8, pad=0
    )
    assert ids.tolist() == [[3, 4, 5, 6, 7, 8, 0, 0], [1, 9, 9, 9, 9, 9, 9, 9]]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 1, 0, 0], [1] * 8]
    assert labels.tolist() == [[IGNORE] * 4 + [7, 8, IGNORE, IGNORE], [IGNORE] + [9] * 7]


def test_stratified_split_holds_out_the_same_fraction_of_every_class() -> None:
    labels = torch.tensor([0] * 50 + [1] * 20 + [2] * 10)
    train, held = stratified_split(labels, 0.2)
    assert torch.equal(torch.cat([train, held]).sort().values, torch.arange(80))
    assert labels[held].bincount().tolist() == [10, 4, 2]
    assert torch.equal(held, stratified_split(labels, 0.2)[1])


def test_three_way_split_is_disjoint_covers_every_row_and_halves_the_holdout_per_class() -> None:
    labels = torch.tensor([0] * 50 + [1] * 20 + [2] * 10)
    train, val, test = three_way_split(labels, 0.4)
    assert torch.equal(torch.cat([train, val, test]).sort().values, torch.arange(80))
    assert labels[val].bincount().tolist() == labels[test].bincount().tolist() == [10, 4, 2]
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), three_way_split(labels, 0.4)))


def test_majority_floor_is_the_accuracy_of_the_training_splits_most_frequent_class() -> None:
    train = torch.tensor([2, 2, 2, 0, 1])
    floors = majority_floors(train, {"val": torch.tensor([2, 0, 0, 0]), "test": torch.tensor([1, 2])})
    assert floors == {"majority_val": 0.25, "majority_test": 0.5}
    assert majority_floors(torch.tensor([1, 0]), {"val": torch.tensor([0, 1, 1])}) == {"majority_val": 1 / 3}


def test_spread_takes_evenly_strided_pairs_and_all_of_a_short_list() -> None:
    assert spread(tuple(range(10)), 3) == (0, 3, 6)
    assert spread(tuple(range(2)), 5) == (0, 1)


def test_split_loss_weights_every_target_token_alike() -> None:
    class Fixed(nn.Module):  # per-row loss = the row's first token, as a causal LM's mean over targets
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, input_ids, attention_mask, labels):
            return types.SimpleNamespace(loss=input_ids[0, 0].float() + self.w)

    one = torch.tensor([[1, 0, 0]]), torch.ones(1, 3), torch.tensor([[IGNORE, 5, IGNORE]])  # 1 target
    three = torch.tensor([[3, 0, 0, 0]]), torch.ones(1, 4), torch.tensor([[IGNORE, 5, 5, 5]])  # 3 targets
    assert split_loss(Fixed(), [one, three]) == pytest.approx((1 * 1 + 3 * 3) / 4)


@pytest.mark.parametrize("name", LORA_TASKS)
def test_evaluate_reports_validation_and_test_and_the_floors_name_both(name: str) -> None:
    task = build_task(name, "synthetic", "tiny", 0)
    metrics = task.evaluate(task.model)
    kinds = ["loss"] + (["accuracy"] if name == "lora-cls" else [])
    assert {f"{split}_{kind}" for split in ("val", "test") for kind in kinds} <= set(metrics)
    assert metrics["val_loss"] != metrics["test_loss"]  # two different sets
    floor = "untrained" if name == "lora" else "majority"
    assert set(task.info["floors"]) == {f"{floor}_val", f"{floor}_test"}


def test_lora_floor_is_the_loss_before_training_and_training_goes_below_it() -> None:
    task = build_task("lora", "synthetic", "tiny", 0)
    before = task.evaluate(task.model)
    floors = task.info["floors"]
    assert (floors["untrained_val"], floors["untrained_test"]) == (before["val_loss"], before["test_loss"])
    _train(task, "adamw", 1e-2, 0.0, 30)
    after = task.evaluate(task.model)
    assert after["val_loss"] < floors["untrained_val"] and after["test_loss"] < floors["untrained_test"]


def test_lora_synthetic_floor_is_one_value_for_every_seed_while_lora_a_differs() -> None:
    """A setting's records must agree on its floor (claims.recorded_floor refuses two values)."""
    tasks = [build_task("lora", "synthetic", "tiny", seed) for seed in (0, 1)]
    assert tasks[0].info["floors"] == tasks[1].info["floors"]
    a = [dict(t.model.named_parameters())[t.traced[0]] for t in tasks]
    assert "lora_A" in tasks[0].traced[0] and not torch.equal(a[0], a[1])


@pytest.mark.parametrize("name", LORA_TASKS)
def test_training_run_writes_finite_metrics(name: str) -> None:
    record = run(RunConfig(name, "sgdsai", 0.5, 0.01, 3, data="synthetic", batch_size=4, gsnr_every=1))
    metrics = record["metrics"]
    assert not metrics["diverged"]
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "diverged")
    assert {"val_loss", "test_loss", "lora_A_rel_change", "lora_A_orth_change_min", "lora_B_norm"} <= set(
        metrics
    )
    assert record["floors"] == build_task(name, "synthetic", "tiny", 0).info["floors"]
    assert record["param_count"] == sum(p.numel() for p in build_task(name, "synthetic", "tiny", 0).model.parameters()
                                        if p.requires_grad)  # fmt: skip


@pytest.mark.parametrize("name", LORA_TASKS)
def test_adam_mini_steps_on_lora_factors(name: str) -> None:
    pytest.importorskip("adam_mini")
    task = build_task(name, "synthetic", "tiny", 0)
    _train(task, "adam-mini", 1e-2, 0.0, 2)
    assert task.evaluate(task.model)["lora_A_orth_change_min"] > 0
