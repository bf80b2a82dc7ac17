"""Every implementation of SGD-SaI against independent oracles: the reference optimizer, an
Algorithm-1 transcription, torch's SGD and the authors' released package."""

from __future__ import annotations

import os
import shutil
from unittest import mock

import pytest
import torch
from conftest import SHAPES, clone_params, make_params, run_steps, synthetic_grad

from sgdsai import SGDSaI, functional, fused
from sgdsai.reference import SGDSaIReference

# One table drives the parity tests; implementation flags are never in it (tests flip them).
CONFIGS = [
    pytest.param({}, id="defaults"),
    pytest.param({"momentum": 0.0}, id="no momentum"),
    pytest.param({"momentum": 0.5, "weight_decay": 0.1}, id="nonzero weight_decay"),
    pytest.param({"maximize": True}, id="maximize"),
    pytest.param({"maximize": True, "momentum": 0.0}, id="maximize without momentum"),
    pytest.param({"normalize": False, "lr": 1e-3}, id="raw g-SNR"),
    pytest.param({"unbiased": True}, id="unbiased std"),
    pytest.param({"eps": 0.5}, id="large eps"),
    pytest.param({"scale": "numel"}, id="numel"),
    pytest.param({"scale": "numel", "normalize": False, "lr": 1e-3}, id="raw numel"),
]

FROZEN, LORA_A = 0, 5  # indices into SHAPES


def scenario_grad(p: torch.Tensor, step: int, index: int) -> torch.Tensor | None:
    """PyTorch's _compare_between, extended: all grads None at step 2, tensor FROZEN frozen at steps
    3-5, tensor LORA_A with an all-zero gradient at steps 0-1 (a LoRA A behind B = 0)."""
    if step == 2 or (index == FROZEN and 3 <= step <= 5):
        return None
    if index == LORA_A and step < 2:
        return torch.zeros_like(p)
    return synthetic_grad(p, step, index)


def trajectories(kwargs: dict, impls: dict, dtype=torch.float64, steps: int = 12) -> dict:
    start = make_params(dtype)
    out = {}
    for name, build in impls.items():
        params = clone_params(start)
        opt = build(params, kwargs)
        run_steps(opt, params, steps, scenario_grad)
        out[name] = params
    return out


class EagerSGDSaI(SGDSaI):
    """SGDSaI with torch's SGD kernel refused, so that every tensor takes the eager loop."""

    def step(self, closure=None):
        with mock.patch.object(functional, "_torch_kernel_takes", return_value=False):
            return super().step(closure)


IMPLS = {
    "reference": lambda ps, kw: SGDSaIReference(ps, **kw),
    "single": lambda ps, kw: SGDSaI(ps, **kw, foreach=False),  # torch's SGD kernel on CPU
    "eager": lambda ps, kw: EagerSGDSaI(ps, **kw, foreach=False),
    "eager lifted": lambda ps, kw: EagerSGDSaI(ps, **kw, foreach=False, stochastic_rounding=True),
    "foreach": lambda ps, kw: SGDSaI(ps, **kw, foreach=True),
    "fused": lambda ps, kw: SGDSaI(ps, **kw, fused=True),
}
# torch.compile on CPU needs a C++ compiler; without one the fused path is not tested here.
NO_CXX = not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++", "clang++"))
if NO_CXX:
    del IMPLS["fused"]
FLAGS = [
    pytest.param({"foreach": False}, id="single"),
    pytest.param({"foreach": False, "momentum_dtype": torch.float64}, id="eager lifted"),
    pytest.param({"foreach": True}, id="foreach"),
    pytest.param({"fused": True}, id="fused", marks=pytest.mark.skipif(NO_CXX, reason="no C++ compiler")),
]


@pytest.fixture(autouse=True)
def _fused_kernel_on_tiny_tensors(monkeypatch) -> None:
    """The test tensors are tiny; without this the fused path would hand them all to the eager loop."""
    monkeypatch.setattr(fused, "MIN_NUMEL", 0)


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_matches_reference(kwargs: dict) -> None:
    result = trajectories(kwargs, IMPLS)
    start = make_params()
    for name in set(IMPLS) - {"reference"}:
        for want, got in zip(result["reference"], result[name]):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)
    # The scenario really exercised every rule: the frozen and LoRA-A tensors moved in the end.
    for index in (FROZEN, LORA_A, SHAPES.index(())):
        assert not torch.equal(result["single"][index], start[index])


@pytest.mark.parametrize("scale", ["gsnr", "numel"])
def test_non_reference_groups_match_reference(scale: str) -> None:
    """Groups with gsnr_reference=False (here the largest tensors) never set M, on every path."""
    start = make_params()

    def groups(ps):
        return [{"params": [ps[0], ps[3]], "gsnr_reference": False}, {"params": ps[1:3] + ps[4:]}]

    result = trajectories(
        {"scale": scale}, {name: lambda ps, kw, b=build: b(groups(ps), kw) for name, build in IMPLS.items()}
    )
    for name in set(IMPLS) - {"reference"}:
        for want, got in zip(result["reference"], result[name]):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)
    for index in range(len(start)):  # every tensor trained
        assert not torch.equal(result["single"][index], start[index])


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_a_zero_element_tensor_alone_at_the_first_step_never_sets_the_reference(kwargs: dict) -> None:
    """Step 1 has a gradient for the 0-element tensor only; the others first get one at step 2."""
    start = [torch.randn(0, dtype=torch.float64), *make_params(torch.float64, shapes=[(10, 10), (4,)])]
    result = {}
    for name, build in IMPLS.items():
        params = clone_params(start)
        opt = build(params, kwargs)
        run_steps(opt, params, 4, lambda p, step, i: None if step == 0 and i else synthetic_grad(p, step, i))
        result[name] = params
    for name in set(IMPLS) - {"reference"}:
        for want, got in zip(result["reference"], result[name]):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_foreach_matches_forloop(kwargs: dict) -> None:
    result = trajectories(kwargs, {k: IMPLS[k] for k in ("single", "foreach")})
    for a, b in zip(result["single"], result["foreach"]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("flags", FLAGS)
def test_mixed_dtypes_match_reference(flags: dict) -> None:
    start = make_params(torch.float64)
    start = [p.detach().float().requires_grad_() if i % 2 else p for i, p in enumerate(start)]
    a, b = clone_params(start), clone_params(start)
    run_steps(SGDSaIReference(a), a, 10, scenario_grad)
    run_steps(SGDSaI(b, **flags), b, 10, scenario_grad)
    for want, got in zip(a, b):
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_torch_sgd_when_gsnr_is_one(flags: dict, maximize: bool, momentum: float) -> None:
    start = make_params()
    ours, theirs = clone_params(start), clone_params(start)
    opt = SGDSaI(ours, 0.05, momentum, 0.0, **flags, maximize=maximize)
    foreach = flags.get("foreach", False)
    for p in ours:
        opt.state[p]["lr_scale"] = torch.tensor(1.0)  # impose the scale instead of measuring it
    sgd = torch.optim.SGD(theirs, 0.05, momentum, dampening=momentum, maximize=maximize, foreach=foreach)
    run_steps(opt, ours, 10)
    run_steps(sgd, theirs, 10)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_paper_mode_matches_algorithm_1() -> None:
    """Algorithm 1 of the paper, transcribed in float64: every tensor has a gradient at t = 1."""
    shapes = [s for s in SHAPES if s not in ((), (1,))]
    start = make_params(shapes=shapes)
    lr, mu, wd, eps = 0.05, 0.9, 0.01, 1e-8
    theta = [p.detach().clone() for p in start]
    m, gsnr = [None] * len(theta), [None] * len(theta)
    for t in range(10):
        g = [synthetic_grad(p, t, i) for i, p in enumerate(theta)]
        if t == 0:
            for i, gi in enumerate(g):
                var = ((gi - gi.mean()) ** 2).mean()  # G_var = (1/d) sum (g - mean)^2
                gsnr[i] = gi.pow(2).sum().sqrt() / (var.sqrt() + eps)
            gmax = max(gsnr)
            gsnr = [x / gmax for x in gsnr]
        for i, gi in enumerate(g):
            m[i] = gi if t == 0 else mu * m[i] + (1 - mu) * gi
            theta[i] = theta[i] - lr * wd * theta[i]
            theta[i] = theta[i] - lr * gsnr[i] * m[i]
    ours = clone_params(start)
    run_steps(SGDSaI(ours, lr, mu, wd, eps), ours, 10)
    for want, got in zip(theta, ours):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("foreach", [False, True])
def test_official_mode_matches_released_package(foreach: bool, capsys) -> None:
    sgd_sai = pytest.importorskip("sgd_sai")
    shapes = [s for s in SHAPES if s not in ((), (1,))]
    start = make_params(shapes=shapes)
    ours, theirs = clone_params(start), clone_params(start)
    kwargs = dict(lr=1e-3, momentum=0.9, weight_decay=0.05, eps=1e-8)
    run_steps(SGDSaI(ours, **kwargs, normalize=False, unbiased=True, foreach=foreach), ours, 10)
    run_steps(sgd_sai.SGD_sai(theirs, **kwargs), theirs, 10)
    capsys.readouterr()  # the released package prints a banner
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_normalised_equals_raw_with_rescaled_hyperparameters() -> None:
    """normalized(lr, wd) == raw(lr / M, wd * M): the paper and the code differ by M alone."""
    start = make_params(shapes=[s for s in SHAPES if s not in ((), (1,))])
    a, b = clone_params(start), clone_params(start)
    opt = SGDSaI(a, 0.1, 0.9, 0.01)
    run_steps(opt, a, 8)
    big_m = opt.param_groups[0]["gsnr_max"]  # fixed at the first step
    run_steps(SGDSaI(b, 0.1 / big_m, 0.9, 0.01 * big_m, normalize=False), b, 8)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-9)


def test_raw_numel_mode_matches_the_nightly_rule() -> None:
    """The authors' unreleased v1.1.0-nightly (commit 6c13d90), transcribed: scale sqrt(numel),
    unnormalised, measured at the first step; m_1 = g_1, then EMA; decoupled decay."""
    start = make_params()
    lr, mu, wd = 1e-3, 0.9, 0.05
    theta = [p.detach().clone() for p in start]
    m = [None] * len(theta)
    scale = [t.numel() ** 0.5 for t in theta]
    for t in range(10):
        for i, ti in enumerate(theta):
            gi = synthetic_grad(ti, t, i)
            m[i] = gi.clone() if m[i] is None else m[i].mul(mu).add(gi, alpha=1 - mu)
            theta[i] = ti.mul(1 - wd * lr).add(m[i], alpha=-lr * scale[i])
    ours = clone_params(start)
    run_steps(SGDSaI(ours, lr, mu, wd, scale="numel", normalize=False), ours, 10)
    for want, got in zip(theta, ours):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)
