"""Loading SGD-SaI state from a torch.distributed.checkpoint in one process (no process group)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sgdsai import SGDSaI
from sgdsai.checkpoint import optimizer_state_dict_to_load

dcp = pytest.importorskip("torch.distributed.checkpoint")
state_dict_api = pytest.importorskip("torch.distributed.checkpoint.state_dict")
pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")


def model_and_optimizer() -> tuple[nn.Module, SGDSaI]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    return model, SGDSaI(model.parameters(), 0.1)


def train(model: nn.Module, opt: SGDSaI, steps: range) -> None:
    for step in steps:
        x = torch.randn(6, 4, generator=torch.Generator().manual_seed(step), dtype=torch.float64)
        model(x).square().mean().backward()
        if step == 0:
            model[2].bias.grad.zero_()  # deferred: still unmeasured when the checkpoint is saved
        opt.step()
        opt.zero_grad(set_to_none=True)


def test_dcp_round_trip_restores_every_saved_entry_and_continues_bit_identically(tmp_path):
    model, opt = model_and_optimizer()
    train(model, opt, range(1))
    assert "lr_scale" not in opt.state[model[2].bias]
    saved = state_dict_api.get_optimizer_state_dict(model, opt)
    dcp.save({"model": model.state_dict(), "optim": saved}, checkpoint_id=str(tmp_path))
    train(model, opt, range(1, 4))

    fresh, fresh_opt = model_and_optimizer()
    reader = dcp.FileSystemReader(str(tmp_path))
    state = {
        "model": fresh.state_dict(),
        "optim": optimizer_state_dict_to_load(fresh, fresh_opt, reader.read_metadata()),
    }
    assert state["optim"]["state"]["2.bias"] == {}  # nothing invented for the unmeasured tensor
    dcp.load(state, storage_reader=reader)
    fresh.load_state_dict(state["model"])
    state_dict_api.set_optimizer_state_dict(fresh, fresh_opt, state["optim"])
    for p in fresh.parameters():
        if "lr_scale" in fresh_opt.state[p]:
            gsnr = fresh_opt.state[p]["lr_scale"]
            assert (gsnr.dtype, gsnr.device.type, gsnr.dim()) == (torch.float32, "cpu", 0)
    assert fresh_opt.gsnr() == pytest.approx({k: v for k, v in opt.gsnr().items() if k != "group0.param3"})
    assert fresh_opt.param_groups[0]["gsnr_max"] == opt.param_groups[0]["gsnr_max"]
    train(fresh, fresh_opt, range(1, 4))
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)


def test_a_fresh_optimizers_own_template_would_load_no_state():
    model, opt = model_and_optimizer()
    template = state_dict_api.get_optimizer_state_dict(model, opt)["state"]
    assert not any(template.values())  # why the helper exists: dcp.load would read no state


def test_a_dcp_checkpoint_with_the_old_scale_key_loads(tmp_path):
    """Checkpoints written before the scale's key became `lr_scale` stored it as `gsnr`."""
    model, opt = model_and_optimizer()
    train(model, opt, range(2))

    def old_key(optimizer, state_dict):  # the entries are the live state: rename in copies
        rename = {"lr_scale": "gsnr"}
        state = {k: {rename.get(n, n): v for n, v in e.items()} for k, e in state_dict["state"].items()}
        return {**state_dict, "state": state}

    opt.register_state_dict_post_hook(old_key)
    saved = state_dict_api.get_optimizer_state_dict(model, opt)
    assert any("gsnr" in entry for entry in saved["state"].values())
    dcp.save({"optim": saved}, checkpoint_id=str(tmp_path))

    fresh, fresh_opt = model_and_optimizer()
    fresh.load_state_dict(model.state_dict())
    reader = dcp.FileSystemReader(str(tmp_path))
    state = {"optim": optimizer_state_dict_to_load(fresh, fresh_opt, reader.read_metadata())}
    dcp.load(state, storage_reader=reader)
    state_dict_api.set_optimizer_state_dict(fresh, fresh_opt, state["optim"])
    assert fresh_opt.gsnr() == pytest.approx(opt.gsnr())
    assert all("gsnr" not in s for s in fresh_opt.state.values())
