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


def test_small_and_noncontiguous_tensors_are_left_to_the_other_kernels(kernel_calls: list[int]) -> None:
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


def test_functional_fused_and_foreach_together_raise() -> None:
    from sgdsai.functional import sgdsai

    params = make_params(torch.float32)
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        sgdsai(params, [torch.ones_like(p) for p in params], [None] * len(params), [1.0] * len(params),
               lr=0.1, momentum=0.9, weight_decay=0.0, fused=True, foreach=True)  # fmt: skip


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


def one_step_replay(theta: torch.Tensor, g: torch.Tensor, m: torch.Tensor | None, hyper: dict) -> tuple:
    """One SGD-SaI step in float64 from the stored values, rounded once to the stored dtypes."""
    lr, mu, wd, scale = hyper["lr"], hyper["momentum"], hyper["weight_decay"], hyper["scale"]
    g64, theta64 = g.double(), theta.detach().double()
    if mu == 0:
        return ((1 - lr * wd) * theta64 - lr * scale * g64).to(theta.dtype), None
    m64 = g64 if m is None else mu * m.double() + (1 - mu) * g64
    return ((1 - lr * wd) * theta64 - lr * scale * m64).to(theta.dtype), m64.to(
        m.dtype if m is not None else g.dtype
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_low_precision_fused_step_is_float64_math_rounded_once(kernel_calls, dtype, momentum) -> None:
    """Float32 coefficients: in bfloat16, mu = 0.9 would be 0.8984 and 1 - lr * wd = 0.99 would be
    0.9883, and many elements would differ from the float64 step by an ulp or more."""
    n = fused.MIN_NUMEL + 3
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(n, generator=gen).to(dtype).requires_grad_()
    hyper = {"lr": 0.5, "momentum": momentum, "weight_decay": 0.02, "scale": 0.7}
    opt = SGDSaI([theta], hyper["lr"], momentum, hyper["weight_decay"], fused=True)
    opt.state[theta]["lr_scale"] = torch.tensor(hyper["scale"])
    for _ in range(3):
        theta.grad = torch.randn(n, generator=gen).to(dtype)
        m = opt.state[theta].get("momentum_buffer")
        want_theta, want_m = one_step_replay(theta, theta.grad, m, hyper)
        # the size of the terms: float32 math is off by a float32 ulp of these, not of the result
        size = (
            theta.detach().double().abs() + theta.grad.double().abs() + (0 if m is None else m.double().abs())
        )
        opt.step()
        got = [(theta.detach(), want_theta)]
        if momentum:
            got.append((opt.state[theta]["momentum_buffer"], want_m))
        for x, want in got:
            assert x.dtype == dtype
            # float32 math resolves some near-ties differently (0.7% here); bf16 coefficients: 36%
            assert (x != want).float().mean().item() < 0.02
            ulp = torch.finfo(dtype).eps * want.double().abs() + 1e-6 * size
            assert ((x.double() - want.double()).abs() <= ulp).all()
    assert kernel_calls == [n] * 3


def test_bf16_momentum_buffer_is_a_fused_kernel_input(kernel_calls) -> None:
    n = fused.MIN_NUMEL
    start = make_params(torch.float32, shapes=[(n,)])
    a, b = clone_params(start), clone_params(start)
    eager = SGDSaI(a, 0.05, momentum_dtype=torch.bfloat16)
    compiled = SGDSaI(b, 0.05, momentum_dtype=torch.bfloat16, fused=True)
    run_steps(eager, a, 3)
    run_steps(compiled, b, 3)
    assert kernel_calls == [n] * 3
    assert compiled.state[b[0]]["momentum_buffer"].dtype == torch.bfloat16
    torch.testing.assert_close(b[0], a[0], rtol=1e-5, atol=1e-6)


def test_without_weight_decay_cpu_tensors_take_torchs_kernel_not_a_compiled_one(kernel_calls) -> None:
    start = make_params(torch.float32, shapes=[(fused.MIN_NUMEL,)])
    a, b = clone_params(start), clone_params(start)
    run_steps(SGDSaI(a, 0.1, weight_decay=0.0, foreach=False), a, 3)
    run_steps(SGDSaI(b, 0.1, weight_decay=0.0, fused=True), b, 3)
    assert kernel_calls == []
    torch.testing.assert_close(b[0], a[0], rtol=0, atol=0)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_step_between_forward_and_backward_raises_as_on_the_other_paths(kernel_calls, momentum) -> None:
    """The kernel writes through storage aliases; the parameter's version counter must still move."""
    p = torch.nn.Parameter(torch.randn(fused.MIN_NUMEL))
    opt = SGDSaI([p], 0.1, momentum, fused=True)
    p.grad = torch.randn_like(p)
    opt.step()
    x = torch.randn_like(p, requires_grad=True)
    y = (p * x).sum()  # saves p for backward
    p.grad = torch.randn_like(p)
    opt.step()
    assert kernel_calls == [fused.MIN_NUMEL] * 2
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
