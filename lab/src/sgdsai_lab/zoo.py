r"""The one place baseline optimizers are built: name -> factory.

Every factory takes the same arguments, ``(named_params, lr, weight_decay, model_info)``, and splits
the parameters the same way (nanoGPT's ``configure_optimizers``): tensors with two or more dimensions
are decayed, biases and norm gains are not. ``model_info`` carries what Adam-mini needs to find its
attention blocks (``dim``, ``n_heads``).

SGD-SaI has two modes (see ``docs/experiments.md``):

* ``sgdsai`` — the paper's Algorithm 1: population std, scales :math:`\min(G/M, 1)`.
* ``sgdsai-official`` — the released code's semantics: unbiased std, raw :math:`G` (no max
  normalisation), so its useful learning rates are about :math:`1/M` of the paper mode's.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

NamedParams = Iterable[tuple[str, nn.Parameter]]
Factory = Callable[[list[tuple[str, nn.Parameter]], float, float, dict[str, Any]], torch.optim.Optimizer]


def decay_groups(named: list[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: matrices (decayed) and vectors/scalars (not decayed), with parameter names."""
    decay = [(n, p) for n, p in named if p.requires_grad and p.dim() >= 2]
    other = [(n, p) for n, p in named if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": [p for _, p in decay], "param_names": [n for n, _ in decay], "weight_decay": weight_decay},
        {"params": [p for _, p in other], "param_names": [n for n, _ in other], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def _sgdsai(normalize: bool = True, unbiased: bool = False, momentum: float = 0.9, **flags: Any) -> Factory:
    def build(named, lr, weight_decay, info):
        from sgdsai import SGDSaI

        groups = decay_groups(named, weight_decay)
        return SGDSaI(groups, lr, momentum, normalize=normalize, unbiased=unbiased, **flags)

    return build


def _sgdsai_blocks_m(named, lr, weight_decay, info):
    """Paper mode with the reference M over the blocks: the task's input embeddings and output
    head (``info["io_names"]``) are measured and clamped at 1 but never set M
    (``gsnr_reference=False``)."""
    from sgdsai import SGDSaI

    embedding = set(info.get("io_names", ()))
    groups = []
    for group in decay_groups(named, weight_decay):
        pairs = list(zip(group["param_names"], group["params"]))
        for reference in (True, False):
            chosen = [(n, p) for n, p in pairs if (n in embedding) != reference]
            if chosen:
                groups.append({**group, "params": [p for _, p in chosen], "param_names": [n for n, _ in chosen],
                               "gsnr_reference": reference})  # fmt: skip
    if not any(not g["gsnr_reference"] for g in groups):
        raise ValueError("sgdsai-blocks-m needs a task that names its embeddings (info['io_names'])")
    return SGDSaI(groups, lr, 0.9)


class Composite(torch.optim.Optimizer):
    """Several optimizers stepped as one: their groups are this one's (so LR schedulers scale every
    group's lr by the same factor) and their states are read together."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers
        self.defaults = {}
        self.param_groups = [g for o in optimizers for g in o.param_groups]
        self.state = collections.ChainMap(*(o.state for o in optimizers))  # type: ignore[assignment]

    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for o in self.optimizers:
            o.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none)


def _muon(named, lr, weight_decay, info):
    """torch.optim.Muon on the 2-D hidden matrices, AdamW (0.9, 0.95) on the embeddings and head
    (``info["io_names"]``) and on every other tensor — the standard recipe.
    ``adjust_lr_fn="match_rms_adamw"`` (Moonlight) matches Muon's update RMS to AdamW's, so both
    parts take the one swept ``lr`` and ``weight_decay``."""
    embedding = set(info.get("io_names", ()))
    hidden = [(n, p) for n, p in named if p.dim() == 2 and n not in embedding]
    rest = [(n, p) for n, p in named if not (p.dim() == 2 and n not in embedding)]
    muon = torch.optim.Muon([p for _, p in hidden], lr, weight_decay, adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW(_strip_names(decay_groups(rest, weight_decay)), lr, betas=(0.9, 0.95))
    return Composite([muon, adamw])


class _QuietStdout(contextlib.AbstractContextManager):
    """Route what the released package prints (a banner on its first step) to the log."""

    def __enter__(self):
        self._buffer = io.StringIO()
        self._redirect = contextlib.redirect_stdout(self._buffer)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)
        if self._buffer.getvalue().strip():
            logger.debug("sgd_sai: %s", self._buffer.getvalue().strip())
        return False


def _quiet(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Wrap ``opt.step`` so that what a third-party optimizer prints goes to the debug log."""
    step = opt.step

    def quiet_step(self, *args, **kwargs):
        with _QuietStdout():
            return step(*args, **kwargs)

    opt.step = types.MethodType(quiet_step, opt)  # type: ignore[method-assign]  # a bound method, as LR schedulers need
    return opt


def _official_package(named, lr, weight_decay, info):
    from sgd_sai import SGD_sai

    return _quiet(SGD_sai(_strip_names(decay_groups(named, weight_decay)), lr, momentum=0.9))


def _strip_names(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in g.items() if k != "param_names"} for g in groups]


def _adamw(named, lr, weight_decay, info):
    return torch.optim.AdamW(_strip_names(decay_groups(named, weight_decay)), lr, betas=(0.9, 0.95))


def _sgd(nesterov: bool) -> Factory:
    def build(named, lr, weight_decay, info):
        return torch.optim.SGD(
            _strip_names(decay_groups(named, weight_decay)), lr, momentum=0.9, nesterov=nesterov
        )

    return build


def _adam_mini(named, lr, weight_decay, info):
    """Adam-mini partitions by parameter name; ``info["adam_mini"]`` adds task-specific name keys
    (e.g. ``{"wqk_names": ["c_attn"]}``) to its sets. Its own rules decide what is decayed."""
    from adam_mini import Adam_mini

    with _QuietStdout():
        opt = Adam_mini(
            named,
            lr,
            betas=(0.9, 0.95),
            weight_decay=weight_decay,
            dim=info["dim"],
            n_heads=info["n_heads"],
            verbose=False,
        )
    for attribute, keys in info.get("adam_mini", {}).items():
        getattr(opt, attribute).update(keys)
    return _quiet(opt)


def _prodigy(named, lr, weight_decay, info):
    from prodigyopt import Prodigy

    return Prodigy(_strip_names(decay_groups(named, weight_decay)), lr, betas=(0.9, 0.95))


def _apollo(variant: str) -> Factory:
    """APOLLO / APOLLO-Mini (``apollo-torch``): 2-D matrices get its low-rank projected scaling
    with the published settings; other decayed tensors and the undecayed vectors are plain AdamW."""

    def build(named, lr, weight_decay, info):
        from apollo_torch import APOLLOAdamW

        from sgdsai_lab.bench.optimizers import APOLLO_SETTINGS

        groups = [
            {"params": [p for _, p in named if p.dim() == 2], "weight_decay": weight_decay,
             **APOLLO_SETTINGS[variant]},
            {"params": [p for _, p in named if p.dim() > 2], "weight_decay": weight_decay},
            {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0},
        ]  # fmt: skip
        return APOLLOAdamW([g for g in groups if g["params"]], lr, betas=(0.9, 0.95))

    return build


@dataclass(frozen=True)
class Spec:
    factory: Factory
    package: str | None  #: the pip package it needs, if any
    description: str
    lr: float  #: default learning rate (a starting point for sweeps, not a tuned value)
    weight_decay: float  #: default decoupled weight decay


OPTIMIZERS: dict[str, Spec] = {
    "sgdsai": Spec(_sgdsai(), None, "SGD-SaI, paper mode (population std, max-normalised)", 1.0, 1e-4),
    "sgdsai-numel": Spec(
        _sgdsai(scale="numel"), None, "SGD-SaI, sqrt(numel) in place of the g-SNR, max-normalised", 1.0, 1e-4
    ),
    "sgdsai-blocks-m": Spec(
        _sgdsai_blocks_m, None, "SGD-SaI paper mode, M over the blocks (embeddings clamped at 1)", 1.0, 1e-4
    ),
    "sgdsai-m0": Spec(_sgdsai(momentum=0.0), None, "SGD-SaI paper mode, momentum 0 (no state)", 1.0, 1e-4),
    "muon": Spec(
        _muon, None, "torch.optim.Muon (match_rms_adamw) on hidden matrices + AdamW, one lr", 1e-3, 0.1
    ),
    "sgdsai-official": Spec(
        _sgdsai(normalize=False, unbiased=True),
        None,
        "SGD-SaI, released-code mode (unbiased std, raw g-SNR)",
        1e-3,
        1e-2,
    ),
    "sgd-sai-pkg": Spec(
        _official_package, "sgd-sai", "the released sgd-sai 1.0.3 package itself", 1e-3, 1e-2
    ),
    "adamw": Spec(_adamw, None, "torch.optim.AdamW, betas (0.9, 0.95)", 1e-3, 0.1),
    "sgdm": Spec(_sgd(False), None, "torch.optim.SGD, momentum 0.9", 0.1, 1e-4),
    "nesterov": Spec(_sgd(True), None, "torch.optim.SGD, Nesterov momentum 0.9", 0.1, 1e-4),
    "adam-mini": Spec(_adam_mini, "adam-mini", "Adam-mini 1.1.1, betas (0.9, 0.95)", 1e-3, 0.1),
    "apollo": Spec(
        _apollo("apollo"), "apollo-torch", "APOLLO (apollo-torch 1.0.3), rank 256, channel-wise", 1e-3, 0.1
    ),
    "apollo-mini": Spec(
        _apollo("apollo-mini"),
        "apollo-torch",
        "APOLLO-Mini (apollo-torch 1.0.3), rank 1, tensor-wise",
        1e-3,
        0.1,
    ),
    "prodigy": Spec(_prodigy, "prodigyopt", "Prodigy 1.1.2 (lr is a multiplier of its estimate)", 1.0, 0.1),
}


def build_optimizer(
    name: str, model: nn.Module, lr: float, weight_decay: float, info: dict[str, Any] | None = None
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``model``'s trainable parameters."""
    if name not in OPTIMIZERS:
        raise KeyError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return OPTIMIZERS[name].factory(named, lr, weight_decay, info or {})


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held in tensors of the optimizer's per-parameter state."""
    return sum(
        t.numel() * t.element_size()
        for s in optimizer.state.values()
        for t in s.values()
        if torch.is_tensor(t)
    )
