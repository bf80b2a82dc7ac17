"""Weight-decay parameter groups from one visible rule, with parameter names kept.

The rule is nanoGPT's: a tensor with two or more dimensions (matmul weights, embeddings,
convolution kernels) decays; biases, norm gains and every other 0-d or 1-d tensor do not. It reads
shapes, not names, so it needs no list of module types and cannot miss a renamed layer.

The groups hold `(name, parameter)` pairs, so `sgdsai.SGDSaI.gsnr` reports scales by
parameter name, and they can be passed to any `torch.optim.Optimizer` (torch keeps the
names in each group's `param_names`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor, nn

__all__ = ["decay_groups", "decays"]


def decays(name: str, param: Tensor) -> bool:
    """The default rule: decay a tensor iff it has at least two dimensions (`name` is unused)."""
    del name
    return param.dim() >= 2


def decay_groups(
    named_params: nn.Module | Iterable[tuple[str, Tensor]],
    weight_decay: float,
    *,
    rule: Callable[[str, Tensor], bool] = decays,
) -> list[dict[str, Any]]:
    """Split trainable parameters into a decaying group and a non-decaying one.

    Args:
        named_params: a module, or `(name, parameter)` pairs such as
            `model.named_parameters()`. Parameters with `requires_grad=False` are skipped
            (frozen base weights under LoRA); a parameter shared under two names appears once.
        weight_decay: the decay of the first group; the second group gets `0.0`.
        rule: `rule(name, param)` is true for tensors that decay (default: `decays`).

    Returns:
        Two groups of `(name, parameter)` pairs in `named_params` order, the decaying one first
        (`{"params": [...], "weight_decay": weight_decay}`, then `weight_decay` 0.0); an empty group
        is left out.

    Examples:
        >>> import torch
        >>> from sgdsai import SGDSaI
        >>> from sgdsai.param_groups import decay_groups
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
        >>> [[n for n, _ in g["params"]] for g in decay_groups(model, 0.1)]
        [['0.weight'], ['0.bias', '1.weight', '1.bias']]
        >>> opt = SGDSaI(decay_groups(model, 0.1), lr=1.0)
    """
    pairs = named_params.named_parameters() if isinstance(named_params, nn.Module) else named_params
    decay: list[tuple[str, Tensor]] = []
    no_decay: list[tuple[str, Tensor]] = []
    seen: set[int] = set()
    for item in pairs:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(
                "decay_groups needs (name, parameter) pairs, e.g. model.named_parameters(); "
                f"got {type(item).__name__}"
            )
        name, param = item
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (decay if rule(name, param) else no_decay).append((name, param))
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]
