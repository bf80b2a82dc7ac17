"""Low-precision options: float32 math with stochastic rounding, and a bfloat16 momentum buffer."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import clone_params, make_params, run_steps

from sgdsai import SGDSaI, functional
from sgdsai.lowprecision import stochastic_round
from sgdsai.reference import SGDSaIReference

BF16_ULP_AT_1 = 2.0**-7


def test_stochastic_rounding_is_unbiased_between_neighbours() -> None:
    x = torch.full((200_000,), 1.0 + 0.3 * BF16_ULP_AT_1)
    got = stochastic_round(x, torch.bfloat16).float()
    assert set(got.unique().tolist()) == {1.0, 1.0 + BF16_ULP_AT_1}
    assert (got == 1.0 + BF16_ULP_AT_1).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert (-got).mean().item() == pytest.approx(-x[0].item(), abs=2e-4)


def test_stochastic_rounding_keeps_exact_values_and_specials() -> None:
    x = torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), 3.0e38])
    x = torch.cat([x, torch.tensor([float("nan")])])
    got = stochastic_round(x, torch.bfloat16)
    assert torch.equal(got[:6], x[:6].bfloat16())
    assert got[-1].isnan()
    assert got[6] in (x[6:7].bfloat16().float(), torch.tensor(float("inf")))


def test_stochastic_rounding_keeps_updates_that_nearest_rounding_drops() -> None:
    """1000 steps of -1e-4 on a bfloat16 weight of 1: half an ulp is 2e-3, so round-to-nearest never
    moves; stochastic rounding moves by -0.1 on average (each weight is an independent walk)."""
    results = {}
    for sr in (False, True):
        w = torch.ones(4096, dtype=torch.bfloat16, requires_grad=True)
        opt = SGDSaI([w], 1e-4, 0.0, 0.0, stochastic_rounding=sr)
        opt.state[w]["lr_scale"] = torch.tensor(1.0)
        for _ in range(1000):
            w.grad = torch.ones_like(w)
            opt.step()
        results[sr] = w.float().mean().item()
    assert results[False] == 1.0
    assert results[True] == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.0}, {"maximize": True, "weight_decay": 0.1}])
def test_fp32_math_path_matches_reference_in_float64(monkeypatch, kwargs: dict) -> None:
    """On float64 tensors the lifted eager loop rounds nothing (the float32 g-SNR scale aside);
    torch's SGD kernel, which would take them (nothing is rounded to bfloat16), is refused."""
    monkeypatch.setattr(functional, "_torch_kernel_takes", lambda *args: False)
    start = make_params(torch.float64)
    a, b = clone_params(start), clone_params(start)
    run_steps(SGDSaIReference(a, **kwargs), a, 8)
    run_steps(SGDSaI(b, **kwargs, stochastic_rounding=True), b, 8)
    for want, got in zip(a, b):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_bf16_momentum_halves_state_and_tracks_fp32() -> None:
    start = make_params(torch.float32)
    a, b = clone_params(start), clone_params(start)
    run_steps(SGDSaI(a, 0.05), a, 8)
    opt = SGDSaI(b, 0.05, momentum_dtype=torch.bfloat16, stochastic_rounding=True)
    run_steps(opt, b, 8)
    for p in b:
        assert opt.state[p]["momentum_buffer"].dtype == torch.bfloat16
        assert p.dtype == torch.float32
    for want, got in zip(a, b):
        # 8 steps, each off by at most lr * |m| * 2**-8 with |m| < 5 here
        torch.testing.assert_close(got, want, rtol=0, atol=8 * 0.05 * 5 * 2**-8)


@pytest.mark.parametrize("sr", [False, True])
def test_bf16_weights_track_fp32_weights(sr: bool) -> None:
    torch.manual_seed(0)
    start = make_params(torch.float32)
    a = clone_params(start)
    b = [p.detach().bfloat16().requires_grad_() for p in start]
    run_steps(SGDSaI(a, 0.05), a, 8)
    run_steps(SGDSaI(b, 0.05, stochastic_rounding=sr), b, 8)
    for want, got in zip(a, b):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), want, rtol=2**-6, atol=2**-6)


def test_resume_keeps_bf16_momentum() -> None:
    start = make_params(torch.float32)
    params = clone_params(start)
    opt = SGDSaI(params, 0.05, momentum_dtype=torch.bfloat16)
    run_steps(opt, params, 3)
    saved = copy.deepcopy(opt.state_dict())
    fresh = SGDSaI(clone_params(start), 0.05, momentum_dtype=torch.bfloat16)
    fresh.load_state_dict(saved)
    for state, old in zip(fresh.state.values(), opt.state.values()):
        assert state["momentum_buffer"].dtype == torch.bfloat16
        assert torch.equal(state["momentum_buffer"], old["momentum_buffer"])
