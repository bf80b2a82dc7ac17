r"""The optimizer zoo: every optimizer the lab trains or benchmarks, by name, built in one place.

Each `Entry` holds its builder, default lr and weight decay (starting points for sweeps, not
tuned values), the package it needs and a description. A builder takes
``(named_params, lr, weight_decay, info, **flags)``: ``info`` carries what a task knows about its
model (Adam-mini's ``dim`` and ``n_heads``, the ``io_names`` Muon leaves to AdamW), and
``flags`` are implementation flags passed to the constructor (``foreach``, ``fused``,
``momentum_dtype``), which the benchmarks vary. Parameters are split by
`sgdsai.param_groups.decay_groups` (nanoGPT's rule: tensors with two or more dimensions
decay), unless an entry says otherwise.

SGD-SaI has two modes (see ``docs/experiments.md``):

* ``sgdsai`` — the paper's Algorithm 1: population std, scales :math:`\min(G/M, 1)`.
* ``sgdsai-official`` — the released code's semantics: unbiased std, raw :math:`G` (no max
  normalisation), so its useful learning rates are about :math:`1/M` of the paper mode's.

``sgd-sai-1.0.3`` is the released package itself. Records written before the names settled are
read through `RENAMED`.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import io
import logging
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sgdsai.param_groups import decay_groups

logger = logging.getLogger(__name__)

NamedParams = Sequence[tuple[str, Tensor]]
Builder = Callable[..., torch.optim.Optimizer]  # (named, lr, weight_decay, info, **flags)

MOMENTUM = 0.9  #: SGD momentum and Adam's beta1, for every entry
BETAS = (MOMENTUM, 0.95)  #: the Adam family's betas (nanoGPT's)

#: the paper's profiling hyperparameters (Appendix C), used by ``sgdsai bench``
PROFILE_LR, PROFILE_WEIGHT_DECAY = 1e-3, 5e-2

#: old name -> current name, applied only when reading records written under the old names
RENAMED = {"sgd-sai-pkg": "sgd-sai-1.0.3", "official": "sgd-sai-1.0.3"}


def _sgdsai(
    *, normalize: bool = True, unbiased: bool = False, momentum: float = MOMENTUM, **mode: Any
) -> Builder:
    def build(named, lr, weight_decay, info, **flags):
        from sgdsai import SGDSaI

        groups = decay_groups(named, weight_decay)
        return SGDSaI(groups, lr, momentum, normalize=normalize, unbiased=unbiased, **mode, **flags)

    return build


def _sgdsai_blocks_m(named, lr, weight_decay, info, **flags):
    """Paper mode with the reference M over the blocks: the task's input embeddings and output
    head (``info["io_names"]``) are measured and clamped at 1 but never set M
    (``gsnr_reference=False``)."""
    from sgdsai import SGDSaI

    embedding = set(info.get("io_names", ()))
    groups = []
    for group in decay_groups(named, weight_decay):
        for reference in (True, False):
            chosen = [(n, p) for n, p in group["params"] if (n in embedding) != reference]
            if chosen:
                groups.append({**group, "params": chosen, "gsnr_reference": reference})
    if all(g["gsnr_reference"] for g in groups):
        raise ValueError("sgdsai-blocks-m needs a task that names its embeddings (info['io_names'])")
    return SGDSaI(groups, lr, MOMENTUM, **flags)


class Composite(torch.optim.Optimizer):
    """Several optimizers stepped as one: their groups are this one's (so LR schedulers scale every
    group's lr by the same factor) and their states are read together."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers
        self.defaults = {}
        self.param_groups = [g for o in optimizers for g in o.param_groups]

    @property  # read afresh: load_state_dict replaces each optimizer's state
    def state(self) -> collections.ChainMap:  # type: ignore[override]
        return collections.ChainMap(*(o.state for o in self.optimizers))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for o in self.optimizers:
            o.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for o, saved in zip(self.optimizers, state_dict["optimizers"], strict=True):
            o.load_state_dict(saved)
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]


def _muon(named, lr, weight_decay, info, **flags):
    """torch.optim.Muon on the 2-D hidden matrices, AdamW (0.9, 0.95) on the embeddings and head
    (``info["io_names"]``) and on every other tensor — the standard recipe.
    ``adjust_lr_fn="match_rms_adamw"`` (Moonlight) matches Muon's update RMS to AdamW's, so both
    parts take the one swept ``lr`` and ``weight_decay``."""
    embedding = set(info.get("io_names", ()))
    hidden = [(n, p) for n, p in named if p.dim() == 2 and n not in embedding]
    rest = [(n, p) for n, p in named if not (p.dim() == 2 and n not in embedding)]
    muon = torch.optim.Muon([p for _, p in hidden], lr, weight_decay, adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW(decay_groups(rest, weight_decay), lr, betas=BETAS, **flags)
    return Composite([muon, adamw])


def _sgdsai_vectors_at_one(named, lr, weight_decay, info, **flags):
    """Paper mode on the tensors of two or more dimensions; the vectors (biases, norm gains) at
    scale 1: SGD with SGD-SaI's EMA momentum at the base ``lr`` (torch's SGD with ``dampening`` =
    ``momentum`` keeps ``m <- mu m + (1 - mu) g`` with ``m_1 = g_1``), undecayed, in a group made by
    `decay_groups` like every other (names kept, frozen and shared tensors handled). M is taken over
    the matrices alone, which is paper mode's M wherever no vector would have set it (in practice
    everywhere: a vector's g-SNR is about the square root of its size)."""
    from sgdsai import SGDSaI

    matrices = [(n, p) for n, p in named if p.dim() >= 2]
    vectors = decay_groups([(n, p) for n, p in named if p.dim() < 2], 0.0)
    parts: list[torch.optim.Optimizer] = [SGDSaI(decay_groups(matrices, weight_decay), lr, MOMENTUM, **flags)]
    if vectors:
        parts.append(torch.optim.SGD(vectors, lr, momentum=MOMENTUM, dampening=MOMENTUM))
    return Composite(parts)


class _QuietStdout(contextlib.AbstractContextManager):
    """Route what a third-party optimizer prints (the released package's banner, Adam-mini's
    partition report) to the debug log."""

    def __enter__(self):
        self._buffer = io.StringIO()
        self._redirect = contextlib.redirect_stdout(self._buffer)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)
        if self._buffer.getvalue().strip():
            logger.debug("optimizer output: %s", self._buffer.getvalue().strip())
        return False


def _quiet(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Wrap ``opt.step`` so that what a third-party optimizer prints goes to the debug log."""
    step = opt.step

    def quiet_step(self, *args, **kwargs):
        with _QuietStdout():
            return step(*args, **kwargs)

    opt.step = types.MethodType(quiet_step, opt)  # type: ignore[method-assign]  # a bound method, as LR schedulers need
    return opt


def _released_package(named, lr, weight_decay, info, **flags):
    from sgd_sai import SGD_sai

    return _quiet(SGD_sai(decay_groups(named, weight_decay), lr, momentum=MOMENTUM, **flags))


def _pytorch_optimizer(named, lr, weight_decay, info, **flags):
    from pytorch_optimizer import SGDSaI as Theirs

    return Theirs(decay_groups(named, weight_decay), lr, MOMENTUM, **flags)


def _adamw(named, lr, weight_decay, info, **flags):
    return torch.optim.AdamW(decay_groups(named, weight_decay), lr, betas=BETAS, **flags)


def _sgd(nesterov: bool) -> Builder:
    def build(named, lr, weight_decay, info, **flags):
        groups = decay_groups(named, weight_decay)
        return torch.optim.SGD(groups, lr, momentum=MOMENTUM, nesterov=nesterov, **flags)

    return build


def _adam_mini(named, lr, weight_decay, info, **flags):
    """Adam-mini partitions by parameter name; ``info["adam_mini"]`` adds task-specific name keys
    (e.g. ``{"wqk_names": ["c_attn"]}``) to its sets. Its own rules decide what is decayed."""
    from adam_mini import Adam_mini

    with _QuietStdout():
        opt = Adam_mini(named, lr, betas=BETAS, weight_decay=weight_decay, dim=info["dim"],
                        n_heads=info["n_heads"], verbose=False, **flags)  # fmt: skip
    for attribute, keys in info.get("adam_mini", {}).items():
        getattr(opt, attribute).update(keys)
    return _quiet(opt)


def _prodigy(named, lr, weight_decay, info, **flags):
    from prodigyopt import Prodigy

    return Prodigy(decay_groups(named, weight_decay), lr, betas=BETAS, **flags)


#: APOLLO's published settings (README of apollo-torch 1.0.3): channel-wise scaling with rank 256,
#: and APOLLO-Mini, tensor-wise scaling with rank 1 and scale 128; both for 2-D weights only.
APOLLO_SETTINGS = {
    "apollo": {"rank": 256, "proj": "random", "scale_type": "channel", "scale": 1,
               "update_proj_gap": 200, "proj_type": "std"},
    "apollo-mini": {"rank": 1, "proj": "random", "scale_type": "tensor", "scale": 128,
                    "update_proj_gap": 200, "proj_type": "std"},
}  # fmt: skip


def _apollo(variant: str) -> Builder:
    """APOLLO / APOLLO-Mini (``apollo-torch``): 2-D matrices get its low-rank projected scaling
    with the published settings; other decayed tensors and the undecayed vectors are plain AdamW."""

    def build(named, lr, weight_decay, info, **flags):
        from apollo_torch import APOLLOAdamW

        groups = [
            {"params": [p for _, p in named if p.dim() == 2], "weight_decay": weight_decay,
             **APOLLO_SETTINGS[variant]},
            {"params": [p for _, p in named if p.dim() > 2], "weight_decay": weight_decay},
            {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0},
        ]  # fmt: skip
        return APOLLOAdamW([g for g in groups if g["params"]], lr, betas=BETAS, **flags)

    return build


@dataclass(frozen=True)
class Entry:
    build: Builder
    description: str
    lr: float  #: default learning rate (a starting point for sweeps, not a tuned value)
    weight_decay: float  #: default decoupled weight decay
    package: str | None = None  #: the pip distribution it needs, if any (its version goes in records)


OPTIMIZERS: dict[str, Entry] = {
    "sgdsai": Entry(_sgdsai(), "SGD-SaI, paper mode (population std, max-normalised)", 1.0, 1e-4),
    "sgdsai-numel": Entry(
        _sgdsai(scale="numel"), "SGD-SaI, sqrt(numel) in place of the g-SNR, max-normalised", 1.0, 1e-4
    ),
    "sgdsai-blocks-m": Entry(
        _sgdsai_blocks_m, "SGD-SaI paper mode, M over the blocks (embeddings clamped at 1)", 1.0, 1e-4
    ),
    "sgdsai-m0": Entry(_sgdsai(momentum=0.0), "SGD-SaI paper mode, momentum 0 (no state)", 1.0, 1e-4),
    "sgdsai-vec1": Entry(
        _sgdsai_vectors_at_one,
        "SGD-SaI paper mode on matrices; vectors (biases, norm gains) at scale 1, EMA-momentum SGD",
        1.0,
        1e-4,
    ),
    "sgdsai-official": Entry(
        _sgdsai(normalize=False, unbiased=True),
        "SGD-SaI, released-code mode (unbiased std, raw g-SNR)",
        1e-3,
        1e-2,
    ),
    "sgd-sai-1.0.3": Entry(
        _released_package, "the released sgd-sai 1.0.3 package itself", 1e-3, 1e-2, "sgd-sai"
    ),
    "pytorch-optimizer-sgdsai": Entry(
        _pytorch_optimizer,
        "pytorch_optimizer.SGDSaI (pytorch-optimizer 4.1.0), a third-party rewrite",
        1e-3,
        1e-2,
        "pytorch-optimizer",
    ),
    "adamw": Entry(_adamw, "torch.optim.AdamW, betas (0.9, 0.95)", 1e-3, 0.1),
    "sgdm": Entry(_sgd(False), "torch.optim.SGD, momentum 0.9", 0.1, 1e-4),
    "nesterov": Entry(_sgd(True), "torch.optim.SGD, Nesterov momentum 0.9", 0.1, 1e-4),
    "muon": Entry(_muon, "torch.optim.Muon (match_rms_adamw) on hidden matrices + AdamW, one lr", 1e-3, 0.1),
    "adam-mini": Entry(_adam_mini, "Adam-mini 1.1.1, betas (0.9, 0.95)", 1e-3, 0.1, "adam-mini"),
    "apollo": Entry(
        _apollo("apollo"),
        "APOLLO (apollo-torch 1.0.3), rank 256, channel-wise",
        1e-3,
        0.1,
        "apollo-torch",
    ),
    "apollo-mini": Entry(
        _apollo("apollo-mini"),
        "APOLLO-Mini (apollo-torch 1.0.3), rank 1, tensor-wise",
        1e-3,
        0.1,
        "apollo-torch",
    ),
    "prodigy": Entry(_prodigy, "Prodigy 1.1.2 (lr is a multiplier of its estimate)", 1.0, 0.1, "prodigyopt"),
}


def entry(name: str) -> Entry:
    """The zoo's entry ``name``; a clear error listing the names otherwise."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def available(name: str) -> bool:
    """Whether the package that ``name`` needs is installed."""
    package = entry(name).package
    return package is None or importlib.util.find_spec(package.replace("-", "_")) is not None


def build_named(
    name: str,
    named: NamedParams,
    lr: float,
    weight_decay: float,
    info: dict[str, Any] | None = None,
    **flags: Any,
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``(name, parameter)`` pairs, with implementation ``flags``."""
    return entry(name).build(named, lr, weight_decay, info or {}, **flags)


def build_optimizer(
    name: str,
    model: nn.Module,
    lr: float,
    weight_decay: float,
    info: dict[str, Any] | None = None,
    **flags: Any,
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``model``'s trainable parameters."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return build_named(name, named, lr, weight_decay, info, **flags)


def profiled(name: str, info: dict[str, Any] | None = None, **flags: Any) -> Callable[[NamedParams], Any]:
    """``named -> optimizer`` for the benchmarks: entry ``name`` at the paper's profiling
    hyperparameters (`PROFILE_LR`, `PROFILE_WEIGHT_DECAY`)."""
    entry(name)
    return lambda named: build_named(name, named, PROFILE_LR, PROFILE_WEIGHT_DECAY, info, **flags)


def state_breakdown(optimizer: torch.optim.Optimizer, param_device: torch.device) -> dict[str, Any]:
    """Bytes of every tensor in ``optimizer.state``: in all, per key, and split into buffers on the
    parameters' device and host scalars."""
    per_key: dict[str, int] = {}
    device_bytes = host_bytes = 0
    for state in optimizer.state.values():
        for key, value in state.items():
            if not torch.is_tensor(value):
                continue
            n = value.numel() * value.element_size()
            per_key[key] = per_key.get(key, 0) + n
            if value.device == param_device:
                device_bytes += n
            else:
                host_bytes += n
    return {
        "total": device_bytes + host_bytes,
        "device": device_bytes,
        "host": host_bytes,
        "per_key": per_key,
    }


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held in tensors of the optimizer's per-parameter state."""
    return state_breakdown(optimizer, torch.device("meta"))["total"]
