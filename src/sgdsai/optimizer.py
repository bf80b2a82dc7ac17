"""The SGD-SaI optimizer: validation, lazy per-tensor g-SNR measurement, state, dispatch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn
from torch._compile import _disable_dynamo
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT

from sgdsai import distributed, gsnr
from sgdsai.functional import sgdsai

__all__ = ["SGDSaI"]

logger = logging.getLogger(__name__)


class SGDSaI(Optimizer):
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
        foreach: bool | None = None,
        reference_group: Any = None,
        scale: str = "gsnr",
        fused: bool | None = None,
        stochastic_rounding: bool = False,
        momentum_dtype: torch.dtype | None = None,
    ) -> None:
        _check("lr", lr, lr >= 0.0)
        _check("momentum", momentum, 0.0 <= momentum < 1.0)
        _check("weight_decay", weight_decay, weight_decay >= 0.0)
        _check("eps", eps, eps >= 0.0)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            eps=eps,
            normalize=normalize,
            unbiased=unbiased,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
            stochastic_rounding=stochastic_rounding,
            momentum_dtype=momentum_dtype,
            scale=scale,
            gsnr_reference=True,
            gsnr_max=None,
        )
        super().__init__(params, defaults)
        self.reference_group = reference_group  # a ProcessGroup cannot be saved: not a group key

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; its tensors are measured at their first usable gradient, against the
        reference g-SNR the optimizer already holds."""
        reference = self._gsnr_max()
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        distributed.check_params(group["params"])
        _check_scale(group["scale"])
        if not isinstance(group["gsnr_reference"], bool):
            raise TypeError(f"gsnr_reference must be a bool, not {group['gsnr_reference']!r}")
        group["gsnr_max"] = reference

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("reference_group", None)
        for group in self.param_groups:
            for name, default in self.defaults.items():
                group.setdefault(name, default)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step; ``closure`` (re-evaluating the loss) is called once."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._measure_new_tensors()
        for group in self.param_groups:
            owners, params, grads, bufs, scales = self._group_tensors(group)
            sgdsai(
                params,
                grads,
                bufs,
                scales,
                lr=group["lr"],
                momentum=group["momentum"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
                foreach=group["foreach"],
                fused=group["fused"],
                stochastic_rounding=group["stochastic_rounding"],
                momentum_dtype=group["momentum_dtype"],
            )
            if group["momentum"] != 0:
                for p, buf in zip(owners, bufs):
                    assert buf is not None
                    self.state[p]["momentum_buffer"] = torch.view_as_complex(buf) if p.is_complex() else buf
        return loss

    # Host-side bookkeeping (Python state, CPU scalars) stays out of torch.compile graphs: traced,
    # it would guard on each step's new .grad objects and recompile every step.
    @_disable_dynamo
    def _measure_new_tensors(self) -> None:
        """Give every tensor that has a gradient and no ``state["gsnr"]`` yet its scale."""
        new = [
            (group, p)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None and "gsnr" not in self.state[p]
        ]
        reference = self._gsnr_max()
        group_pending = reference is None and self.reference_group is not None
        if not new and not group_pending:
            return
        for _, p in new:
            _check_dense(p.grad)
        results = self._measurements(new)
        if reference is None:
            # A numel value is known without a usable gradient: a zero first gradient still counts.
            votes = [
                r
                for (group, _), r in zip(new, results)
                if group["gsnr_reference"] and (not r.deferred or group["scale"] == "numel")
            ]
            regular = [r.gsnr for r in votes if r.gsnr is not None]
            reference = distributed.reference(regular, bool(votes), self.reference_group)
            for group in self.param_groups:
                group["gsnr_max"] = reference
        for (group, p), result in zip(new, results):
            if result.kind is gsnr.Kind.NONFINITE:
                logger.warning("non-finite gradient in a tensor of shape %s: g-SNR deferred", tuple(p.shape))
            if result.deferred or reference is None:
                continue  # nothing to start from yet, or no reference tensor has set M yet
            scale = gsnr.lr_scale(result, reference, group["normalize"])
            self.state[p]["gsnr"] = torch.tensor(scale, dtype=torch.float32)

    def _measurements(self, new: list[tuple[dict[str, Any], Tensor]]) -> list[gsnr.Measurement]:
        """Measure g-SNR where ``scale="gsnr"``; elsewhere only whether the gradient is non-zero."""
        by_gsnr = [i for i, (group, _) in enumerate(new) if group["scale"] == "gsnr"]
        by_numel = [i for i, (group, _) in enumerate(new) if group["scale"] == "numel"]
        results: list[gsnr.Measurement] = [gsnr.Measurement(gsnr.Kind.ZERO, None)] * len(new)
        stats = distributed.grad_stats([new[i][1].grad for i in by_gsnr]) if by_gsnr else []  # type: ignore[misc]
        for i, s in zip(by_gsnr, stats):
            group = new[i][0]
            results[i] = gsnr.measure(s, group["eps"], group["unbiased"])
        grads = [new[i][1].grad for i in by_numel]
        nonzero = gsnr.nonzero([distributed.local_tensor(g) for g in grads]) if grads else []  # type: ignore[arg-type]
        for i, g, started in zip(by_numel, grads, nonzero):
            results[i] = gsnr.measure_numel(g.numel(), started)  # type: ignore[union-attr]
        return results

    @_disable_dynamo  # not named _init_group: dynamo expects that method to return a constant
    def _group_tensors(
        self, group: dict[str, Any]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor | None], list[float]]:
        """The tensors this step updates, as real views; ``owners`` are the parameters themselves."""
        owners, params, grads, bufs, gsnrs = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None or "gsnr" not in self.state[p]:
                continue  # no gradient, or the g-SNR is deferred: this step leaves p untouched
            _check_dense(p.grad)
            state = self.state[p]
            buf = state.get("momentum_buffer")
            owners.append(p)
            params.append(_real(p))
            grads.append(_real(p.grad))
            bufs.append(None if buf is None else _real(buf))
            gsnrs.append(state["gsnr"])
        return owners, params, grads, bufs, [float(s) for s in gsnrs]  # 0-d CPU tensors: no device sync

    def _gsnr_max(self) -> float | None:
        return next((g["gsnr_max"] for g in self.param_groups if g["gsnr_max"] is not None), None)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load state; ``gsnr`` stays a float32 CPU tensor whatever the parameter's dtype."""
        saved = {k: v["gsnr"] for k, v in state_dict["state"].items() if "gsnr" in v}
        super().load_state_dict(state_dict)
        saved_ids = chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = chain.from_iterable(g["params"] for g in self.param_groups)
        for saved_id, p in zip(saved_ids, params):
            if saved_id in saved:
                self.state[p]["gsnr"] = torch.as_tensor(saved[saved_id]).to("cpu", torch.float32, copy=True)
        for group in self.param_groups:  # torch cast the buffers to the parameters' dtype; undo that
            for p in group["params"]:
                buf = self.state[p].get("momentum_buffer")
                if group["momentum_dtype"] is not None and buf is not None:
                    self.state[p]["momentum_buffer"] = buf.to(group["momentum_dtype"])

    def gsnr(self, model: nn.Module | None = None) -> dict[str, float]:
        """Every measured tensor's learning-rate scale, keyed by parameter name.

        Names come from named parameters given to the optimizer, else from ``model``, else they
        are ``"group{i}.param{j}"``. Multiply by ``param_groups[0]["gsnr_max"]`` for the raw g-SNR
        of a normalised, unclamped tensor.
        """
        names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
        table = {}
        for i, group in enumerate(self.param_groups):
            group_names = group.get("param_names")
            for j, p in enumerate(group["params"]):
                if "gsnr" not in self.state[p]:
                    continue
                name = group_names[j] if group_names else names.get(id(p), f"group{i}.param{j}")
                table[name] = float(self.state[p]["gsnr"])
        return table


def _check(name: str, value: float, ok: bool) -> None:
    if not ok:
        raise ValueError(f"Invalid {name} value: {value}")


#: What a tensor's learning-rate scale is computed from (the ``scale`` flag).
SCALES = ("gsnr", "numel")


def _check_scale(scale: Any) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(repr, SCALES))}, not {scale!r}")


def _check_dense(grad: Tensor) -> None:
    if grad.is_sparse:
        raise RuntimeError("SGDSaI does not support sparse gradients; use a dense embedding (sparse=False)")


def _real(t: Tensor) -> Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


SGDSaI.__doc__ = r"""SGD-SaI: SGD with EMA momentum, decoupled weight decay and a constant per-tensor
learning-rate scale measured once, from each tensor's first gradient (Xu et al., 2024, arXiv 2412.11768).

.. math::
    \begin{aligned}
        &\rule{110mm}{0.4pt} \\
        &\textbf{input}: \eta \text{ (lr)}, \mu \text{ (momentum)}, \lambda \text{ (weight decay)},
            \epsilon, \theta^{(i)}_0 \text{ (tensors } i = 1..B), \textit{maximize} \\
        &\rule{110mm}{0.4pt} \\
        &\textbf{for} \: t = 1 \: \textbf{to} \: \ldots \: \textbf{do} \\
        &\hspace{5mm} g^{(i)}_t \leftarrow \nabla_{\theta^{(i)}} f_t(\theta_{t-1}) \quad
            (g^{(i)}_t \leftarrow -g^{(i)}_t \text{ if } \textit{maximize}) \\
        &\hspace{5mm} \textbf{if} \: \text{tensor } i \text{ has no } \tilde G^{(i)} \text{ yet}
            \text{ and } g^{(i)}_t \text{ is finite and non-zero}: \\
        &\hspace{10mm} G^{(i)} \leftarrow \|g^{(i)}_t\|_2 / (\sigma(g^{(i)}_t) + \epsilon)
            \qquad \text{(population std; unbiased if \textit{unbiased})} \\
        &\hspace{10mm} M \leftarrow \max_k G^{(k)} \text{ over the tensors of the first measuring step
            (kept for good)} \\
        &\hspace{10mm} \tilde G^{(i)} \leftarrow \min(G^{(i)} / M, 1) \text{ if \textit{normalize} else }
            G^{(i)}, \qquad m^{(i)}_t \leftarrow g^{(i)}_t \\
        &\hspace{5mm} \textbf{else if} \: \text{tensor } i \text{ has } \tilde G^{(i)}:
            \quad m^{(i)}_t \leftarrow \mu m^{(i)}_{t-1} + (1 - \mu) g^{(i)}_t \\
        &\hspace{5mm} \textbf{else}: \text{ leave } \theta^{(i)} \text{ untouched this step} \\
        &\hspace{5mm} \theta^{(i)}_t \leftarrow (1 - \eta\lambda)\, \theta^{(i)}_{t-1}
            - \eta\, \tilde G^{(i)} m^{(i)}_t \\
        &\rule{110mm}{0.4pt} \\
        &\textbf{return} \: \theta_t \\
        &\rule{110mm}{0.4pt}
    \end{aligned}

With ``momentum=0`` the update uses :math:`g_t` directly and no buffer is kept.

Args:
    params: tensors, ``(name, tensor)`` pairs (names then key :meth:`gsnr`), or parameter groups.
        Groups may set their own ``lr``, ``momentum``, ``weight_decay``, ``eps`` and flags.
    lr: :math:`\eta`, the learning rate of the highest-g-SNR tensor when normalised (default: 1).
        The EMA momentum has the size of a gradient (torch's SGD buffer is :math:`1/(1-\mu)` times
        larger), so ``lr=1`` here moves the largest tensors like ``SGD(lr=0.1, momentum=0.9)``;
        on a tiny GPT-2 (``sgdsai demo``) lr 1 to 10 trained well and 0.1 was too slow. With
        ``normalize=False`` divide by the model's :math:`M` (about :math:`\sqrt{\text{numel}}` of its
        largest tensor: 256 to 6,000 for common models). :math:`\eta` also sets the decoupled
        weight decay, unscaled by g-SNR.
    momentum: :math:`\mu`, the EMA coefficient, in [0, 1) (default: 0.9).
    weight_decay: :math:`\lambda`, decoupled: :math:`\theta \leftarrow \theta(1 - \eta\lambda)`
        (default: 1e-4, so that the default decay per step, :math:`\eta\lambda = 10^{-4}`, equals
        that of ``AdamW(lr=1e-3, weight_decay=0.1)``).
    eps: :math:`\epsilon`, added to the gradient's std, in gradient units (default: 1e-8). It
        only matters for tensors whose first-gradient std is below about ``1e3 * eps``; there it
        lowers the g-SNR, so g-SNR is scale-invariant only for gradients well above ``eps``.
    normalize: divide every g-SNR by the reference :math:`M`, so scales lie in (0, 1], as the
        paper's Algorithm 1 does (default: True). ``False`` uses the raw g-SNR, as the authors'
        released package does; then ``lr`` must be about :math:`1/M` smaller.
    unbiased: use the unbiased std (Bessel's correction), as the released package does,
        instead of the paper's population std (default: False).
    maximize: maximize the objective instead of minimizing it; ``.grad`` is never modified.
    foreach: use the multi-tensor (``torch._foreach_*``) implementation; ``None`` picks it for
        CUDA tensors and the single-tensor loop otherwise, as :mod:`torch.optim` does.
    reference_group: a ``torch.distributed`` process group over whose ranks the reference
        :math:`M` is maximised (one ``all_reduce`` at the first measuring step, which every rank of
        the group must take together). Give it when ranks own different tensors: ZeRO (see
        :func:`sgdsai.zero.zero_redundancy_sgdsai`), pipeline stages, any manual split.
        ``None`` (default): this process's tensors only, right for one process, DDP and FSDP2.
        DTensor gradients (FSDP2, tensor parallel) are always measured whole, whatever this is;
        see :mod:`sgdsai.distributed`.
    scale: what each tensor's scale is computed from. ``"gsnr"`` (default): its measured g-SNR,
        as in the paper. ``"numel"``: $\sqrt{\text{numel}}$ in its place (the rule of the authors'
        unreleased ``v1.1.0-nightly`` branch, which ``normalize=False`` reproduces): no gradient
        statistics and no collective; $M$ is the largest $\sqrt{\text{numel}}$ of the tensors that
        have a gradient at the first measuring step, an all-zero first gradient included (its
        tensor still waits for a non-zero gradient to start). A 1-element tensor gets
        $1/M$ (raw: 1); non-finite gradients are not special.
    fused: one ``torch.compile``\ d kernel per tensor (:mod:`sgdsai.fused`): it reads
        :math:`g, m, \theta` once and writes :math:`m, \theta` once. The first step compiles
        (seconds); ``None`` means ``False``.
    stochastic_rounding: do the update in float32 and write bfloat16 weights and buffers back
        with stochastic rounding (unbiased), so updates below half an ulp are not lost.
    momentum_dtype: dtype of the momentum buffer (default: the parameter's). ``torch.bfloat16``
        halves the state of float32 weights (2 bytes per parameter; real parameters only).
        Either low-precision flag selects the float32-math loop of :mod:`sgdsai.lowprecision`
        instead of foreach/fused.

Group keys:
    Besides the hyperparameters and flags above, a group may set ``gsnr_reference=False``: its
    tensors are measured (and clamped at 1) but never take part in choosing $M$, so that, for
    example, a tied embedding and head need not set every block's rate. If the first measuring step
    measures only such tensors, they wait until a reference tensor has set $M$.

State:
    ``state[p]["momentum_buffer"]`` (``momentum_dtype``, by default the parameter's dtype; absent
    when ``momentum=0``) and
    ``state[p]["gsnr"]``: the final scale :math:`\tilde G`, a 0-d float32 tensor on the CPU, so
    that reading it never synchronises a device and bf16 parameters do not round it. The
    reference :math:`M` is ``param_groups[k]["gsnr_max"]`` (equal in every group; ``None`` before
    the first measurement). Everything is saved by :meth:`state_dict`, so a resumed run never
    measures again. To impose a scale instead of measuring one, set ``state[p]["gsnr"]`` before
    the parameter's first step.

Rules of measurement:
    * A tensor is measured at its first *usable* gradient, not at the optimizer's first step. A
      ``None`` gradient (unused branch, MoE expert, frozen tensor, a group added later), an
      all-zero gradient (LoRA ``A`` while ``B = 0``, anything behind a zero-initialised
      projection) or a non-finite one (logged as a warning) defers the measurement, and that
      step leaves the tensor untouched (no decay, no momentum). Each step with such a pending
      tensor costs one device-to-host transfer; steady steps cost none.
    * A tensor with one element, or whose first gradient is constant (std at most ``1e-6`` of
      its mean), has no measurable noise. It is treated as pure signal: scale 1 (normalised) or
      :math:`M` (raw), and it never takes part in choosing :math:`M`. So a scalar parameter
      neither explodes (the released code gives it :math:`|g|/\epsilon`) nor shrinks the others.
    * :math:`M` is the largest regular g-SNR of the first step that measured anything (1 if that
      step measured only constant tensors). Tensors measured later are divided by the same
      :math:`M` and clamped at 1, so no tensor ever gets a larger rate than :math:`\eta`.
    * Statistics are computed in float32 (float64 for float64 gradients), complex tensors as
      their real view. Sparse gradients raise.

.. note::
    Departures from the paper's Algorithm 1, which this class otherwise implements (the default):
    the measurement is per tensor and lazy instead of one global first step, which is what makes
    late, zero and non-finite first gradients safe; constant and one-element tensors get a defined
    scale; late tensors are clamped at 1. Departures from the released package ``sgd-sai`` 1.0.3,
    which ``normalize=False, unbiased=True`` reproduces on regular tensors with ``momentum > 0``:
    that package has no normalisation, freezes tensors whose first gradient is zero, gives
    scalars :math:`|g|/\epsilon`, raises ``KeyError`` for late gradients, measures again after a
    checkpoint is loaded, fails with ``momentum=0``, evaluates the closure twice on its first step
    and synchronises the device once per tensor per step.

Example:
    >>> import torch
    >>> from sgdsai import SGDSaI
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Linear(16, 4)
    >>> opt = SGDSaI(model.named_parameters(), lr=1.0)
    >>> model(torch.randn(32, 16)).square().mean().backward()
    >>> opt.step()
    >>> {name: round(scale, 3) for name, scale in opt.gsnr().items()}
    {'weight': 1.0, 'bias': 0.427}
"""
