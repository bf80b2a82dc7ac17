r"""Loading SGD-SaI state from a `torch.distributed.checkpoint` (DCP) checkpoint.

Saving needs nothing special: `get_optimizer_state_dict(model, optimizer)` holds every tensor's
`momentum_buffer` (a DTensor under FSDP2), its `lr_scale` (a 0-d float32 tensor, the same on
every rank, so DCP stores it once) and `gsnr_max` in each parameter group.

Loading does. DCP loads *into* a state dict whose entries say what to read, and torch fills a
fresh optimizer's template by taking one step on zero gradients. SGD-SaI rightly measures nothing
from a zero gradient, so that template has no state, DCP would read none, and the resumed run would
measure every tensor again on new gradients. `optimizer_state_dict_to_load` builds the
template from the checkpoint's own list of entries instead: exactly the tensors that were saved,
shaped and placed like the parameters of *this* run, whatever its world size. A tensor that was
still unmeasured when saving keeps an empty entry: strict `set_optimizer_state_dict` needs one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["optimizer_state_dict_to_load"]

#: The per-tensor state SGD-SaI may keep; `"gsnr"` is the scale's name in older checkpoints.
STATE_KEYS = ("momentum_buffer", "lr_scale", "gsnr")


def optimizer_state_dict_to_load(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    metadata: Any,
    *,
    key: str = "optim",
    options: Any = None,
) -> dict[str, Any]:
    """`get_optimizer_state_dict(model, optimizer)` plus every state entry `metadata` holds.

    `metadata` is the checkpoint's `Metadata` (`storage_reader.read_metadata()`) and `key`
    the name the optimizer's state dict was saved under. Pass the result to `dcp.load`, then to
    `set_optimizer_state_dict`.

    Examples:
        ```python
        reader = dcp.FileSystemReader(path)
        state = {"optim": optimizer_state_dict_to_load(model, opt, reader.read_metadata())}
        dcp.load(state, storage_reader=reader)
        set_optimizer_state_dict(model, opt, state["optim"])
        ```
    """
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    saved = metadata.state_dict_metadata
    state_dict: dict[str, Any] = dict(get_optimizer_state_dict(model, optimizer, options=options))
    for saved_group, group in zip(state_dict["param_groups"], optimizer.param_groups):
        for fqn, param in zip(saved_group["params"], group["params"]):  # same order, by construction
            entries = state_dict["state"].setdefault(fqn, {})
            for name in STATE_KEYS:
                if f"{key}.state.{fqn}.{name}" in saved and name not in entries:
                    entries[name] = _placeholder(name, param)
    return state_dict  # an unmeasured tensor keeps an empty entry, which strict loading requires


def _placeholder(name: str, param: torch.Tensor) -> torch.Tensor:
    if name in ("lr_scale", "gsnr"):
        return torch.zeros((), dtype=torch.float32)
    return torch.zeros_like(param.detach())
