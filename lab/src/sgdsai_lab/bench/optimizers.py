"""The benchmark's optimizer registry: the only place baselines are built.

Each entry maps a name to ``factory(named_params, **flags) -> Optimizer``, with the paper's
profiling hyperparameters (lr 1e-3, weight decay 5e-2, momentum / beta1 0.9, beta2 0.999). Third
party packages are imported inside their factory, so a missing one only removes its entry.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim import Optimizer

NamedParams = list[tuple[str, Tensor]]
Factory = Callable[[NamedParams], Optimizer]

LR, WEIGHT_DECAY, MOMENTUM, BETA2 = 1e-3, 5e-2, 0.9, 0.999


def sgdsai(*, foreach: bool | None = None, fused: bool | None = None, **flags: Any) -> Factory:
    from sgdsai import SGDSaI

    extra: dict[str, Any] = {} if fused is None else {"fused": fused}

    def build(named: NamedParams) -> Optimizer:
        return SGDSaI(named, LR, MOMENTUM, WEIGHT_DECAY, foreach=foreach, **extra, **flags)

    return build


def adamw(**flags: Any) -> Factory:
    return lambda named: torch.optim.AdamW(
        [p for _, p in named], LR, (MOMENTUM, BETA2), 1e-8, WEIGHT_DECAY, **flags
    )


def sgd_momentum(**flags: Any) -> Factory:
    return lambda named: torch.optim.SGD(
        [p for _, p in named], LR, MOMENTUM, weight_decay=WEIGHT_DECAY, **flags
    )


def official(named: NamedParams) -> Optimizer:
    """The authors' released ``sgd-sai`` 1.0.3 (it prints a banner on its first step)."""
    import sgd_sai

    return cast(Optimizer, _Quiet(sgd_sai.SGD_sai([p for _, p in named], LR, MOMENTUM, 1e-8, WEIGHT_DECAY)))


def pytorch_optimizer(named: NamedParams) -> Optimizer:
    """``pytorch_optimizer.SGDSaI`` (pip ``pytorch-optimizer``)."""
    from pytorch_optimizer import SGDSaI as Theirs

    return Theirs([p for _, p in named], LR, MOMENTUM, WEIGHT_DECAY)


def adam_mini(dim: int, n_heads: int) -> Factory:
    """``adam-mini`` with its default block names; its console chatter is swallowed."""

    def build(named: NamedParams) -> Optimizer:
        import adam_mini as am

        with contextlib.redirect_stdout(io.StringIO()):
            opt = am.Adam_mini(
                named, LR, (MOMENTUM, BETA2), weight_decay=WEIGHT_DECAY, dim=dim, n_heads=n_heads
            )
        return cast(Optimizer, _Quiet(opt))

    return build


#: APOLLO's published settings (README of apollo-torch 1.0.3): channel-wise scaling with rank 256,
#: and APOLLO-Mini, tensor-wise scaling with rank 1 and scale 128; both for 2-D weights only.
APOLLO_SETTINGS = {
    "apollo": {"rank": 256, "proj": "random", "scale_type": "channel", "scale": 1,
               "update_proj_gap": 200, "proj_type": "std"},
    "apollo-mini": {"rank": 1, "proj": "random", "scale_type": "tensor", "scale": 128,
                    "update_proj_gap": 200, "proj_type": "std"},
}  # fmt: skip


def apollo_groups(named: NamedParams, variant: str, weight_decay: float) -> list[dict[str, Any]]:
    """APOLLO's two groups: matrices get the low-rank projected scaling, everything else plain AdamW."""
    low_rank = [p for _, p in named if p.dim() == 2]
    regular = [p for _, p in named if p.dim() != 2]
    groups = [{"params": regular, "weight_decay": weight_decay}] if regular else []
    return [*groups, {"params": low_rank, "weight_decay": weight_decay, **APOLLO_SETTINGS[variant]}]


def apollo(variant: str) -> Factory:
    """``apollo-torch``'s ``APOLLOAdamW`` (pip ``apollo-torch``; it imports bitsandbytes)."""

    def build(named: NamedParams) -> Optimizer:
        from apollo_torch import APOLLOAdamW

        return cast(
            Optimizer, APOLLOAdamW(apollo_groups(named, variant, WEIGHT_DECAY), LR, (MOMENTUM, BETA2))
        )

    return build


class _Quiet:
    """Delegates to an optimizer whose ``step`` prints, and swallows what it prints."""

    def __init__(self, opt: Optimizer) -> None:
        self._opt = opt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._opt, name)

    def step(self, *args: Any, **kwargs: Any) -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            return self._opt.step(*args, **kwargs)


def has_sgdsai_fused() -> bool:
    import inspect

    from sgdsai import SGDSaI

    return "fused" in inspect.signature(SGDSaI.__init__).parameters
