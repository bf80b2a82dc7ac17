"""SGDSaI with the tools a training loop combines: torch.compile, gradient accumulation, gradient
clipping and AMP's GradScaler.

g-SNR is scale-invariant (G(c g) = G(g) for c > 0, up to eps), so clipping, the 1/k of accumulation
and loss scaling must not change what is measured; a step that GradScaler skips must measure
nothing.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch import nn

from sgdsai import SGDSaI

IMPLS = [pytest.param(False, id="single"), pytest.param(True, id="foreach")]


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 1))


def data(seed: int = 1, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    return x, x.sin().sum(1, keepdim=True) + 0.1


def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (model(x) - y).square().mean()


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def schedule(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))


def train(model: nn.Module, opt: SGDSaI, steps: int, compiled_backend: str | None = None, warmup: int = 0):
    """Run ``steps`` full training steps (forward, backward, step, zero_grad) under a scheduler;
    with ``compiled_backend``, compile the whole step and forbid recompiles after ``warmup``."""
    x, y = data()
    sched = schedule(opt)

    def step() -> torch.Tensor:
        loss = loss_fn(model, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.detach()

    if compiled_backend is not None:
        torch._dynamo.reset()
        step = torch.compile(step, backend=compiled_backend)
    for i in range(steps):
        with torch._dynamo.config.patch(error_on_recompile=compiled_backend is not None and i >= warmup):
            step()
        sched.step()


@pytest.mark.parametrize("foreach", IMPLS)
def test_compiled_step_matches_eager_and_steady_steps_never_recompile(foreach: bool) -> None:
    """Dynamo level (eager backend): the optimizer's host-side bookkeeping stays out of the graph,
    so neither new .grad objects each step nor a scheduler's new float lr trigger recompiles."""
    eager_model, compiled_model = tiny_model(), tiny_model()
    train(eager_model, SGDSaI(eager_model.parameters(), 0.5, foreach=foreach), 8)
    opt = SGDSaI(compiled_model.parameters(), 0.5, foreach=foreach)
    train(compiled_model, opt, 8, compiled_backend="eager", warmup=3)
    torch.testing.assert_close(flat(compiled_model), flat(eager_model))
    assert len(opt.gsnr()) == 6


def test_inductor_step_with_tensor_lr_compiles_once_and_matches_eager() -> None:
    """Inductor specialises a float lr (it feeds foreach scalar lists), so a scheduler would recompile
    at every new value; a 0-d tensor lr, as torch.optim recommends, compiles once after the
    measuring step."""
    eager_model, compiled_model = tiny_model(), tiny_model()
    train(eager_model, SGDSaI(eager_model.parameters(), torch.tensor(0.5), foreach=True), 6)
    opt = SGDSaI(compiled_model.parameters(), torch.tensor(0.5), foreach=True)
    train(compiled_model, opt, 6, compiled_backend="inductor", warmup=2)
    torch.testing.assert_close(flat(compiled_model), flat(eager_model), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("foreach", IMPLS)
def test_tensor_lr_matches_float_lr_in_eager(foreach: bool) -> None:
    models = tiny_model(), tiny_model()
    for model, lr in zip(models, (0.5, torch.tensor(0.5))):
        train(model, SGDSaI(model.parameters(), lr, foreach=foreach), 5)
    torch.testing.assert_close(flat(models[1]), flat(models[0]))


def first_step_scales(model: nn.Module, backward) -> dict[str, float]:
    opt = SGDSaI(model.named_parameters(), 0.5)
    backward(model)
    opt.step()
    return opt.gsnr()


def test_accumulated_micro_batches_measure_what_the_full_batch_measures() -> None:
    x, y = data(n=32)

    def full(model: nn.Module) -> None:
        loss_fn(model, x, y).backward()

    def accumulated(model: nn.Module, divide: bool = True) -> None:
        for xs, ys in zip(x.chunk(4), y.chunk(4)):
            (loss_fn(model, xs, ys) / (4 if divide else 1)).backward()

    reference = first_step_scales(tiny_model(), full)
    averaged = first_step_scales(tiny_model(), accumulated)
    summed = first_step_scales(tiny_model(), lambda m: accumulated(m, divide=False))  # 4x the gradient
    assert averaged == pytest.approx(reference, rel=1e-5)
    assert summed == pytest.approx(reference, rel=1e-5)
    assert min(reference.values()) < 0.9  # the scales differ between tensors: the check has teeth


def test_gradient_clipping_does_not_change_the_measured_gsnr() -> None:
    x, y = data()
    norms = []

    def clipped(model: nn.Module) -> None:
        loss_fn(model, x, y).backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.05)))

    reference = first_step_scales(tiny_model(), lambda m: loss_fn(m, x, y).backward())
    assert first_step_scales(tiny_model(), clipped) == pytest.approx(reference, rel=1e-5)
    assert norms[0] > 0.5  # clipping really scaled the gradients down by more than 10x


def test_grad_scaler_skipped_step_measures_nothing_and_later_scales_match_unscaled_run() -> None:
    x, y = data()
    model = tiny_model()
    opt = SGDSaI(model.named_parameters(), 0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=1000)
    before = flat(model)

    scaler.scale(loss_fn(model, x, y)).backward()
    model[0].weight.grad[0, 0] = float("inf")  # an overflow, as fp16 would produce
    scaler.step(opt)
    scaler.update()
    opt.zero_grad()
    assert scaler.get_scale() == 2.0**15  # the step was skipped and the scale backed off
    assert torch.equal(flat(model), before)
    assert not opt.state and opt.param_groups[0]["gsnr_max"] is None  # nothing measured or consumed

    scaler.scale(loss_fn(model, x, y)).backward()
    scaler.step(opt)
    scaler.update()
    reference = first_step_scales(tiny_model(), lambda m: loss_fn(m, x, y).backward())
    assert opt.gsnr() == pytest.approx(reference, rel=1e-5)  # unscaled before measuring, and equal


def test_grad_scaler_steady_steps_follow_the_unscaled_trajectory() -> None:
    x, y = data()
    scaled, plain = tiny_model(), tiny_model()
    opt_scaled, opt_plain = SGDSaI(scaled.parameters(), 0.5), SGDSaI(plain.parameters(), 0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    for _ in range(4):
        scaler.scale(loss_fn(scaled, x, y)).backward()
        scaler.step(opt_scaled)
        scaler.update()
        opt_scaled.zero_grad()
        loss_fn(plain, x, y).backward()
        opt_plain.step()
        opt_plain.zero_grad()
    torch.testing.assert_close(flat(scaled), flat(plain))
