"""The dispatcher and its leaf kernels: which kernel takes which tensor, and that each computes the
same step (the oracle comparisons are in test_parity.py)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from conftest import clone_params, make_params, run_steps

from sgdsai import SGDSaI, functional, fused
from sgdsai.functional import sgdsai

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
NO_CXX = not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++", "clang++"))

HYPER = [
    pytest.param({}, id="defaults"),
    pytest.param({"maximize": True}, id="maximize"),
    pytest.param({"momentum": 0.0}, id="no momentum"),
    pytest.param({"momentum": 0.0, "maximize": True}, id="maximize without momentum"),
    pytest.param({"weight_decay": 0.0}, id="no weight decay"),
]


def trajectory(start: list[torch.Tensor], steps: int = 6, **kwargs) -> list[torch.Tensor]:
    params = clone_params(start)
    run_steps(SGDSaI(params, 0.1, **kwargs), params, steps)
    return params


@pytest.mark.parametrize("kwargs", HYPER)
@pytest.mark.parametrize("limit", [1, 5, 30, 31, 61, 1 << 30])
def test_multi_tensor_gives_the_single_tensor_result_for_any_chunk_limit(monkeypatch, kwargs, limit) -> None:
    """SHAPES have 30, 5, 1, 24, 1 and 21 elements: limit 1 splits at every tensor, 30 and 31
    fall around the first tensor, 61 around the first four."""
    start = make_params(torch.float64)
    want = trajectory(start, foreach=False, **kwargs)
    monkeypatch.setattr(functional, "FOREACH_CHUNK_NUMEL", limit)
    got = trajectory(start, foreach=True, **kwargs)
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("limit", [1, 30, 1 << 30])
def test_low_precision_multi_tensor_chunks_change_nothing(monkeypatch, limit) -> None:
    """bfloat16 takes the decay-then-add route; chunking must not change a single bit."""
    start = [p.detach().bfloat16().requires_grad_() for p in make_params()]
    monkeypatch.setattr(functional, "FOREACH_CHUNK_NUMEL", 1 << 30)
    want = trajectory(start, foreach=True)
    monkeypatch.setattr(functional, "FOREACH_CHUNK_NUMEL", limit)
    got = trajectory(start, foreach=True)
    for a, b in zip(want, got):
        assert torch.equal(a, b)


def kernel_spy(monkeypatch) -> dict[str, list[int]]:
    """Record which kernel got which tensors (by element count)."""
    calls: dict[str, list[int]] = {}
    for name in ("_torch_kernel_sgdsai", "_single_tensor_sgdsai", "_multi_tensor_sgdsai"):
        kernel = getattr(functional, name)

        def spy(params, *args, _kernel=kernel, _name=name, **kwargs):
            calls.setdefault(_name, []).extend(p.numel() for p in params)
            return _kernel(params, *args, **kwargs)

        monkeypatch.setattr(functional, name, spy)
    return calls


def test_cpu_default_gives_dense_float_tensors_to_torchs_kernel(monkeypatch) -> None:
    calls = kernel_spy(monkeypatch)
    dense = torch.zeros(4, 5, dtype=torch.float32)
    wide = torch.zeros(3, dtype=torch.float64)
    strided = torch.zeros(6, 7).t()
    half = torch.zeros(8, dtype=torch.bfloat16)
    params = [dense, wide, strided, half]
    sgdsai(
        params,
        [torch.ones_like(p) for p in params],
        [None] * 4,
        [1.0] * 4,
        lr=0.1,
        momentum=0.9,
        weight_decay=0.0,
    )
    assert calls == {"_torch_kernel_sgdsai": [20, 3], "_single_tensor_sgdsai": [42, 8]}


def test_tensors_the_compiled_kernel_leaves_go_to_foreach_where_it_is_the_default(monkeypatch) -> None:
    """As on CUDA: torch's default picks foreach, and small tensors are not the compiled kernel's."""
    calls = kernel_spy(monkeypatch)
    monkeypatch.setattr(functional, "_default_to_fused_or_foreach", lambda *a, **k: (False, True))
    params = [torch.zeros(5), torch.zeros(3, 2)]
    sgdsai(
        params,
        [torch.ones_like(p) for p in params],
        [None, None],
        [1.0, 1.0],
        lr=0.1,
        momentum=0.9,
        weight_decay=0.1,
        fused=True,
    )
    assert calls == {"_multi_tensor_sgdsai": [5, 6]}


def test_low_precision_options_leave_only_unrounded_tensors_to_torchs_kernel(monkeypatch) -> None:
    calls = kernel_spy(monkeypatch)
    params = [torch.zeros(5), torch.zeros(6, dtype=torch.bfloat16)]
    grads = [torch.ones_like(p) for p in params]
    for flag in ({"stochastic_rounding": True}, {"momentum_dtype": torch.bfloat16}):
        sgdsai(params, grads, [None, None], [1.0, 1.0], lr=0.1, momentum=0.9, weight_decay=0.0, **flag)
    assert calls == {"_torch_kernel_sgdsai": [5], "_single_tensor_sgdsai": [6, 5, 6]}


@pytest.mark.parametrize("kwargs", HYPER)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_kernel_matches_the_eager_loop(monkeypatch, kwargs, dtype) -> None:
    start = make_params(dtype)
    with monkeypatch.context() as patch:
        patch.setattr(functional, "_torch_kernel_takes", lambda *args: False)
        want = trajectory(start, foreach=False, **kwargs)
    got = trajectory(start, foreach=False, **kwargs)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, **tol)


def momentum_then_none(params: list[torch.Tensor], **flags) -> None:
    """Two steps with momentum, then two with the group's momentum set to 0 (buffers kept)."""
    opt = SGDSaI(params, 0.1, **flags)
    run_steps(opt, params, 2)
    opt.param_groups[0]["momentum"] = 0.0
    run_steps(opt, params, 2)


@pytest.mark.parametrize(
    "flags",
    [
        {"foreach": False},
        {"foreach": True},
        pytest.param({"fused": True}, marks=pytest.mark.skipif(NO_CXX, reason="no C++")),
    ],
)
def test_momentum_set_to_zero_mid_run_steps_without_the_kept_buffer(monkeypatch, flags) -> None:
    monkeypatch.setattr(fused, "MIN_NUMEL", 0)
    start = make_params(torch.float64)
    want, got = clone_params(start), clone_params(start)
    with monkeypatch.context() as patch:
        patch.setattr(functional, "_torch_kernel_takes", lambda *args: False)
        momentum_then_none(want, foreach=False)
    momentum_then_none(got, **flags)
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("maximize", [False, True])
def test_torch_kernel_starts_momentum_at_the_first_gradient_and_never_writes_grads(maximize) -> None:
    theta = torch.randn(1000, dtype=torch.float64)
    g = torch.randn(1000, dtype=torch.float64)
    before, g_copy = theta.clone(), g.clone()
    bufs: list[torch.Tensor | None] = [None]
    sgdsai([theta], [g], bufs, [0.5], lr=0.1, momentum=0.9, weight_decay=0.01, maximize=maximize)
    s = -1.0 if maximize else 1.0
    assert torch.equal(g, g_copy)
    assert torch.equal(bufs[0], s * g)  # m_1 = s g_1 exactly
    torch.testing.assert_close(theta, (1 - 0.1 * 0.01) * before - 0.1 * 0.5 * s * g, rtol=1e-15, atol=1e-16)


def test_torch_kernel_decays_every_chunk_once(monkeypatch) -> None:
    """Chunks of 64 bytes (8 float64 elements) over tensors that are not multiples of a chunk."""
    start = make_params(torch.float64, shapes=[(13, 7), (3,), (50,)])
    want = trajectory(start, foreach=False)
    monkeypatch.setattr(functional, "CACHE_CHUNK_BYTES", 64)
    got = trajectory(start, foreach=False)
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, rtol=1e-15, atol=1e-16)


@pytest.mark.parametrize("flags", [{"foreach": False}, {"foreach": True}])
def test_non_contiguous_parameters_step_as_their_contiguous_copies(flags) -> None:
    start = make_params(torch.float64, shapes=[(7, 9), (4, 6)])
    strided = [p.detach().t().contiguous().t().requires_grad_() for p in start]
    assert not strided[0].is_contiguous()
    want = trajectory(start, **flags)
    run_steps(SGDSaI(strided, 0.1, **flags), strided, 6)
    for a, b in zip(want, strided):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("flags", [{"foreach": False}, {"foreach": True}])
def test_complex_parameter_steps_as_its_real_view(flags) -> None:
    z = torch.randn(6, 5, dtype=torch.complex128, requires_grad=True)
    real = torch.view_as_real(z.detach()).clone().requires_grad_()
    opt_z, opt_r = SGDSaI([z], 0.1, **flags), SGDSaI([real], 0.1, **flags)
    for step in range(5):
        g = torch.randn(6, 5, dtype=torch.complex128, generator=torch.Generator().manual_seed(step)) + 0.3
        z.grad, real.grad = g, torch.view_as_real(g).clone()
        opt_z.step()
        opt_r.step()
    torch.testing.assert_close(torch.view_as_real(z.detach()), real.detach(), rtol=1e-12, atol=1e-14)


LR_FLAGS = [
    pytest.param({"foreach": False}, id="default"),
    pytest.param({"foreach": True}, id="foreach"),
    pytest.param({"foreach": False, "momentum_dtype": torch.float32}, id="eager float32 math"),
    pytest.param({"fused": True}, id="fused", marks=pytest.mark.skipif(NO_CXX, reason="no C++ compiler")),
]


@pytest.mark.parametrize("flags", LR_FLAGS)
@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_one_element_tensor_lr_of_any_shape_works_as_its_value(monkeypatch, flags, shape) -> None:
    monkeypatch.setattr(fused, "MIN_NUMEL", 0)
    start = make_params(torch.float64)
    want, got = clone_params(start), clone_params(start)
    run_steps(SGDSaI(want, 0.1, **flags), want, 4)
    run_steps(SGDSaI(got, torch.full(shape, 0.1, dtype=torch.float64), **flags), got, 4)
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_tensor_lr_with_more_elements_raises() -> None:
    params = make_params(torch.float64)
    for p in params:
        p.grad = torch.ones_like(p)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        sgdsai(params, [p.grad for p in params], [None] * len(params), [1.0] * len(params),
               lr=torch.tensor([0.1, 0.2]), momentum=0.9, weight_decay=0.0)  # fmt: skip


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("lr", [0.1, torch.tensor(0.1)], ids=["float lr", "cpu tensor lr"])
def test_cuda_steady_step_never_synchronises(foreach: bool, lr: float | torch.Tensor) -> None:
    """Steady steps read nothing from the device, whether lr is a float or a CPU tensor (as LR
    schedulers keep it)."""
    params = [p.cuda().detach().requires_grad_() for p in make_params(torch.float32)]
    opt = SGDSaI(params, lr, foreach=foreach)
    run_steps(opt, params, 1)
    for p in params:
        p.grad = torch.randn_like(p)
    torch.cuda.set_sync_debug_mode("error")
    try:
        opt.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.cuda
@cuda
def test_cuda_float32_multi_tensor_step_allocates_nothing() -> None:
    params = [torch.zeros(1 << 20, device="cuda", requires_grad=True) for _ in range(8)]
    opt = SGDSaI(params, foreach=True)
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    opt.step()
    assert torch.cuda.max_memory_allocated() - base < 1 << 16
