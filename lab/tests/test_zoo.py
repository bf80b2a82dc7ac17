"""The optimizer registry builds every listed optimizer, and wires each the way it says."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from sgdsai import SGDSaI
from sgdsai_lab.tasks import build_task
from sgdsai_lab.zoo import OPTIMIZERS, build_optimizer, decay_groups, state_bytes


def _tiny_task(seed: int = 0):
    return build_task("vit", "synthetic", "tiny", seed, batch_size=8)


def _steps(name: str, steps: int = 2, lr: float | None = None):
    task = _tiny_task()
    opt = build_optimizer(name, task.model, OPTIMIZERS[name].lr if lr is None else lr, 0.01, task.info)
    for step in range(steps):
        opt.zero_grad()
        task.loss(task.model, task.batch(step)).backward()
        opt.step()
    return task, opt


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_listed_optimizer_builds_and_moves_every_parameter(name: str) -> None:
    package = OPTIMIZERS[name].package
    if package and importlib.util.find_spec(package.replace("-", "_")) is None:
        pytest.skip(f"{package} is not installed")
    start = {n: p.detach().clone() for n, p in _tiny_task().model.named_parameters()}
    task, opt = _steps(name)
    moved = [n for n, p in task.model.named_parameters() if not torch.equal(p, start[n])]
    assert len(moved) == len(start)
    assert state_bytes(opt) > 0


def test_decay_groups_decay_matrices_only() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    decayed, plain = decay_groups(list(model.named_parameters()), 0.1)
    assert decayed["param_names"] == ["0.weight"] and decayed["weight_decay"] == 0.1
    assert plain["param_names"] == ["0.bias", "1.weight", "1.bias"] and plain["weight_decay"] == 0.0


def test_sgdsai_modes_are_the_paper_and_released_code_flags() -> None:
    model = torch.nn.Linear(3, 2)
    paper = build_optimizer("sgdsai", model, 0.1, 0.0)
    official = build_optimizer("sgdsai-official", model, 0.1, 0.0)
    assert isinstance(paper, SGDSaI) and isinstance(official, SGDSaI)
    assert (paper.defaults["normalize"], paper.defaults["unbiased"]) == (True, False)
    assert (official.defaults["normalize"], official.defaults["unbiased"]) == (False, True)


def test_official_mode_trains_like_the_released_package() -> None:
    pytest.importorskip("sgd_sai")
    ours, _ = _steps("sgdsai-official", steps=3, lr=1e-3)
    theirs, _ = _steps("sgd-sai-pkg", steps=3, lr=1e-3)
    for (name, a), (_, b) in zip(ours.model.named_parameters(), theirs.model.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)


def test_sgdsai_keeps_half_of_adamws_state() -> None:
    _, sgdsai = _steps("sgdsai", steps=1)
    task, adamw = _steps("adamw", steps=1)
    param_bytes = sum(p.numel() * p.element_size() for p in task.model.parameters())
    assert param_bytes <= state_bytes(sgdsai) < param_bytes * 1.01
    assert 2 * param_bytes <= state_bytes(adamw) < 2 * param_bytes * 1.01


def test_unknown_optimizer_lists_the_choices() -> None:
    with pytest.raises(KeyError, match="adamw"):
        build_optimizer("adam", torch.nn.Linear(2, 2), 0.1, 0.0)
