"""The SGD-SaI optimizer: validation, lazy per-tensor g-SNR measurement, state, dispatch."""

from __future__ import annotations

import copy
import logging
import numbers
import warnings
from collections.abc import Callable
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

#: The state key of a tensor's learning-rate scale $\tilde G$.
SCALE_KEY = "lr_scale"
#: Its name before 0.1.0: still loaded, and still imposes a scale when set (deprecated).
OLD_SCALE_KEY = "gsnr"


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
        _check_group(defaults)  # a default that every group overrides must still be valid
        super().__init__(params, defaults)
        self.reference_group = reference_group  # a ProcessGroup cannot be saved: not a group key

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; its tensors are measured at their first usable gradient, against the
        reference g-SNR the optimizer already holds."""
        reference = self._gsnr_max()
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        distributed.check_params(group["params"])
        _check_group(group)
        _check_scale(group["scale"])
        if group["momentum_dtype"] is not None and any(p.is_complex() for p in group["params"]):
            raise ValueError(
                f"momentum_dtype={group['momentum_dtype']} applies to real parameters only; "
                "put complex parameters in a group with momentum_dtype=None"
            )
        if not isinstance(group["gsnr_reference"], bool):
            raise TypeError(f"gsnr_reference must be a bool, not {group['gsnr_reference']!r}")
        group["gsnr_max"] = reference

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore from `load_state_dict`, `copy.deepcopy` or pickle.

        Groups saved before a key existed get its default. `differentiable`, which torch's
        `__setstate__` adds to the defaults, is not a key of SGD-SaI's groups, so a
        `state_dict()` → `load_state_dict()` round trip returns the same `state_dict()`.
        """
        super().__setstate__(state)
        self.__dict__.setdefault("reference_group", None)
        for group in self.param_groups:
            for name, default in self.defaults.items():
                if name != "differentiable":
                    group.setdefault(name, default)
            for p in group["params"]:
                if p in self.state:
                    _place_state(self.state[p], p, group["momentum_dtype"])

    def __getstate__(self) -> dict[str, Any]:
        """The pickled state; an optimizer with a `reference_group` cannot be pickled.

        Raises:
            TypeError: `reference_group` is set: a process group is bound to this process and
                cannot be pickled. Pickle `state_dict()` instead (the group is not part of it)
                and pass `reference_group` again to the optimizer that loads it. `copy.deepcopy`
                works: the copy shares the group.
        """
        if self.reference_group is not None:
            raise TypeError(
                "cannot pickle an SGDSaI with a reference_group (a process group is not picklable): "
                "save state_dict() and give reference_group to the optimizer that loads it"
            )
        return super().__getstate__()

    def __deepcopy__(self, memo: dict[int, Any]) -> SGDSaI:
        """A deep copy of parameters and state that shares `reference_group` (not copyable)."""
        if self.reference_group is not None:
            memo[id(self.reference_group)] = self.reference_group
        duplicate = type(self).__new__(type(self))
        memo[id(self)] = duplicate
        duplicate.__setstate__(copy.deepcopy(Optimizer.__getstate__(self), memo))
        duplicate.reference_group = self.reference_group
        return duplicate

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step; `closure` (re-evaluating the loss) is called once."""
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
        """Give every tensor that has a gradient and no `state["lr_scale"]` yet its scale."""
        new = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if OLD_SCALE_KEY in state:  # imposed under the old name, before or after a measurement
                    warnings.warn(
                        'state[p]["gsnr"] is deprecated: impose a scale as state[p]["lr_scale"]',
                        FutureWarning,
                        stacklevel=7,  # the caller of step(), through torch's step and dynamo wrappers
                    )
                    state[SCALE_KEY] = state.pop(OLD_SCALE_KEY)
                elif (
                    SCALE_KEY not in state and p.numel() == 0
                ):  # nothing to measure or update: never decides M
                    state[SCALE_KEY] = torch.tensor(1.0, dtype=torch.float32)
                if SCALE_KEY not in state:
                    new.append((group, p))
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
            self.state[p][SCALE_KEY] = torch.tensor(scale, dtype=torch.float32)

    def _measurements(self, new: list[tuple[dict[str, Any], Tensor]]) -> list[gsnr.Measurement]:
        """Measure g-SNR where `scale="gsnr"`; elsewhere only whether the gradient is non-zero."""
        for group, _ in new:
            _check_scale(group["scale"])  # set after construction: unchecked, it would freeze the tensor
        by_gsnr = [i for i, (group, _) in enumerate(new) if group["scale"] == "gsnr"]
        by_numel = [i for i, (group, _) in enumerate(new) if group["scale"] == "numel"]
        results: list[gsnr.Measurement] = [gsnr.Measurement(gsnr.Kind.ZERO, None)] * len(new)
        stats = distributed.grad_stats([new[i][1].grad for i in by_gsnr]) if by_gsnr else []  # type: ignore[misc]
        for i, s in zip(by_gsnr, stats):
            group = new[i][0]
            results[i] = gsnr.measure(s, group["eps"], group["unbiased"])
        grads = [new[i][1].grad for i in by_numel]
        nonzero = distributed.nonzero(grads) if grads else []  # type: ignore[arg-type]
        for i, g, started in zip(by_numel, grads, nonzero):
            numel = g.numel() * (2 if g.is_complex() else 1)  # type: ignore[union-attr]  # as its real view
            results[i] = gsnr.measure_numel(numel, started)
        return results

    @_disable_dynamo  # not named _init_group: dynamo expects that method to return a constant
    def _group_tensors(
        self, group: dict[str, Any]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor | None], list[float]]:
        """The tensors this step updates, as real views; `owners` are the parameters themselves."""
        owners, params, grads, bufs, gsnrs = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None or SCALE_KEY not in self.state[p]:
                continue  # no gradient, or the g-SNR is deferred: this step leaves p untouched
            _check_dense(p.grad)
            state = self.state[p]
            buf = state.get("momentum_buffer")
            owners.append(p)
            params.append(_real(p))
            grads.append(_real(p.grad))
            bufs.append(None if buf is None else _real(buf))
            gsnrs.append(state[SCALE_KEY])
        return owners, params, grads, bufs, [float(s) for s in gsnrs]  # 0-d CPU tensors or floats: no sync

    def _gsnr_max(self) -> float | None:
        return next((g["gsnr_max"] for g in self.param_groups if g["gsnr_max"] is not None), None)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load state as `torch.optim` does, checked against the parameters.

        The registered load pre-hooks run first, and what they return is what is loaded: every
        tensor's scale and buffer follows its parameter however the hooks reorder groups. Then
        each scale becomes a 0-d float32 CPU tensor whatever the parameter's dtype (torch would
        cast it to the parameter's dtype and device), each momentum buffer goes to its
        parameter's device in the group's `momentum_dtype` (default: the parameter's dtype),
        and only then do the load post-hooks run: they see the final state, and what they change
        stays.

        Raises:
            ValueError: a saved momentum buffer's shape differs from its parameter's, or a saved
                scale has more than one element; the message names the parameter. A saved
                group's `scale` is not one of `SCALES`; nothing is loaded then. As in torch,
                also when the number of groups or of parameters in a group differs.
        """
        handle = self.register_load_state_dict_pre_hook(_checked_state_dict)  # after the user's
        try:
            super().load_state_dict(state_dict)
        finally:
            handle.remove()

    def gsnr(self, model: nn.Module | None = None) -> dict[str, float]:
        """Every measured tensor's learning-rate scale, keyed by parameter name.

        Names come from named parameters given to the optimizer, else from `model`, else they
        are `"group{i}.param{j}"`. Multiply by `param_groups[0]["gsnr_max"]` for the raw g-SNR
        of a normalised, unclamped tensor.
        """
        names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
        table = {}
        for i, group in enumerate(self.param_groups):
            group_names = group.get("param_names")
            for j, p in enumerate(group["params"]):
                if SCALE_KEY not in self.state[p]:
                    continue
                name = group_names[j] if group_names else names.get(id(p), f"group{i}.param{j}")
                table[name] = float(self.state[p][SCALE_KEY])
        return table


def _check(name: str, value: Any, ok: Any) -> None:
    if not ok:
        raise ValueError(f"Invalid {name} value: {value}")


#: The hyperparameters, each with the rule its value must satisfy.
RANGES: dict[str, Callable[[Any], Any]] = {
    "lr": lambda v: v >= 0.0,
    "momentum": lambda v: 0.0 <= v < 1.0,
    "weight_decay": lambda v: v >= 0.0,
    "eps": lambda v: v >= 0.0,
}
#: Boolean flags; `foreach` and `fused` may also be `None` (let the optimizer choose).
FLAGS = ("normalize", "unbiased", "maximize", "stochastic_rounding")
OPTIONAL_FLAGS = ("foreach", "fused")
#: The dtypes a momentum buffer may have (`momentum_dtype`), besides `None`.
MOMENTUM_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_group(group: dict[str, Any]) -> None:
    """Raise for a hyperparameter or flag of the wrong type or out of range, naming it."""
    for name, ok in RANGES.items():
        value = group[name]
        tensor_lr = name == "lr" and isinstance(value, Tensor)  # torch's schedulers may keep one
        if not tensor_lr and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise TypeError(f"{name} must be a real number, not {value!r}")
        if tensor_lr and value.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")  # torch's words
        _check(name, value, ok(value))
    for name in FLAGS + OPTIONAL_FLAGS:
        if not (isinstance(group[name], bool) or (name in OPTIONAL_FLAGS and group[name] is None)):
            allowed = "True, False or None" if name in OPTIONAL_FLAGS else "True or False"
            raise TypeError(f"{name} must be {allowed}, not {group[name]!r}")
    if group["fused"] and group["foreach"]:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    dtype = group["momentum_dtype"]
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise TypeError(f"momentum_dtype must be None or a torch.dtype, not {dtype!r}")
    if dtype is not None and dtype not in MOMENTUM_DTYPES:
        allowed = ", ".join(map(str, MOMENTUM_DTYPES))
        raise ValueError(f"momentum_dtype must be None or one of {allowed}, not {dtype}")


class _Exact:
    """A saved buffer that torch's `load_state_dict` must pass through uncast (it would round a
    float32 buffer of bfloat16 parameters); `_place_state` gives it its dtype and device."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor


def _checked_state_dict(optimizer: Optimizer, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """The last load pre-hook: check shapes, and protect scales and buffers from torch's cast."""
    saved_groups, groups = state_dict["param_groups"], optimizer.param_groups
    if len(saved_groups) != len(groups) or any(
        len(a["params"]) != len(b["params"]) for a, b in zip(saved_groups, groups)
    ):
        return None  # torch raises its own error for this
    for saved in saved_groups:
        if "scale" in saved:  # absent before the flag existed: the default
            _check_scale(saved["scale"])
    state = dict(state_dict["state"])
    for i, (saved, group) in enumerate(zip(saved_groups, groups)):
        names = group.get("param_names")
        for j, (key, p) in enumerate(zip(saved["params"], group["params"])):
            if key not in state:
                continue
            entry, name = dict(state[key]), names[j] if names else f"group {i} param {j}"
            buf = entry.get("momentum_buffer")
            if isinstance(buf, Tensor):
                if buf.shape != p.shape:
                    raise ValueError(
                        f"momentum_buffer of {name} has shape {tuple(buf.shape)}, "
                        f"but the parameter has shape {tuple(p.shape)}"
                    )
                entry["momentum_buffer"] = _Exact(buf)
            if OLD_SCALE_KEY in entry and SCALE_KEY not in entry:  # saved before the rename
                entry[SCALE_KEY] = entry.pop(OLD_SCALE_KEY)
            if SCALE_KEY in entry:
                scale = entry[SCALE_KEY]
                if isinstance(scale, Tensor) and scale.numel() != 1:
                    raise ValueError(
                        f"the scale (lr_scale) of {name} must have one element, not shape {tuple(scale.shape)}"
                    )
                entry[SCALE_KEY] = float(scale)  # exact for float32; torch leaves Python floats alone
            state[key] = entry
    return {**state_dict, "state": state}


def _place_state(entry: dict[str, Any], p: Tensor, momentum_dtype: torch.dtype | None) -> None:
    """Give a loaded state entry its documented form: a 0-d float32 CPU scale, a buffer on the
    parameter's device in `momentum_dtype` (default: the parameter's dtype, as torch casts)."""
    buf = entry.get("momentum_buffer")
    if isinstance(buf, _Exact):
        dtype = momentum_dtype or (p.dtype if p.is_floating_point() else buf.tensor.dtype)
        entry["momentum_buffer"] = buf.tensor.to(device=p.device, dtype=dtype)
    scale = entry.get(SCALE_KEY)
    if scale is not None and not (isinstance(scale, Tensor) and _is_cpu_float32_scalar(scale)):
        entry[SCALE_KEY] = torch.tensor(float(scale), dtype=torch.float32)


def _is_cpu_float32_scalar(t: Tensor) -> bool:
    return t.dim() == 0 and t.dtype == torch.float32 and t.device.type == "cpu"


#: What a tensor's learning-rate scale is computed from (the `scale` flag).
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

$$
\begin{aligned}
    &\rule{110mm}{0.4pt} \\
    &\textbf{input}: \eta \text{ (lr)}, \mu \text{ (momentum)}, \lambda \text{ (weight decay)},
        \epsilon, \theta^{(i)}_0 \text{ (tensors } i = 1..B\text{)}, \textit{maximize} \\
    &\rule{110mm}{0.4pt} \\
    &\textbf{for} \: t = 1 \: \textbf{to} \: \ldots \: \textbf{do} \\
    &\hspace{5mm} g^{(i)}_t \leftarrow \nabla_{\theta^{(i)}} f_t(\theta_{t-1}) \quad
        (g^{(i)}_t \leftarrow -g^{(i)}_t \text{ if } \textit{maximize}) \\
    &\hspace{5mm} \textbf{if} \: \text{tensor } i \text{ has no } \tilde G^{(i)} \text{ yet}
        \text{ and } g^{(i)}_t \text{ is finite and non-zero}: \\
    &\hspace{10mm} G^{(i)} \leftarrow \lVert g^{(i)}_t \rVert_2 / (\sigma(g^{(i)}_t) + \epsilon)
        \qquad \text{(population std; unbiased if } \textit{unbiased}\text{)} \\
    &\hspace{10mm} M \leftarrow \max_k G^{(k)} \text{ over the tensors of the first measuring step
        (kept for good)} \\
    &\hspace{10mm} \tilde G^{(i)} \leftarrow \min(G^{(i)} / M, 1) \text{ if } \textit{normalize} \text{ else }
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
$$

With `momentum=0` the update uses $g_t$ directly and no buffer is kept.

Args:
    params: tensors, `(name, tensor)` pairs (names then key `gsnr`), or parameter groups.
        Groups may set their own `lr`, `momentum`, `weight_decay`, `eps` and flags.
    lr: $\eta$, the learning rate of the highest-g-SNR tensor when normalised (default: 1).
        The EMA momentum has the size of a gradient (torch's SGD buffer is $1/(1-\mu)$ times
        larger), so `lr=1` here moves the largest tensors like `SGD(lr=0.1, momentum=0.9)`
        (where the best lrs fell in measured runs: `docs/hyperparameters.md`). With
        `normalize=False` divide by the model's $M$ (about $\sqrt{\text{numel}}$ of its
        largest tensor: 256 to 6,000 for common models). $\eta$ also sets the decoupled
        weight decay, unscaled by g-SNR.
    momentum: $\mu$, the EMA coefficient, in [0, 1) (default: 0.9).
    weight_decay: $\lambda$, decoupled: $\theta \leftarrow \theta(1 - \eta\lambda)$
        (default: 1e-4, so that the default decay per step, $\eta\lambda = 10^{-4}$, equals
        that of `AdamW(lr=1e-3, weight_decay=0.1)`).
    eps: $\epsilon$, added to the gradient's std, in gradient units (default: 1e-8). It
        only matters for tensors whose first-gradient std is below about `1e3 * eps`; there it
        lowers the g-SNR, so g-SNR is scale-invariant only for gradients well above `eps`.
    normalize: divide every g-SNR by the reference $M$, so scales lie in (0, 1], as the
        paper's Algorithm 1 does (default: True). `False` uses the raw g-SNR, as the authors'
        released package does; then `lr` must be about $1/M$ smaller.
    unbiased: use the unbiased std (Bessel's correction), as the released package does,
        instead of the paper's population std (default: False).
    maximize: maximize the objective instead of minimizing it; `.grad` is never modified.
    foreach: use the multi-tensor (`torch._foreach_*`) implementation; `None` picks it for
        CUDA tensors, and otherwise torch's fused SGD kernel per tensor (float32 and float64 CPU
        tensors) or the single-tensor loop, as `sgdsai.functional` describes.
    reference_group: a `torch.distributed` process group over whose ranks the reference
        $M$ is maximised (one `all_reduce` at the first measuring step, which every rank of
        the group must take together). Give it when ranks own different tensors: ZeRO (see
        `sgdsai.zero.zero_redundancy_sgdsai`), pipeline stages, any manual split.
        `None` (default): this process's tensors only, right for one process, DDP and FSDP2.
        DTensor gradients (FSDP2, tensor parallel) are always measured whole, whatever this is;
        see `sgdsai.distributed`.
    scale: what each tensor's scale is computed from. `"gsnr"` (default): its measured g-SNR,
        as in the paper. `"numel"`: $\sqrt{\text{numel}}$ in its place (the rule of the authors'
        unreleased `v1.1.0-nightly` branch, which `normalize=False` reproduces): no gradient
        statistics; on DTensors one small `all_reduce` of all-zero flags at measuring steps, none at
        steady steps. $M$ is the largest $\sqrt{\text{numel}}$ of the tensors that
        have a gradient at the first measuring step, an all-zero first gradient included (its
        tensor still waits for a non-zero gradient to start). A 1-element tensor gets
        $1/M$ (raw: 1); non-finite gradients are not special.
    fused: one `torch.compile` kernel per large tensor (`sgdsai.fused`): it reads
        $g, m, \theta$ once and writes $m, \theta$ once, in float32 math at least.
        The first step compiles (seconds); `None` means `False`.
    stochastic_rounding: do the update in float32 and write bfloat16 weights and buffers back
        with stochastic rounding (unbiased), so updates below half an ulp are not lost.
    momentum_dtype: dtype of the momentum buffer (default: the parameter's). `torch.bfloat16`
        halves the state of float32 weights (2 bytes per parameter; real parameters only).
        Either low-precision flag selects float32 math with one rounding per write
        (`sgdsai.lowprecision`): the eager loop, or the fused kernel where it rounds no
        bfloat16 stochastically; never foreach.

Group keys:
    Besides the hyperparameters and flags above, a group may set `gsnr_reference=False`: its
    tensors are measured (and clamped at 1) but never take part in choosing $M$, so that, for
    example, a tied embedding and head need not set every block's rate. If the first measuring step
    measures only such tensors, they wait until a reference tensor has set $M$.

State:
    `state[p]["momentum_buffer"]` (`momentum_dtype`, by default the parameter's dtype; absent
    when `momentum=0`) and
    `state[p]["lr_scale"]`: the final scale $\tilde G$, a 0-d float32 tensor on the CPU, so
    that reading it never synchronises a device and bf16 parameters do not round it. The
    reference $M$ is `param_groups[k]["gsnr_max"]` (equal in every group; `None` before
    the first measurement). Everything is saved by `state_dict`, so a resumed run never
    measures again. To impose a scale instead of measuring one, set `state[p]["lr_scale"]` (a
    Python float or a 0-d tensor) before the parameter's first step. The key was `"gsnr"`
    before 0.1.0: checkpoints that use it still load, and setting it, before or after a
    measurement, still imposes a scale at the next step (deprecated, with a `FutureWarning`). `load_state_dict` loads
    what the load pre-hooks return, checks each buffer's shape against its parameter, and gives
    the state this form before the post-hooks run. `copy.deepcopy` shares `reference_group`;
    pickling an optimizer that has one raises `TypeError` (pickle `state_dict()` instead).

Rules of measurement:
    * A tensor is measured at its first *usable* gradient, not at the optimizer's first step. A
      `None` gradient (unused branch, MoE expert, frozen tensor, a group added later), an
      all-zero gradient (LoRA `A` while `B = 0`, anything behind a zero-initialised
      projection) or a non-finite one (logged as a warning) defers the measurement, and that
      step leaves the tensor untouched (no decay, no momentum). Each step with such a pending
      tensor costs one device-to-host transfer; steady steps cost none.
    * A tensor with one element, or whose first gradient is constant (std at most `1e-6` of
      its mean), has no measurable noise. It is treated as pure signal: scale 1 (normalised) or
      $M$ (raw), and it never takes part in choosing $M$. So a scalar parameter
      neither explodes (the released code gives it $|g|/\epsilon$) nor shrinks the others.
      With `scale="numel"` nothing is measured: a 1-element tensor gets $\sqrt{1}/M = 1/M$
      (raw: 1) and counts towards $M$ like any other.
    * $M$ is the largest regular g-SNR of the first step that measured anything (1 if that
      step measured only constant tensors). Tensors measured later are divided by the same
      $M$ and clamped at 1, so no tensor ever gets a larger rate than $\eta$.
    * Statistics are exact to float32 rounding at any finite magnitude (float32 reductions, and
      float64 where float32 squares would overflow or vanish), complex tensors as their real
      view. So above `eps` the scale of `c * g` is that of `g`; below, it shrinks as the
      formula says. They are the statistics of the gradient as stored: a bfloat16 or float16
      gradient is measured exactly as its rounded values, which differ from the float32
      gradient they round. A tensor with no elements gets scale 1 and never takes part in choosing
      $M$. Sparse gradients raise.

Note:
    Departures from the paper's Algorithm 1, which this class otherwise implements (the default):
    the measurement is per tensor and lazy instead of one global first step, which is what makes
    late, zero and non-finite first gradients safe; constant and one-element tensors get a defined
    scale; late tensors are clamped at 1. Departures from the released package `sgd-sai` 1.0.3,
    which `normalize=False, unbiased=True` reproduces on regular tensors with `momentum > 0`:
    that package has no normalisation, freezes tensors whose first gradient is zero, gives
    scalars $|g|/\epsilon$, raises `KeyError` for late gradients, measures again after a
    checkpoint is loaded, fails with `momentum=0`, evaluates the closure twice on its first step
    and synchronises the device once per tensor per step.

Examples:
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
