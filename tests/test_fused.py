"""The fused (compiled) step: which tensors it takes, and that it compiles once."""

from __future__ import annotations

import copy
import os
import shutil

import pytest
import torch
from conftest import clone_params, make_params, run_steps

from sgdsai import SGDSaI, fused

pytestmark = pytest.mark.skipif(
    not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++", "clang++")),
    reason="torch.compile on CPU needs a C++ compiler",
)


@pytest.fixture
def kernel_calls(monkeypatch) -> list[int]:
    """Count the compiled kernels' calls (the element counts they were given)."""
    calls: list[int] = []
    compiled = fused._compiled()

    def spy(fn):
        def wrapper(theta, *rest):
            calls.append(theta.numel())
            return fn(theta, *rest)

        return wrapper

    monkeypatch.setattr(fused, "_compiled", lambda: tuple(spy(fn) for fn in compiled))
    return calls


def test_small_and_noncontiguous_tensors_take_the_eager_path(kernel_calls: list[int]) -> None:
    shapes = [(fused.MIN_NUMEL,), (fused.MIN_NUMEL - 1,), (3, 5)]
    start = [*make_params(torch.float32, shapes=shapes), torch.randn(300, 400).t().requires_grad_()]
    a, b = clone_params(start), clone_params(start)
    b[-1] = b[-1].detach().t().contiguous().t().requires_grad_()  # clone_params made it contiguous
    assert not b[-1].is_contiguous()
    run_steps(SGDSaI(a, 0.1, foreach=False), a, 3)
    run_steps(SGDSaI(b, 0.1, fused=True), b, 3)
    assert kernel_calls == [fused.MIN_NUMEL] * 3
    for x, y in zip(a, b):
        torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_schedules_and_new_shapes_do_not_recompile(monkeypatch, momentum: float) -> None:
    from torch._dynamo.utils import counters

    monkeypatch.setattr(fused, "MIN_NUMEL", 0)
    params = make_params(torch.float32, shapes=[(6, 5), (7,)])
    opt = SGDSaI(params, 0.1, momentum, fused=True)
    run_steps(opt, params, 2)  # compiles, at most once per kernel
    before = counters["stats"]["unique_graphs"]
    more = make_params(torch.float32, seed=1, shapes=[(3, 4, 2), (50,), (9, 9)])
    opt.add_param_group({"params": more, "lr": 0.3})
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + t))
    for step in range(4):
        for g in opt.param_groups:
            g["momentum"] = momentum * (1 - 0.1 * step)
        run_steps(opt, params + more, 1)
        sched.step()
    assert counters["stats"]["unique_graphs"] == before


def test_fused_and_foreach_together_raise_at_construction() -> None:
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        SGDSaI(make_params(torch.float32), fused=True, foreach=True)


def test_resume_continues_bit_identically(monkeypatch) -> None:
    monkeypatch.setattr(fused, "MIN_NUMEL", 0)
    start = make_params(torch.float32)
    straight, resumed = clone_params(start), clone_params(start)
    opt = SGDSaI(straight, 0.05, fused=True)
    run_steps(opt, straight, 3)
    saved = copy.deepcopy(opt.state_dict())
    run_steps(opt, straight, 1)
    first = SGDSaI(resumed, 0.05, fused=True)
    run_steps(first, resumed, 3)
    fresh = SGDSaI(resumed, 0.05, fused=True)
    fresh.load_state_dict(saved)
    run_steps(fresh, resumed, 1)
    for p, q in zip(resumed, straight):
        assert torch.equal(p, q)
