r"""Whether LoRA's A matrices trained: how far they moved from their initialisation.

LoRA starts with :math:`B = 0`, so every A's first gradient is exactly zero. An optimizer that fixes
a per-tensor scale from the first gradient (the released SGD-SaI package) never moves A again,
except by weight decay, which only shrinks it: :math:`A_t = c\,A_0`. So besides the relative change
:math:`\lVert A - A_0\rVert / \lVert A_0\rVert` this reports the part of the change orthogonal
to :math:`A_0`, which shrinking alone leaves at zero (up to float rounding, about
:math:`10^{-7}` per step) and training does not.
"""

from __future__ import annotations

import statistics

import torch
from torch import nn


def lora_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every LoRA A matrix, by name, to compare against later."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_A." in n}


@torch.no_grad()
def lora_metrics(model: nn.Module, initial: dict[str, torch.Tensor]) -> dict[str, float]:
    """``lora_A_rel_change`` (mean over A of the relative change), ``lora_A_orth_change`` (mean
    over A of the relative change orthogonal to :math:`A_0`), ``lora_A_orth_change_min`` (its
    smallest value: zero when some A did not train) and ``lora_B_norm`` (mean Frobenius norm)."""
    params = dict(model.named_parameters())
    rel, orth = [], []
    for name, a0 in initial.items():
        a0 = a0.double().cpu()
        delta = params[name].detach().double().cpu() - a0
        scale = a0.norm().item()
        along = (delta * a0).sum() / (a0 * a0).sum()
        rel.append(delta.norm().item() / scale)
        orth.append((delta - along * a0).norm().item() / scale)
    b_norms = [p.detach().norm().item() for n, p in params.items() if ".lora_B." in n]
    return {
        "lora_A_rel_change": statistics.fmean(rel),
        "lora_A_orth_change": statistics.fmean(orth),
        "lora_A_orth_change_min": min(orth),
        "lora_B_norm": statistics.fmean(b_norms),
    }
