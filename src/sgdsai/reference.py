"""SGDSaIReference: the test oracle, written straight from the math with no fast paths.

Slow on purpose: float64 statistics, one tensor at a time, Python floats for the scales. It shares
no code with :mod:`sgdsai.gsnr` or :mod:`sgdsai.functional`, so agreement is evidence.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT


class SGDSaIReference(Optimizer):
    """Same semantics as :class:`sgdsai.SGDSaI`, without flags beyond the algorithm's own."""

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
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps)
        super().__init__(params, defaults)
        self.normalize, self.unbiased, self.maximize = normalize, unbiased, maximize
        self.reference: float | None = None  # M: the largest g-SNR of the first measuring step

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        first = {}  # tensor -> raw g-SNR, or None when its noise cannot be measured
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or "scale" in self.state[p]:
                    continue
                g = p.grad.double().flatten()
                if not torch.isfinite(g).all() or not g.any():
                    continue  # nothing to measure yet
                std = g.std(correction=1 if self.unbiased else 0).item() if g.numel() > 1 else 0.0
                constant = g.numel() == 1 or std <= 1e-6 * abs(g.mean().item())
                first[p] = None if constant else g.norm().item() / (std + group["eps"])
        if first and self.reference is None:
            self.reference = max((v for v in first.values() if v is not None), default=1.0)
        for p, raw in first.items():
            if self.normalize:
                scale = 1.0 if raw is None else min(raw / self.reference, 1.0)
            else:
                scale = self.reference if raw is None else raw
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
