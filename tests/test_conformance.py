"""SGDSaI against the generic properties that torch.optim's own optimizers are tested for.

Modelled on the OptimizerInfo tests of pytorch's `test/test_optim.py` (`TestOptimRenewed`) with
`torch/testing/_internal/common_optimizers.py`; each test here is named for the property. The
generic tests that do not apply to SGD-SaI, and why, are listed in `docs/migration.md`
("torch.optim conformance"). The toy problem is torch's, $(W x + b)^2$ summed; its gradients are
large, so the configurations use learning rates below the default 1, which overshoots it.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import shutil

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau, StepLR
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from sgdsai import SGDSaI, fused

#: SGD-SaI's counterpart of `optim_inputs_func_sgd`: hyperparameters and flags that combine freely.
CONFIGS = [
    pytest.param({"lr": 1e-2}, id="default"),
    pytest.param({"lr": 1e-3}, id="small-lr"),
    pytest.param({"lr": 1e-2, "momentum": 0.0}, id="no-momentum"),
    pytest.param({"lr": 1e-2, "weight_decay": 0.5}, id="weight-decay"),
    pytest.param({"lr": 1e-2, "weight_decay": 0.1, "maximize": True}, id="maximize"),
    pytest.param({"lr": 1e-3, "normalize": False}, id="raw"),
    pytest.param({"lr": 1e-2, "unbiased": True}, id="unbiased"),
    pytest.param({"lr": 1e-2, "scale": "numel"}, id="numel"),
    pytest.param({"lr": 1e-2, "momentum_dtype": torch.bfloat16}, id="bf16-momentum"),
]
has_compiler = pytest.mark.skipif(
    not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++", "clang++")),
    reason="torch.compile on CPU needs a C++ compiler",
)
#: The implementation flags (torch's "global cliquey" kwargs); `fused` takes the compiled kernel
#: even on these small tensors (see `_fused_kernel_on_tiny_tensors`).
MIN_NUMEL = fused.MIN_NUMEL  # before any test patches it
FUSED = pytest.param({"fused": True}, id="fused", marks=has_compiler)
IMPLS = [pytest.param({"foreach": False}, id="single"), pytest.param({"foreach": True}, id="foreach"), FUSED]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def _fused_kernel_on_tiny_tensors(monkeypatch) -> None:
    """The test tensors are tiny; without this `fused=True` would give them all to other kernels."""
    monkeypatch.setattr(fused, "MIN_NUMEL", 0)


def toy(device: str = "cpu", dtype: torch.dtype = torch.float32, contiguous: bool = True):
    """torch's weight, bias and input of the direction tests."""
    if contiguous:
        weight, bias = torch.randn(10, 5, dtype=dtype), torch.randn(10, dtype=dtype)
    else:
        weight, bias = torch.randn(10, 5, 2, dtype=dtype)[..., 0], torch.randn(10, 2, dtype=dtype)[..., 0]
    return (
        nn.Parameter(weight.to(device)),
        nn.Parameter(bias.to(device)),
        torch.randn(5, dtype=dtype, device=device),
    )


def toy_loss(weight, bias, x) -> torch.Tensor:
    return (weight.mv(x) + bias).pow(2).sum()


def closure_for(opt, weight, bias, x):
    def closure():
        opt.zero_grad()
        loss = toy_loss(weight, bias, x)
        loss.backward()
        return loss

    return closure


def small_model(dtype: torch.dtype) -> tuple[nn.Module, list[torch.Tensor]]:
    """torch's model for implementation parity, plus a 0-d parameter with its own gradient."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1), nn.Sigmoid()).to(dtype)
    scalar = torch.empty((), dtype=dtype, requires_grad=True)
    scalar.grad = torch.rand_like(scalar)
    return model, [*model.parameters(), scalar]


def assert_same(a, b, path: str = "state_dict") -> None:
    """Equal structure, keys and values; tensors equal in value, dtype and device."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert (a.dtype, a.device, a.shape) == (b.dtype, b.device, b.shape), path
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# --- construction errors ----------------------------------------------------------------------


def test_construction_errors_match_torch() -> None:
    """`get_error_inputs_for_all_optims` and SGD's momentum error, raised the same way."""
    p, q = nn.Parameter(torch.randn(1, 1)), nn.Parameter(torch.randn(1, 1))
    with pytest.raises(TypeError, match="params argument given to the optimizer should be an iterable"):
        SGDSaI(p)
    with pytest.warns(UserWarning, match="a parameter group with duplicate parameters"):
        SGDSaI([p, p])
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        SGDSaI([{"params": p}, {"params": p}])
    with pytest.raises(ValueError, match="all optimizer params should be with/without names"):
        SGDSaI([("weight", p), q])
    with pytest.raises(ValueError, match="all optimizer param groups should be with/without names"):
        SGDSaI([{"params": [p], "lr": 1e-2}, {"params": [("weight", q)]}])
    with pytest.raises(ValueError, match=r"Invalid momentum value: -0.5"):
        SGDSaI([p], lr=1e-2, momentum=-0.5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": "0.1"}, TypeError, "lr must be a real number, not '0.1'"),
        ({"momentum": None}, TypeError, "momentum must be a real number, not None"),
        ({"weight_decay": True}, TypeError, "weight_decay must be a real number, not True"),
        ({"eps": [1e-8]}, TypeError, r"eps must be a real number, not \[1e-08\]"),
        ({"maximize": 1}, TypeError, "maximize must be True or False, not 1"),
        ({"normalize": "yes"}, TypeError, "normalize must be True or False, not 'yes'"),
        ({"foreach": 0}, TypeError, "foreach must be True, False or None, not 0"),
        (
            {"momentum_dtype": "bfloat16"},
            TypeError,
            "momentum_dtype must be None or a torch.dtype, not 'bfloat16'",
        ),
        (
            {"momentum_dtype": torch.int8},
            ValueError,
            "momentum_dtype must be None or one of .*bfloat16.*, not torch.int8",
        ),
        ({"momentum_dtype": torch.complex64}, ValueError, "momentum_dtype must be None or one of"),
        ({"fused": True, "foreach": True}, RuntimeError, "`fused` and `foreach` cannot be `True` together"),
        ({"lr": torch.tensor([0.1, 0.2])}, ValueError, "Tensor lr must be 1-element"),
    ],
)
def test_bad_hyperparameters_and_flags_raise_at_construction_naming_the_argument(
    kwargs, error, message
) -> None:
    p = nn.Parameter(torch.randn(3))
    with pytest.raises(error, match=message):
        SGDSaI([p], **kwargs)
    with pytest.raises(error, match=message):  # the same check for a group's own values
        SGDSaI([{"params": [p], **kwargs}])


# --- the update goes the right way ------------------------------------------------------------

SCHEDULERS = [
    pytest.param(None, id="no-scheduler"),
    pytest.param(lambda opt: StepLR(opt, gamma=0.9, step_size=10), id="steplr"),
    pytest.param(lambda opt: ReduceLROnPlateau(opt), id="plateau"),
]


def step_scheduler(scheduler, loss) -> None:
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(loss)
    elif scheduler is not None:
        scheduler.step()


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("config", CONFIGS)
def test_single_tensor_step_goes_the_right_direction(config, contiguous, scheduler) -> None:
    weight, bias, x = toy(contiguous=contiguous)
    opt = SGDSaI([weight, bias], **config, foreach=False)
    sched = scheduler(opt) if scheduler else None
    closure = closure_for(opt, weight, bias, x)
    initial = closure().item()
    for _ in range(20):
        loss = opt.step(closure)
        step_scheduler(sched, loss)
    final = closure().item()
    assert final > initial if config.get("maximize") else final < initial


@pytest.mark.parametrize("scheduler", SCHEDULERS[1:])
def test_param_group_with_lr_scheduler_goes_the_right_direction(scheduler) -> None:
    weight, bias, x = toy()
    opt = SGDSaI([{"params": [weight]}, {"params": [bias], "lr": 0.01}], lr=1e-2)
    sched = scheduler(opt)
    closure = closure_for(opt, weight, bias, x)
    initial = closure().item()
    for _ in range(20):
        step_scheduler(sched, opt.step(closure))
    assert closure().item() < initial


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_param_groups_weight_decay(config, impl) -> None:
    weight, bias, x = toy()
    opt = SGDSaI(
        [{"params": [weight], **config, **impl}, {"params": [bias], **config, **impl, "weight_decay": 0.0}]
    )
    initial = toy_loss(weight, bias, x).item()
    for _ in range(20):
        loss = closure_for(opt, weight, bias, x)()
        opt.step()
    assert loss.item() > initial if config.get("maximize") else loss.item() < initial


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_param_groups_lr(config, impl) -> None:
    """A group's lr overrides the default; a group at lr 1e-28 does not move."""
    weight, bias, x = toy()
    irrelevant = nn.Parameter(torch.randn(2))
    before = irrelevant.detach().clone()
    opt = SGDSaI([{"params": [weight, bias], **config, **impl}, {"params": [irrelevant]}], lr=1e-28)
    initial = toy_loss(weight, bias, x).item()
    for _ in range(20):
        loss = closure_for(opt, weight, bias, x)()
        irrelevant.grad = torch.rand_like(irrelevant)
        opt.step()
    assert loss.item() > initial if config.get("maximize") else loss.item() < initial
    assert torch.equal(irrelevant, before)


# --- implementations agree ---------------------------------------------------------------------


def compare_implementations(kwargs_a, kwargs_b, dtype, tolerances=None) -> None:
    """torch's `_compare_between`: 7 steps, no gradients at step 2, a layer frozen at steps 3-4;
    parameters and every state entry equal after each step."""
    x = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=dtype).reshape(3, 2)
    runs = []
    for kwargs in (kwargs_a, kwargs_b):
        model, params = small_model(dtype)
        runs.append((model, params, SGDSaI(params, **kwargs)))
    for i in range(7):
        for model, _, opt in runs:
            opt.zero_grad()
            model[2].requires_grad_(i not in (3, 4))
            if i != 2:
                model(x).sum().backward()
            opt.step()
        (_, params_a, opt_a), (_, params_b, opt_b) = runs
        for p, q in zip(params_a, params_b):
            torch.testing.assert_close(p, q, **(tolerances or {}))
            assert opt_a.state[p].keys() == opt_b.state[q].keys()
            for key in opt_a.state[p]:
                torch.testing.assert_close(opt_a.state[p][key], opt_b.state[q][key], **(tolerances or {}))


@pytest.mark.parametrize("impl", [pytest.param({"foreach": True}, id="foreach"), FUSED])
@pytest.mark.parametrize("config", CONFIGS)
def test_foreach_and_fused_match_the_single_tensor_loop(config, impl) -> None:
    compare_implementations({**config, "foreach": False}, {**config, **impl}, torch.float64)


@has_compiler
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_compiled_fused_kernel_matches_the_single_tensor_loop(monkeypatch, dtype) -> None:
    monkeypatch.setattr(fused, "MIN_NUMEL", MIN_NUMEL)  # the real threshold, on a tensor above it
    start = torch.randn(fused.MIN_NUMEL + 3, dtype=dtype)
    runs = []
    for kwargs in ({"foreach": False}, {"fused": True}):
        p = start.clone().requires_grad_()
        runs.append((p, SGDSaI([p], 0.5, weight_decay=0.1, **kwargs)))
    for step in range(3):
        g = torch.randn(start.shape, dtype=dtype, generator=torch.Generator().manual_seed(step)) + 0.1
        for p, opt in runs:
            p.grad = g.clone()
            opt.step()
    (p, opt_p), (q, opt_q) = runs
    torch.testing.assert_close(p, q)
    torch.testing.assert_close(opt_p.state[p]["momentum_buffer"], opt_q.state[q]["momentum_buffer"])


def test_mixed_dtypes_foreach_matches_the_single_tensor_loop() -> None:
    """`test_mixed_device_dtype` on one device: tensors of four dtypes in one group."""
    dtypes = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
    start = [torch.rand(2, 3, dtype=dtype) for dtype in dtypes]
    grads = [torch.rand(2, 3, dtype=dtype) for dtype in dtypes]
    finals = []
    for foreach in (False, True):
        params = [t.clone().requires_grad_() for t in start]
        opt = SGDSaI(params, 0.1, foreach=foreach)
        for _ in range(7):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
        finals.append((params, opt))
    (params_a, opt_a), (params_b, opt_b) = finals
    for p, q in zip(params_a, params_b):
        rtol, atol = torch.testing._comparison.get_tolerances(p.dtype, rtol=None, atol=None)
        torch.testing.assert_close(p, q, rtol=5 * rtol, atol=5 * atol)
        for key in opt_a.state[p]:
            torch.testing.assert_close(opt_a.state[p][key], opt_b.state[q][key], rtol=5 * rtol, atol=5 * atol)


@pytest.mark.parametrize("impl", IMPLS[:2])
@pytest.mark.parametrize("config", [c for c in CONFIGS if "momentum_dtype" not in c.values[0]])
def test_complex_parameters_step_like_their_real_views(config, impl) -> None:
    """torch's `test_complex`: complex tensors mixed with a real one, every step identical."""
    complex_params = [
        torch.randn(10, 5, dtype=torch.complex64, requires_grad=True),
        torch.randn(10, dtype=torch.complex64, requires_grad=True),
        torch.randn(10, 5, dtype=torch.float32, requires_grad=True),
    ]
    real_params = [
        (torch.view_as_real(p) if p.is_complex() else p).detach().clone().requires_grad_()
        for p in complex_params
    ]
    opt_c, opt_r = SGDSaI(complex_params, **config, **impl), SGDSaI(real_params, **config, **impl)
    for _ in range(3):
        for c, r in zip(complex_params, real_params):
            r.grad = torch.randn_like(r)
            c.grad = torch.view_as_complex(r.grad.clone()) if c.is_complex() else r.grad.clone()
        opt_c.step()
        opt_r.step()
        for c, r in zip(complex_params, real_params):
            assert torch.equal(torch.view_as_real(c) if c.is_complex() else c, r)


def test_default_dtype_does_not_change_the_state_dtypes() -> None:
    """`test_set_default_dtype_works_with_foreach`: scales stay float32 whatever the default."""
    old = torch.get_default_dtype()
    try:
        for default in (torch.float64, torch.float16):
            torch.set_default_dtype(default)
            p = nn.Parameter(torch.randn(4, 3, dtype=torch.float32))
            opt = SGDSaI([p], foreach=True)
            p.grad = torch.randn(4, 3, dtype=torch.float32)
            opt.step()
            assert opt.state[p]["lr_scale"].dtype == torch.float32
            assert opt.state[p]["momentum_buffer"].dtype == torch.float32
    finally:
        torch.set_default_dtype(old)


# --- steps that must do nothing --------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_step_is_a_noop_when_params_have_no_grad(config, impl) -> None:
    params = [torch.randn(2, 3) for _ in range(2)]
    before = [p.clone() for p in params]
    opt = SGDSaI(params, **config, **impl)
    opt.step(lambda: torch.tensor([1.0]))
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert not any(opt.state.values())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_step_is_a_noop_for_zero_first_grads_even_with_weight_decay(config, impl) -> None:
    """torch skips this check under weight decay, which moves its parameters; SGD-SaI defers a
    zero first gradient, so the tensor stays untouched, decay included."""
    param = torch.randn(5, 1, requires_grad=True)
    before = param.detach().clone()
    opt = SGDSaI([param], **config, **impl)
    param.grad = torch.zeros_like(param)
    opt.step(lambda: torch.tensor([1.0]))
    assert torch.equal(param, before)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_grads_are_never_modified(config, impl) -> None:
    weight, bias, x = toy()
    opt = SGDSaI([weight, bias], **config, **impl)
    for _ in range(3):
        closure_for(opt, weight, bias, x)()
        grads = [weight.grad.clone(), bias.grad.clone()]
        opt.step()
        assert torch.equal(weight.grad, grads[0]) and torch.equal(bias.grad, grads[1])


@pytest.mark.parametrize("config", CONFIGS)
def test_state_is_not_empty_after_a_step(config) -> None:
    model = nn.Linear(5, 5)
    opt = SGDSaI(model.parameters(), **config)
    model(torch.rand(2, 5)).sum().backward()
    opt.step()
    assert len(opt.state) == 2 and all(len(s) > 0 for s in opt.state.values())


@pytest.mark.parametrize("impl", IMPLS)
def test_optimizer_can_be_printed(impl) -> None:
    text = repr(SGDSaI([nn.Parameter(torch.randn(2, 3)) for _ in range(2)], **impl))
    assert text.startswith("SGDSaI (") and "momentum: 0.9" in text


# --- state_dict ----------------------------------------------------------------------------------


def trained(config, impl, named: bool = False, steps: int = 3):
    weight, bias, x = toy()
    params = [("weight", weight), ("bias", bias)] if named else [weight, bias]
    opt = SGDSaI(params, **config, **impl)
    for _ in range(steps):
        closure_for(opt, weight, bias, x)()
        opt.step()
    return opt, weight, bias, x


def without_names(state_dict):
    state_dict = copy.deepcopy(state_dict)
    for group in state_dict["param_groups"]:
        group.pop("param_names", None)
    return state_dict


@pytest.mark.parametrize("named", [(False, False), (True, False), (False, True), (True, True)], ids=str)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_is_deterministic(config, impl, named) -> None:
    opt, weight, bias, x = trained(config, impl, named[0], steps=10)
    weight_c, bias_c = nn.Parameter(weight.detach().clone()), nn.Parameter(bias.detach().clone())
    opt_c = SGDSaI(
        [("weight", weight_c), ("bias", bias_c)] if named[1] else [weight_c, bias_c], **config, **impl
    )
    opt_c.load_state_dict(copy.deepcopy(opt.state_dict()))
    for _ in range(10):
        closure_for(opt, weight, bias, x)()
        closure_for(opt_c, weight_c, bias_c, x)()
        opt.step()
        opt_c.step()
        assert torch.equal(weight, weight_c) and torch.equal(bias, bias_c)
    assert_same(without_names(opt.state_dict()), without_names(opt_c.state_dict()))
    opt_c.param_groups.extend(opt_c.param_groups)  # repeated parameters: the same representation
    assert (
        without_names(opt.state_dict())["param_groups"][-1]
        == without_names(opt_c.state_dict())["param_groups"][-1]
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_round_trip_returns_the_same_state_dict(config, impl) -> None:
    """Loading adds nothing (torch's `__setstate__` extends the defaults with `differentiable`),
    and neither do deepcopy and pickle."""
    opt, *_ = trained(config, impl)
    saved = copy.deepcopy(opt.state_dict())
    given = opt.state_dict()
    opt.load_state_dict(given)
    assert_same(given, saved)  # loading leaves the dict it was given as it was
    assert_same(opt.state_dict(), saved)
    opt.load_state_dict(opt.state_dict())  # twice: the defaults torch extended do not leak either
    assert_same(opt.state_dict(), saved)
    for duplicate in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert_same(duplicate.state_dict(), saved)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_can_load_an_older_state_dict(config, impl) -> None:
    """Keys added after the first release are filled with their defaults."""
    opt, weight, bias, x = trained(config, impl)
    old = copy.deepcopy(opt.state_dict())
    newer = ("maximize", "foreach", "fused", "differentiable", "capturable", "scale", "gsnr_reference")
    for group in old["param_groups"]:
        for key in newer:
            group.pop(key, None)
    opt.load_state_dict(old)
    for key in newer:  # SGD-SaI's keys come back from the defaults; torch's stay absent
        if key in ("differentiable", "capturable"):
            assert key not in opt.param_groups[0]
        else:
            assert opt.param_groups[0][key] == opt.defaults[key]
    closure_for(opt, weight, bias, x)()
    opt.step()


@pytest.mark.parametrize("named", [(False, False), (True, False), (False, True), (True, True)], ids=str)
@pytest.mark.parametrize("config", CONFIGS)
def test_can_load_from_and_to_a_named_state_dict(config, named) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(4, 2, 1, stride=2), nn.BatchNorm2d(2))
    x = torch.rand(1, 4, 16, 16)
    opt = SGDSaI(model.named_parameters() if named[0] else model.parameters(), **config)
    for _ in range(3):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    opt2 = SGDSaI(model.named_parameters() if named[1] else model.parameters(), **config)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    opt2.zero_grad()
    model(x).sum().backward()
    opt2.step()
    if any(named):
        assert opt2.state_dict()["param_groups"][0]["param_names"] == [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
        ]


@pytest.mark.parametrize("config", CONFIGS)
def test_save_and_load_are_equal_with_weights_only(config) -> None:
    opt, *_ = trained(config, {})
    state_dict = opt.state_dict()
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    for weights_only in (False, True):
        buffer.seek(0)
        assert_same(torch.load(buffer, weights_only=weights_only), state_dict)


def test_python_float_scales_load_and_step() -> None:
    """The counterpart of torch's `test_load_nontensor_step`: scales saved as Python floats."""
    opt, weight, bias, x = trained({"lr": 1e-2}, {})
    state_dict = copy.deepcopy(opt.state_dict())
    for entry in state_dict["state"].values():
        entry["lr_scale"] = entry["lr_scale"].item()
    opt.load_state_dict(state_dict)
    for p in (weight, bias):
        assert opt.state[p]["lr_scale"].dtype == torch.float32 and opt.state[p]["lr_scale"].dim() == 0
    closure_for(opt, weight, bias, x)()
    opt.step()


# --- hooks -------------------------------------------------------------------------------------


def test_state_dict_pre_and_post_hooks_run() -> None:
    opt = SGDSaI([torch.rand(2, 3, requires_grad=True)])
    opt.register_state_dict_pre_hook(lambda o: o.state.__setitem__("test", 1))

    def post(o, state_dict):
        state_dict["ran_pre_hook"] = state_dict["state"].pop("test", None) == 1
        return state_dict

    assert opt.state_dict()["state"]["test"] == 1
    opt.register_state_dict_post_hook(post)
    state_dict = opt.state_dict()
    assert state_dict["ran_pre_hook"] and "test" not in state_dict["state"]


def test_load_state_dict_pre_hooks_run_in_order_and_prepend() -> None:
    opt = SGDSaI([torch.rand(2, 3, requires_grad=True)])
    state_dict = opt.state_dict()

    def set_lr(lr, returns):
        def hook(o, sd):
            if returns:
                sd = copy.deepcopy(sd)
            sd["param_groups"][0]["lr"] = lr
            return sd if returns else None

        return hook

    opt.register_load_state_dict_pre_hook(set_lr(0.002, returns=False))
    opt.load_state_dict(state_dict)
    assert opt.param_groups[0]["lr"] == 0.002
    opt.register_load_state_dict_pre_hook(set_lr(0.003, returns=True), prepend=True)
    opt.load_state_dict(state_dict)
    assert opt.param_groups[0]["lr"] == 0.002  # the prepended hook ran first


def test_load_state_dict_post_hook_runs_after_the_pre_hooks() -> None:
    opt = SGDSaI([torch.rand(2, 3, requires_grad=True)])
    ran = []
    opt.register_load_state_dict_post_hook(lambda o: ran.append(o.param_groups[0]["lr"]))
    opt.load_state_dict(opt.state_dict())
    opt.register_load_state_dict_pre_hook(
        lambda o, sd: {**sd, "param_groups": [{**sd["param_groups"][0], "lr": 0.003}]}
    )
    opt.load_state_dict(opt.state_dict())
    assert ran == [1.0, 0.003]


def test_a_pre_hook_that_reorders_groups_moves_the_scales_with_their_tensors() -> None:
    """The scales load from the dict the pre-hooks return, like the buffers."""
    a, b = nn.Parameter(torch.randn(30, 20)), nn.Parameter(torch.randn(7))
    opt = SGDSaI([{"params": [a]}, {"params": [b]}])
    a.grad, b.grad = torch.randn(30, 20), torch.randn(7) + 3
    opt.step()
    assert float(opt.state[a]["lr_scale"]) != float(opt.state[b]["lr_scale"])
    swapped = SGDSaI([{"params": [b]}, {"params": [a]}])  # saved in the other order

    def reorder(o, sd):
        return {**sd, "param_groups": sd["param_groups"][::-1]}

    swapped.register_load_state_dict_pre_hook(reorder)
    swapped.load_state_dict(opt.state_dict())
    for p in (a, b):
        assert torch.equal(swapped.state[p]["lr_scale"], opt.state[p]["lr_scale"])
        assert torch.equal(swapped.state[p]["momentum_buffer"], opt.state[p]["momentum_buffer"])


@pytest.mark.parametrize("momentum_dtype", [None, torch.bfloat16])
def test_load_post_hooks_see_the_final_state_and_their_changes_last(momentum_dtype) -> None:
    p = nn.Parameter(torch.randn(6, 4, dtype=torch.float64))
    opt = SGDSaI([p], momentum_dtype=momentum_dtype)
    p.grad = torch.randn(6, 4, dtype=torch.float64)
    opt.step()
    seen = {}

    def post(o):
        seen["scale"] = o.state[p]["lr_scale"]
        seen["buffer"] = o.state[p]["momentum_buffer"]
        o.state[p]["lr_scale"] = torch.tensor(0.125)

    opt.register_load_state_dict_post_hook(post)
    opt.load_state_dict(opt.state_dict())
    assert (seen["scale"].dtype, seen["scale"].device.type) == (torch.float32, "cpu")
    assert seen["buffer"].dtype == (momentum_dtype or torch.float64)
    assert float(opt.state[p]["lr_scale"]) == 0.125


def test_step_pre_and_post_hooks_run_and_can_be_removed() -> None:
    params = [torch.tensor([1.0, 1.0])]
    opt = SGDSaI(params)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    opt.step()
    opt.step()
    pre.remove()
    post.remove()
    opt.step()
    assert calls == ["pre", "post", "pre", "post"]


def test_global_and_local_step_hooks_run_in_order() -> None:
    params = [torch.tensor([1.0, 1.0])]
    opt, sgd = SGDSaI(params), torch.optim.SGD(params)
    calls = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: calls.append(0)),
        register_optimizer_step_post_hook(lambda o, a, k: calls.append(5)),
    ]
    for o in (opt, sgd):
        handles.append(o.register_step_pre_hook(lambda o, a, k: calls.append(1)))
        handles.append(o.register_step_post_hook(lambda o, a, k: calls.append(2)))
    try:
        opt.step()
        sgd.step()
        opt.step()
    finally:
        for handle in handles:
            handle.remove()
    opt.step()
    assert calls == [0, 1, 2, 5] * 3


# --- load checks, copies, pickling -----------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_load_rejects_a_buffer_of_the_wrong_shape_and_names_it(impl) -> None:
    opt, weight, bias, _ = trained({"lr": 1e-2}, impl, named=True)
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["state"][0]["momentum_buffer"] = torch.zeros(5, 10)  # transposed
    with pytest.raises(
        ValueError,
        match=r"momentum_buffer of weight has shape \(5, 10\), but the parameter has shape \(10, 5\)",
    ):
        opt.load_state_dict(state_dict)
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["state"][1]["lr_scale"] = torch.ones(2)
    with pytest.raises(ValueError, match=r"the scale \(lr_scale\) of bias must have one element"):
        opt.load_state_dict(state_dict)
    unnamed = SGDSaI([weight, bias])
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["state"][1]["momentum_buffer"] = torch.zeros(11)
    with pytest.raises(ValueError, match=r"momentum_buffer of group 0 param 1 has shape \(11,\)"):
        unnamed.load_state_dict(without_names(state_dict))


def test_load_keeps_a_float32_buffer_of_bfloat16_parameters_exact() -> None:
    """torch casts every loaded tensor to its parameter's dtype; a float32 momentum buffer of
    bfloat16 weights, and the scale, must not be rounded to bfloat16."""
    p = nn.Parameter(torch.randn(8, 4).bfloat16())
    opt = SGDSaI([p], 0.1, momentum_dtype=torch.float32)
    p.grad = torch.randn(8, 4).bfloat16()
    opt.step()
    opt.state[p]["momentum_buffer"].add_(1e-4)  # not representable next to 1 in bfloat16
    opt.state[p]["lr_scale"] = torch.tensor(0.3)
    saved = copy.deepcopy(opt.state_dict())
    fresh = SGDSaI([p], 0.1, momentum_dtype=torch.float32)
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.state[p]["momentum_buffer"], saved["state"][0]["momentum_buffer"])
    assert fresh.state[p]["lr_scale"].item() == torch.tensor(0.3).item()


class ProcessGroupLike:
    """Stands for a process group: neither copyable nor picklable."""

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle 'ProcessGroupLike' object")


def test_deepcopy_keeps_the_reference_group_and_copies_all_public_attributes() -> None:
    opt, *_ = trained({"lr": 1e-2}, {})
    opt.reference_group = ProcessGroupLike()
    duplicate = copy.deepcopy(opt)
    assert duplicate.reference_group is opt.reference_group
    public = {k for k in opt.__dict__ if not k.startswith("_")}
    assert public == {k for k in duplicate.__dict__ if not k.startswith("_")}
    params = [p for g in duplicate.param_groups for p in g["params"]]
    assert all(q is not p for q, p in zip(params, (p for g in opt.param_groups for p in g["params"])))
    assert set(duplicate.state) == set(params)


def test_pickling_with_a_reference_group_raises_and_says_what_to_do() -> None:
    opt, *_ = trained({"lr": 1e-2}, {})
    opt.reference_group = ProcessGroupLike()
    with pytest.raises(TypeError, match=r"cannot pickle an SGDSaI with a reference_group.*state_dict"):
        pickle.dumps(opt)


# --- CUDA --------------------------------------------------------------------------------------


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("impl", IMPLS)
def test_state_dict_moves_to_cuda_params_and_scales_stay_on_the_cpu(impl) -> None:
    """torch's `test_state_dict_with_cuda_params` and `test_cpu_load_state_dict`."""
    params = [nn.Parameter(torch.randn(2, 3)) for _ in range(2)]
    grads = [torch.randn(2, 3) for _ in params]
    opt = SGDSaI(params, 0.1, **impl)
    for _ in range(3):
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
    params_cuda = [nn.Parameter(p.detach().cuda()) for p in params]
    opt_cuda = SGDSaI(params_cuda, 0.1, **impl)
    saved = copy.deepcopy(opt.state_dict())
    opt_cuda.load_state_dict(copy.deepcopy(saved))
    for p in params_cuda:
        assert (
            opt_cuda.state[p]["momentum_buffer"].is_cuda
            and opt_cuda.state[p]["lr_scale"].device.type == "cpu"
        )
    for _ in range(5):
        for p, q, g in zip(params, params_cuda, grads):
            p.grad, q.grad = g.clone(), g.cuda()
        opt.step()
        opt_cuda.step()
        for p, q in zip(params, params_cuda):
            torch.testing.assert_close(p, q.cpu())


@pytest.mark.cuda
@cuda
def test_cuda_tensors_default_to_the_multi_tensor_path(monkeypatch) -> None:
    from sgdsai import functional

    calls = []
    original = functional._multi_tensor_sgdsai
    monkeypatch.setattr(
        functional, "_multi_tensor_sgdsai", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    model = nn.Linear(5, 5).cuda()
    opt = SGDSaI(model.parameters())
    model(torch.rand(2, 5, device="cuda")).sum().backward()
    opt.step()
    assert calls
