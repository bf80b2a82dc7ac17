"""The ``cnn`` task: a small ResNet that SGD-SaI trains, evaluated with BatchNorm's running statistics."""

from __future__ import annotations

import math

import pytest
import torch

from sgdsai_lab.config import RunConfig
from sgdsai_lab.run import run
from sgdsai_lab.tasks import build_task
from sgdsai_lab.tasks.cnn import ResNet
from sgdsai_lab.zoo import build_optimizer


def test_sgdsai_steps_reduce_the_loss() -> None:
    task = build_task("cnn", "synthetic", "tiny", 0, batch_size=32)
    before = task.evaluate(task.model)["val_loss"]
    opt = build_optimizer("sgdsai", task.model, 0.5, 0.0, task.info)
    for step in range(60):
        loss = task.loss(task.model, task.batch(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = task.evaluate(task.model)
    assert after["val_loss"] < 0.95 * before and after["val_accuracy"] > 0.15  # chance: 0.1


def test_resnet_stages_halve_resolution_and_double_width() -> None:
    model = ResNet(8, 2, stem_stride=2)
    x = model.stem(torch.zeros(3, 1, 28, 28))
    shapes = []
    for stage in model.stages:
        x = stage(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(8, 14, 14), (16, 7, 7), (32, 4, 4)]
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 1 + 2 * 6 + 2


def test_evaluation_leaves_batchnorm_statistics_and_train_mode_alone() -> None:
    task = build_task("cnn", "synthetic", "tiny", 0, batch_size=8)
    task.loss(task.model, task.batch(0))
    buffers = {n: b.clone() for n, b in task.model.named_buffers()}
    task.evaluate(task.model)
    assert task.model.training
    assert all(torch.equal(b, buffers[n]) for n, b in task.model.named_buffers())


def test_unknown_size_or_data_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="'huge'"):
        build_task("cnn", "synthetic", "huge", 0)
    with pytest.raises(ValueError, match="'cifar'"):
        build_task("cnn", "cifar", "tiny", 0)


def test_training_run_writes_finite_metrics() -> None:
    record = run(RunConfig("cnn", "sgdsai", 0.1, 0.01, 3, data="synthetic", batch_size=8, gsnr_every=1))
    metrics = record["metrics"]
    assert not metrics["diverged"] and 0 <= metrics["val_accuracy"] <= 1
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "diverged")
    assert all(None not in values for values in record["gsnr_trace"]["tensors"].values())


def test_adam_mini_steps_on_convolutions() -> None:
    pytest.importorskip("adam_mini")
    task = build_task("cnn", "synthetic", "tiny", 0, batch_size=8)
    before = {n: p.detach().clone() for n, p in task.model.named_parameters()}
    opt = build_optimizer("adam-mini", task.model, 1e-3, 0.0, task.info)
    task.loss(task.model, task.batch(0)).backward()
    opt.step()
    assert all(not torch.equal(p, before[n]) for n, p in task.model.named_parameters())
