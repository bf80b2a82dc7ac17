"""The documented rules of SGDSaI: lazy measurement, degenerate tensors, state, resume, errors."""

from __future__ import annotations

import io
import logging
import math
import warnings

import pytest
import torch
from conftest import clone_params, make_params, run_steps, synthetic_grad
from torch import nn

from sgdsai import SGDSaI, gsnr

IMPLS = [pytest.param(False, id="single"), pytest.param(True, id="foreach")]


def lora_loss(a: nn.Parameter, b: nn.Parameter, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return ((x @ w.T + (x @ a.T) @ b.T) - x.flip(1)).square().mean()


@pytest.mark.parametrize("foreach", IMPLS)
def test_lora_a_trains_when_b_starts_at_zero(foreach: bool, capsys) -> None:
    """LoRA's first A gradient is exactly zero (B = 0): the released package freezes A for good."""
    sgd_sai = pytest.importorskip("sgd_sai")
    x, w = torch.randn(32, 8), torch.randn(8, 8)
    a0 = torch.randn(2, 8)
    finals = {}
    for name, make in {
        "ours": lambda ps: SGDSaI(ps, 0.1, foreach=foreach),
        "official": lambda ps: sgd_sai.SGD_sai(ps, lr=1e-3),
    }.items():
        a, b = nn.Parameter(a0.clone()), nn.Parameter(torch.zeros(8, 2))
        opt = make([a, b])
        for _ in range(5):
            opt.zero_grad()
            lora_loss(a, b, w, x).backward()
            opt.step()
        finals[name] = (a.detach(), opt.state[a].get("lr_scale" if name == "ours" else "gsnr"))
    capsys.readouterr()
    a_ours, scale = finals["ours"]
    assert scale is not None and 0 < float(scale) <= 1
    assert (a_ours - a0).abs().max() > 1e-4  # A moved along its gradient, not just decayed
    a_official, official_scale = finals["official"]
    assert float(official_scale) == 0.0  # the trap we avoid, still present upstream
    torch.testing.assert_close(a_official, a0 * (1 - 1e-3 * 1e-2) ** 5)


@pytest.mark.parametrize("foreach", IMPLS)
def test_late_gradient_is_measured_against_the_stored_reference(foreach: bool) -> None:
    params = make_params()
    opt = SGDSaI(params, foreach=foreach)
    late = params[0]

    def grads(p, step, index):
        return None if (index == 0 and step < 3) else synthetic_grad(p, step, index)

    run_steps(opt, params, 3, grads)
    assert "lr_scale" not in opt.state[late] and "momentum_buffer" not in opt.state[late]
    reference = opt.param_groups[0]["gsnr_max"]
    before = late.detach().clone()
    late.grad = synthetic_grad(late, 3, 0)
    raw = gsnr.tensor_gsnr(late.grad)
    for p in params[1:]:
        p.grad = None
    opt.step()
    assert opt.param_groups[0]["gsnr_max"] == reference  # M is fixed at the first step
    assert float(opt.state[late]["lr_scale"]) == pytest.approx(min(raw / reference, 1.0), rel=1e-6)
    assert not torch.equal(late, before)


@pytest.mark.parametrize("foreach", IMPLS)
def test_scalar_gets_unit_scale_and_leaves_others_unchanged(foreach: bool) -> None:
    shapes = [(16, 8), (8,), ()]
    with_scalar = make_params(shapes=shapes)
    without = clone_params(with_scalar[:2])
    opt_a, opt_b = SGDSaI(with_scalar, 0.1, foreach=foreach), SGDSaI(without, 0.1, foreach=foreach)
    run_steps(opt_a, with_scalar, 1)
    run_steps(opt_b, without, 1)
    scalar = with_scalar[2]
    assert float(opt_a.state[scalar]["lr_scale"]) == 1.0
    for p, q in zip(with_scalar[:2], without):
        assert float(opt_a.state[p]["lr_scale"]) == float(opt_b.state[q]["lr_scale"])
    # The scalar moved by lr * |g| (plus decay), not by |g| / eps as in the released package.
    assert abs(scalar.item() - make_params(shapes=shapes)[2].item()) < 1.0


def test_constant_gradient_never_takes_over_the_normalisation() -> None:
    params = make_params(torch.float32, shapes=[(16, 8), (64,)])
    opt = SGDSaI(params)
    params[0].grad = torch.randn(16, 8)
    params[1].grad = torch.full((64,), 0.1)  # constant: float32 std ~ 1e-9, raw g-SNR ~ 1e8
    opt.step()
    assert opt.param_groups[0]["gsnr_max"] == pytest.approx(gsnr.tensor_gsnr(params[0].grad))
    assert float(opt.state[params[0]]["lr_scale"]) == 1.0
    assert float(opt.state[params[1]]["lr_scale"]) == 1.0


def test_raw_mode_gives_degenerate_tensors_the_reference() -> None:
    params = make_params(shapes=[(16, 8), ()])
    opt = SGDSaI(params, normalize=False)
    run_steps(opt, params, 1)
    reference = opt.param_groups[0]["gsnr_max"]
    assert float(opt.state[params[0]]["lr_scale"]) == pytest.approx(reference, rel=1e-6)
    assert float(opt.state[params[1]]["lr_scale"]) == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("foreach", IMPLS)
def test_nonfinite_first_gradient_is_deferred_not_stored(foreach: bool, caplog) -> None:
    params = make_params(shapes=[(4, 3), (5,)])
    opt = SGDSaI(params, foreach=foreach)
    before = [p.detach().clone() for p in params]
    params[0].grad = torch.full((4, 3), math.nan, dtype=torch.float64)
    params[1].grad = synthetic_grad(params[1], 0, 1)
    with caplog.at_level(logging.WARNING, logger="sgdsai"):
        opt.step()
    assert "non-finite" in caplog.text
    assert "lr_scale" not in opt.state[params[0]]
    assert torch.equal(params[0], before[0])
    params[0].grad = synthetic_grad(params[0], 1, 0)
    opt.step()
    assert math.isfinite(float(opt.state[params[0]]["lr_scale"]))
    assert torch.isfinite(params[0]).all()


def test_bf16_parameters_get_float32_statistics() -> None:
    p = nn.Parameter(torch.randn(64, 32).bfloat16())
    opt = SGDSaI([p])
    p.grad = (torch.randn(64, 32) + 0.5).bfloat16()
    opt.step()
    assert opt.state[p]["lr_scale"].dtype == torch.float32
    assert opt.state[p]["momentum_buffer"].dtype == torch.bfloat16
    want = gsnr.measure(gsnr.stack_stats([p.grad.double()])[0], 1e-8)
    assert opt.param_groups[0]["gsnr_max"] == pytest.approx(want.gsnr, rel=1e-5)


@pytest.mark.parametrize("foreach", IMPLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_resume_continues_bit_identically(foreach: bool, dtype: torch.dtype) -> None:
    start = make_params(dtype)
    straight, resumed = clone_params(start), clone_params(start)
    opt = SGDSaI(straight, 0.05, foreach=foreach)
    run_steps(opt, straight, 4)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in straight], "opt": opt.state_dict()}, buffer)
    run_steps_from(opt, straight, 4, 9)

    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    with torch.no_grad():
        for p, saved in zip(resumed, checkpoint["params"]):
            p.copy_(saved)
    fresh = SGDSaI(resumed, 0.05, foreach=foreach)
    fresh.load_state_dict(checkpoint["opt"])
    for _, q in zip(straight, resumed):
        assert fresh.state[q]["lr_scale"].dtype == torch.float32
        assert fresh.state[q]["lr_scale"].device.type == "cpu"
    run_steps_from(fresh, resumed, 4, 9)
    for p, q in zip(straight, resumed):
        assert torch.equal(p, q)
        assert torch.equal(opt.state[p]["lr_scale"], fresh.state[q]["lr_scale"])
        assert torch.equal(opt.state[p]["momentum_buffer"], fresh.state[q]["momentum_buffer"])


def run_steps_from(opt, params, first: int, last: int) -> None:
    for step in range(first, last):
        for index, p in enumerate(params):
            p.grad = synthetic_grad(p, step, index)
        opt.step()


def test_resume_never_measures_again() -> None:
    params = make_params()
    opt = SGDSaI(params)
    run_steps(opt, params, 1)
    saved = opt.state_dict()
    fresh = SGDSaI(params)
    fresh.load_state_dict(saved)
    scales = fresh.gsnr()
    for p in params:
        p.grad = 100 * torch.randn_like(p) + 7  # very different statistics
    fresh.step()
    assert fresh.gsnr() == scales


def test_closure_is_evaluated_once_per_step() -> None:
    w = nn.Parameter(torch.randn(5, 3))
    opt = SGDSaI([w])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (w - 1).square().sum()
        loss.backward()
        return loss

    for expected in (1, 2, 3):
        assert torch.is_tensor(opt.step(closure))
        assert len(calls) == expected


@pytest.mark.parametrize("foreach", IMPLS)
def test_maximize_ascends_and_leaves_grad_untouched(foreach: bool) -> None:
    w = nn.Parameter(torch.randn(6, 4))
    opt = SGDSaI([w], 0.1, weight_decay=0.0, maximize=True, foreach=foreach)
    values = []
    for _ in range(5):
        opt.zero_grad()
        objective = -(w - 2).square().sum()
        objective.backward()
        grad = w.grad.clone()
        opt.step()
        assert torch.equal(w.grad, grad)
        values.append(objective.item())
    assert values == sorted(values) and values[-1] > values[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1.0}, "Invalid lr value: -1.0"),
        ({"momentum": 1.0}, "Invalid momentum value: 1.0"),
        ({"momentum": -0.1}, "Invalid momentum value: -0.1"),
        ({"weight_decay": -0.5}, "Invalid weight_decay value: -0.5"),
        ({"eps": -1e-8}, "Invalid eps value: -1e-08"),
    ],
)
def test_invalid_hyperparameters_raise_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SGDSaI([nn.Parameter(torch.ones(2))], **kwargs)


def test_sparse_gradient_raises() -> None:
    emb = nn.Embedding(10, 4, sparse=True)
    opt = SGDSaI(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()


@pytest.mark.parametrize("foreach", IMPLS)
def test_complex_parameters_match_their_real_view(foreach: bool) -> None:
    z = nn.Parameter(torch.randn(5, 3, dtype=torch.complex128))
    r = nn.Parameter(torch.view_as_real(z.detach()).clone())
    opt_z, opt_r = SGDSaI([z], 0.1, foreach=foreach), SGDSaI([r], 0.1, foreach=foreach)
    for step in range(4):
        g = synthetic_grad(r, step, 0)
        z.grad, r.grad = torch.view_as_complex(g.clone()), g
        opt_z.step()
        opt_r.step()
    torch.testing.assert_close(torch.view_as_real(z.detach()), r.detach())
    assert opt_z.state[z]["momentum_buffer"].is_complex()


def test_add_param_group_later_shares_the_reference() -> None:
    first, later = make_params(shapes=[(8, 4)]), make_params(shapes=[(6, 5)], seed=1)
    opt = SGDSaI(first)
    run_steps(opt, first, 2)
    opt.add_param_group({"params": later, "lr": 0.5})
    assert opt.param_groups[1]["gsnr_max"] == opt.param_groups[0]["gsnr_max"]
    later[0].grad = synthetic_grad(later[0], 0, 0)
    first[0].grad = None
    opt.step()
    raw = gsnr.tensor_gsnr(later[0].grad)
    assert float(opt.state[later[0]]["lr_scale"]) == pytest.approx(
        min(raw / opt.param_groups[0]["gsnr_max"], 1.0), rel=1e-6
    )


def test_gsnr_table_uses_parameter_names() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model(torch.randn(5, 4)).sum().backward()
    named = SGDSaI(model.named_parameters())
    named.step()
    assert set(named.gsnr()) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    plain = SGDSaI(model.parameters())
    plain.step()
    assert plain.gsnr(model) == named.gsnr()
    assert set(plain.gsnr()) == {"group0.param0", "group0.param1", "group0.param2", "group0.param3"}
    assert max(named.gsnr().values()) == 1.0


def test_momentum_zero_keeps_no_buffer() -> None:
    params = make_params()
    opt = SGDSaI(params, momentum=0.0)
    run_steps(opt, params, 3)
    assert all("momentum_buffer" not in opt.state[p] for p in params)


@pytest.mark.parametrize("foreach", IMPLS)
def test_steady_step_reads_nothing_from_the_device(foreach: bool) -> None:
    """On the meta device any host read of a tensor's value raises, so a steady step that passes
    here performs no device-to-host synchronisation on a real accelerator either."""
    params = [torch.empty(s, device="meta", requires_grad=True) for s in [(5, 3), (), (7,)]]
    opt = SGDSaI(params, foreach=foreach)
    for p in params:
        p.grad = torch.empty_like(p)
        opt.state[p]["lr_scale"] = torch.tensor(0.5)
        opt.state[p]["momentum_buffer"] = torch.empty_like(p)
    opt.step()
    opt.step()
    fresh = [torch.empty(3, device="meta", requires_grad=True)]
    fresh[0].grad = torch.empty_like(fresh[0])
    with pytest.raises((RuntimeError, NotImplementedError)):
        SGDSaI(fresh).step()  # the measuring step does read: the probe can fail


def test_docstring_example_runs() -> None:
    import doctest

    import sgdsai.optimizer

    result = doctest.testmod(sgdsai.optimizer)
    assert result.attempted > 0 and result.failed == 0


# --- scale="numel" and gsnr_reference ---------------------------------------------------------


def test_numel_mode_computes_no_gradient_statistics(monkeypatch) -> None:
    def refuse(grads):
        raise AssertionError("scale='numel' must not compute gradient statistics")

    monkeypatch.setattr(gsnr, "stack_stats", refuse)
    params = make_params()
    opt = SGDSaI(params, scale="numel")
    run_steps(opt, params, 2)
    biggest = max(p.numel() for p in params)
    assert opt.param_groups[0]["gsnr_max"] == pytest.approx(math.sqrt(biggest))
    for p in params:
        assert float(opt.state[p]["lr_scale"]) == pytest.approx(math.sqrt(p.numel() / biggest), rel=1e-6)


@pytest.mark.parametrize("foreach", IMPLS)
def test_numel_zero_first_gradient_waits_then_starts_momentum(foreach: bool) -> None:
    """An all-zero first gradient counts towards M (its value is known), leaves the tensor
    untouched (no decay) and starts the momentum at the first non-zero gradient: m = g."""
    big, small = nn.Parameter(torch.randn(20, 10)), nn.Parameter(torch.randn(4, 2))
    opt = SGDSaI([big, small], 0.5, 0.9, 0.1, scale="numel", foreach=foreach)
    before = big.detach().clone()
    big.grad, small.grad = torch.zeros(20, 10), torch.randn(4, 2)
    opt.step()
    assert opt.param_groups[0]["gsnr_max"] == pytest.approx(math.sqrt(200))  # the zero tensor set M
    assert torch.equal(big, before) and "momentum_buffer" not in opt.state[big]
    g = torch.randn(20, 10)
    big.grad, small.grad = g.clone(), torch.randn(4, 2)
    opt.step()
    assert float(opt.state[big]["lr_scale"]) == 1.0
    torch.testing.assert_close(opt.state[big]["momentum_buffer"], g)
    torch.testing.assert_close(big.detach(), before * (1 - 0.5 * 0.1) - 0.5 * g)


def test_unknown_scale_names_the_argument_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"scale must be one of 'gsnr', 'numel', not 'snr'"):
        SGDSaI([nn.Parameter(torch.ones(2))], scale="snr")
    with pytest.raises(ValueError, match="scale must be one of"):
        SGDSaI([{"params": [nn.Parameter(torch.ones(2))], "scale": 1}])


def test_an_unknown_scale_set_after_construction_raises_at_the_measuring_step() -> None:
    p = nn.Parameter(torch.randn(10))
    opt = SGDSaI([p])
    opt.param_groups[0]["scale"] = "Numel"  # a typo no constructor saw
    p.grad = torch.randn(10)
    with pytest.raises(ValueError, match=r"scale must be one of 'gsnr', 'numel', not 'Numel'"):
        opt.step()


def test_a_state_dict_with_an_unknown_scale_is_refused_before_loading() -> None:
    p = nn.Parameter(torch.randn(10))
    saved = SGDSaI([p], scale="numel").state_dict()
    saved["param_groups"][0]["scale"] = "sqrt"
    opt = SGDSaI([p])
    with pytest.raises(ValueError, match=r"scale must be one of 'gsnr', 'numel', not 'sqrt'"):
        opt.load_state_dict(saved)
    assert opt.param_groups[0]["scale"] == "gsnr"  # nothing was loaded


def test_momentum_dtype_with_complex_parameters_is_refused() -> None:
    c = nn.Parameter(torch.randn(4, dtype=torch.complex64))
    message = r"momentum_dtype=torch\.bfloat16 applies to real parameters only"
    with pytest.raises(ValueError, match=message):
        SGDSaI([c], momentum_dtype=torch.bfloat16)
    opt = SGDSaI([nn.Parameter(torch.randn(4))])
    with pytest.raises(ValueError, match=message):
        opt.add_param_group({"params": [c], "momentum_dtype": torch.bfloat16})


@pytest.mark.parametrize("scale", ["gsnr", "numel"])
def test_non_reference_group_is_clamped_and_never_sets_the_reference(scale: str) -> None:
    """The embedding-M ablation: a large tensor in a gsnr_reference=False group gets scale 1."""
    embedding, block = nn.Parameter(torch.randn(64, 32)), nn.Parameter(torch.randn(8, 8))
    opt = SGDSaI([{"params": [embedding], "gsnr_reference": False}, {"params": [block]}], scale=scale)
    embedding.grad, block.grad = torch.randn(64, 32), torch.randn(8, 8)
    opt.step()
    reference = opt.param_groups[0]["gsnr_max"]
    expected = 8.0 if scale == "numel" else gsnr.tensor_gsnr(block.grad)
    assert reference == pytest.approx(expected, rel=1e-6)
    assert float(opt.state[embedding]["lr_scale"]) == 1.0 and float(opt.state[block]["lr_scale"]) == 1.0


def test_non_reference_tensors_wait_for_a_reference_tensor() -> None:
    embedding, block = nn.Parameter(torch.randn(64, 32)), nn.Parameter(torch.randn(8, 8))
    opt = SGDSaI([{"params": [embedding], "gsnr_reference": False}, {"params": [block]}])
    embedding.grad = torch.randn(64, 32)
    before = embedding.detach().clone()
    opt.step()
    assert opt.param_groups[0]["gsnr_max"] is None and torch.equal(embedding, before)
    embedding.grad, block.grad = torch.randn(64, 32), torch.randn(8, 8)
    opt.step()
    assert opt.param_groups[0]["gsnr_max"] == pytest.approx(gsnr.tensor_gsnr(block.grad), rel=1e-6)
    assert not torch.equal(embedding, before)


def test_gsnr_reference_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="gsnr_reference must be a bool"):
        SGDSaI([{"params": [nn.Parameter(torch.ones(2))], "gsnr_reference": "no"}])


# --- imposed scales, 0-element tensors, magnitudes ------------------------------------------


@pytest.mark.parametrize("foreach", IMPLS)
def test_a_python_float_imposed_as_scale_is_used(foreach: bool) -> None:
    """The docstring invites imposing a scale; a Python float works as a 0-d tensor does."""
    start = make_params(torch.float32, shapes=[(6, 5), (5,)])
    finals = []
    for imposed in (0.25, torch.tensor(0.25)):
        params = clone_params(start)
        opt = SGDSaI(params, 0.1, foreach=foreach)
        opt.state[params[0]]["lr_scale"] = imposed
        run_steps(opt, params, 2)
        finals.append((params, opt))
    (floats, opt_f), (tensors, opt_t) = finals
    for p, q in zip(floats, tensors):
        assert torch.equal(p, q)
    assert opt_f.gsnr()["group0.param0"] == 0.25
    assert float(opt_f.state[floats[1]]["lr_scale"]) == float(opt_t.state[tensors[1]]["lr_scale"])


@pytest.mark.parametrize("scale", ["gsnr", "numel"])
def test_a_zero_element_tensor_never_decides_the_reference(scale: str) -> None:
    empty, weight = nn.Parameter(torch.randn(0, 4)), nn.Parameter(torch.randn(6, 4))
    opt = SGDSaI([empty, weight], scale=scale)
    empty.grad, weight.grad = torch.randn(0, 4), torch.zeros(6, 4)
    opt.step()
    # numel: the weight's all-zero gradient counts towards M (its value needs no gradient)
    assert opt.param_groups[0]["gsnr_max"] == (math.sqrt(24) if scale == "numel" else None)
    assert float(opt.state[empty]["lr_scale"]) == 1.0
    empty.grad, weight.grad = torch.randn(0, 4), torch.randn(6, 4) + 0.2
    opt.step()
    expected = math.sqrt(24) if scale == "numel" else gsnr.tensor_gsnr(weight.grad)
    assert opt.param_groups[0]["gsnr_max"] == pytest.approx(expected, rel=1e-6)
    assert float(opt.state[weight]["lr_scale"]) == 1.0


def test_a_zero_element_tensor_costs_no_measurement(monkeypatch) -> None:
    empty = nn.Parameter(torch.randn(0))
    opt = SGDSaI([empty])
    monkeypatch.setattr(gsnr, "stack_stats", lambda grads: pytest.fail("measured a 0-element tensor"))
    for _ in range(2):
        empty.grad = torch.randn(0)
        opt.step()


@pytest.mark.parametrize("magnitude", [1e-2, 1e10, 1e20, 1e30])
def test_scales_of_c_times_the_gradients_equal_those_of_the_gradients(magnitude: float) -> None:
    """Above ε the scales are invariant to the gradients' magnitude, on both measuring routes."""
    shapes = [(600, 500), (40, 3), (30,)]  # 300,000 elements: the two-pass route
    scales = []
    for c in (1.0, magnitude):
        params = make_params(torch.float32, shapes=shapes)
        opt = SGDSaI(params)
        for index, p in enumerate(params):
            p.grad = c * synthetic_grad(p, 0, index)
        opt.step()
        scales.append(opt.gsnr())
        assert all(torch.isfinite(p).all() for p in params)
    assert scales[1] == pytest.approx(scales[0], rel=1e-5)


# --- the scale's old state key ----------------------------------------------------------------


@pytest.mark.parametrize("foreach", IMPLS)
def test_the_old_scale_key_still_imposes_a_scale_with_a_future_warning(foreach: bool) -> None:
    start = make_params(torch.float32, shapes=[(6, 5), (5,)])
    finals = []
    for key in ("gsnr", "lr_scale"):
        params = clone_params(start)
        opt = SGDSaI(params, 0.1, foreach=foreach)
        opt.state[params[0]][key] = torch.tensor(0.25)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_steps(opt, params, 2)
        finals.append(params)
        assert [str(w.message) for w in caught if w.category is FutureWarning] == (
            ['state[p]["gsnr"] is deprecated: impose a scale as state[p]["lr_scale"]']
            if key == "gsnr"
            else []
        )
        if key == "gsnr":
            assert caught[0].filename == __file__ or "conftest" in caught[0].filename
        assert "gsnr" not in opt.state[params[0]] and float(opt.state[params[0]]["lr_scale"]) == 0.25
    for p, q in zip(*finals):
        assert torch.equal(p, q)


def test_the_old_scale_key_set_on_a_measured_tensor_is_imposed_with_a_future_warning() -> None:
    params = make_params(torch.float32, shapes=[(6, 5), (5,)])
    opt = SGDSaI(params, 0.1)
    run_steps(opt, params, 1)
    measured = float(opt.state[params[1]]["lr_scale"])
    assert measured != 0.25
    opt.state[params[1]]["gsnr"] = 0.25  # as code written before the rename changed a scale
    with pytest.warns(FutureWarning, match=r'state\[p\]\["gsnr"\] is deprecated'):
        run_steps(opt, params, 1)
    assert "gsnr" not in opt.state[params[1]] and float(opt.state[params[1]]["lr_scale"]) == 0.25
    assert "gsnr" not in opt.state_dict()["state"][1]


def test_a_checkpoint_with_the_old_scale_key_loads() -> None:
    params = make_params()
    opt = SGDSaI(params, 0.1)
    run_steps(opt, params, 2)
    old = opt.state_dict()
    old["state"] = {
        k: {("gsnr" if n == "lr_scale" else n): v for n, v in e.items()} for k, e in old["state"].items()
    }
    fresh = SGDSaI(clone_params(params), 0.1)
    fresh.load_state_dict(old)
    assert fresh.gsnr() == opt.gsnr()
    assert all("gsnr" not in s for s in fresh.state.values())
    assert fresh.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
