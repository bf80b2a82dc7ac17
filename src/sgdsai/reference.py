"""SGDSaIReference: the test oracle, written straight from the math with no fast paths.

Slow on purpose: float64 statistics, one tensor at a time, Python floats for the scales. It shares
no code with `sgdsai.gsnr` or `sgdsai.functional`, so agreement is evidence.
"""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT


class SGDSaIReference(Optimizer):
    """Same semantics as `sgdsai.SGDSaI`, without flags beyond the algorithm's own.

    Groups may set `gsnr_reference=False`: their tensors are measured and clamped at 1 but never
    set the reference $M$.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        eps: float = 1e-8,
        *,
        normalize: bool = True,
        unbiased: bool = False,
        maximize: bool = False,
        scale: str = "gsnr",
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps, gsnr_reference=True)
        super().__init__(params, defaults)
        self.normalize, self.unbiased, self.maximize, self.scale = normalize, unbiased, maximize, scale
        self.reference: float | None = None  # M: the largest g-SNR of the first measuring step

    def _raw(self, g: torch.Tensor, eps: float) -> float | None:
        """The tensor's raw scale, or None when its noise cannot be measured."""
        if self.scale == "numel":
            return math.sqrt(g.numel()) if g.numel() > 0 else None
        std = g.std(correction=1 if self.unbiased else 0).item() if g.numel() > 1 else 0.0
        constant = g.numel() <= 1 or std <= 1e-6 * abs(g.mean().item())
        return None if constant else g.norm().item() / (std + eps)

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        first = {}  # tensor -> raw value, or None when its noise cannot be measured
        candidates = []  # (raw value, sets M?) of every tensor this step could measure
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or "scale" in self.state[p] or p.numel() == 0:
                    continue  # a tensor with no elements has nothing to update and never sets M
                g = p.grad.double().flatten()
                raw = self._raw(g, group["eps"])
                candidates.append((raw, group["gsnr_reference"]))
                if not g.any() or (self.scale == "gsnr" and not torch.isfinite(g).all()):
                    continue  # nothing to start from yet
                first[p] = (raw, group["gsnr_reference"])
        if self.reference is None:
            # numel needs no gradient to know its value: every tensor with a gradient counts
            counted = candidates if self.scale == "numel" else list(first.values())
            if any(ref for _, ref in counted):
                self.reference = max((v for v, ref in counted if ref and v is not None), default=1.0)
        reference = self.reference
        if reference is None:
            return  # no reference tensor measured yet: every tensor waits for M, none has a scale
        for p, (raw, _) in first.items():
            if self.normalize:
                scale = 1.0 if raw is None else min(raw / reference, 1.0)
            else:
                scale = reference if raw is None else raw
            self.state[p]["scale"] = float(torch.tensor(scale, dtype=torch.float32))  # stored as float32

        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None or "scale" not in self.state[p]:
                    continue
                g = -p.grad if self.maximize else p.grad
                m = self.state[p].get("m")
                m = g.clone() if m is None else mu * m + (1 - mu) * g  # m_1 = g_1, then EMA
                if mu != 0:
                    self.state[p]["m"] = m
                p.mul_(1 - lr * wd)
                p.add_(-lr * self.state[p]["scale"] * m)
