r"""torch.distributed plumbing for SGD-SaI's one-off, per-tensor statistics.

SGD-SaI measures each tensor once, from the statistics of its *whole* first gradient, and divides
every g-SNR by a reference $M$, the largest of them. Both break silently when a rank sees only
part of the picture, so this module restores the single-process values:

* **Sharded gradients** (DTensor, as FSDP2's `fully_shard` and tensor parallelism produce): each
  rank reduces its local shard to `sgdsai.gsnr.GradStats` `(count, mean, m2)`; the rows of
  all new tensors are gathered together, one `all_gather` of a `(T, 3)` float64 tensor per mesh
  dimension that shards any of them (one for FSDP2 and HSDP), and merged exactly with Chan's
  parallel update. A `Replicate` mesh dimension needs no communication: its pieces are copies,
  counted once. `Partial` gradients (pending sums) are first reduced to `Replicate`.
* **Plain gradients** (one process, DDP, ZeRO) are measured locally with no collective: under DDP
  they are already averaged and identical on every rank.
* **All-zero checks** (`scale="numel"`, which reads only whether a first gradient is non-zero):
  a DTensor's local flags are combined with one `all_reduce(MAX)` of a small `(T,)` tensor per
  mesh dimension that shards any of them, at the steps that measure new tensors; plain tensors
  need no collective.
* **The reference** $M$: with `reference_group` set, the first measuring step takes the
  maximum over that group's ranks with one `all_reduce`. Needed whenever ranks hold different
  tensors (ZeRO, pipeline stages); never needed under DDP or FSDP2, where every rank measures every
  tensor.
* **Flattening engines** (FSDP1, whose `FlatParameter` concatenates many tensors and whose
  `use_orig_params=True` parameters are flat pieces of a shard) are refused: no rank holds a
  tensor's gradient, nor a DTensor describing where the rest is.

Steady steps never communicate: the update itself is elementwise and runs shard-local.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from sgdsai import gsnr
from sgdsai.gsnr import GradStats

__all__ = ["check_params", "grad_stats", "nonzero", "reference"]


def check_params(params: Iterable[Tensor]) -> None:
    """Refuse parameters that are flat concatenations or flat pieces of tensors (FSDP1)."""
    for p in params:
        if getattr(p, "_fsdp_flattened", False):
            raise TypeError(
                "SGDSaI measures each tensor's whole first gradient, but this parameter belongs to "
                "FSDP1 (FullyShardedDataParallel), which flattens tensors into shared flat buffers. "
                "Use FSDP2 (torch.distributed.fsdp.fully_shard), whose DTensor parameters SGDSaI "
                "measures exactly, or DistributedDataParallel."
            )


def grad_stats(grads: Sequence[Tensor]) -> list[GradStats]:
    """The `GradStats` of each gradient's full tensor, identical on every rank holding it.

    Plain tensors cost one device-to-host transfer per device and no collective; DTensors add one
    `all_gather` per sharded mesh dimension of each mesh, for all of them together.
    """
    stats = [GradStats(0.0, 0.0, 0.0)] * len(grads)
    plain = [i for i, g in enumerate(grads) if not _is_dtensor(g)]
    for i, s in zip(plain, gsnr.stack_stats([grads[i] for i in plain])):
        stats[i] = s
    by_mesh: dict[Any, list[int]] = {}
    for i, g in enumerate(grads):
        if _is_dtensor(g):
            by_mesh.setdefault(g.device_mesh, []).append(i)  # type: ignore[attr-defined]
    for mesh, indices in by_mesh.items():
        for i, s in zip(indices, _dtensor_stats(mesh, [grads[i] for i in indices])):
            stats[i] = s
    return stats


def nonzero(grads: Sequence[Tensor]) -> list[bool]:
    """Whether each gradient's full tensor has a non-zero element, identical on every rank.

    Plain tensors are checked locally (one device-to-host transfer per device, no collective);
    DTensors add one `all_reduce(MAX)` of their flags per sharded mesh dimension of each mesh.
    """
    flags = [False] * len(grads)
    plain = [i for i, g in enumerate(grads) if not _is_dtensor(g)]
    for i, flag in zip(plain, gsnr.nonzero([grads[i] for i in plain])):
        flags[i] = flag
    by_mesh: dict[Any, list[int]] = {}
    for i, g in enumerate(grads):
        if _is_dtensor(g):
            by_mesh.setdefault(g.device_mesh, []).append(i)  # type: ignore[attr-defined]
    for mesh, indices in by_mesh.items():
        for i, flag in zip(indices, _dtensor_nonzero(mesh, [grads[i] for i in indices])):
            flags[i] = flag
    return flags


def reference(regular: Sequence[float], measured: bool, group: Any = None) -> float | None:
    """The reference $M$ set by a first measuring step, or `None` if it measured nothing.

    `regular` are this rank's regular g-SNRs, `measured` whether this rank measured any
    tensor (regular or constant). Without `group`, $M$ is `max(regular)` (1 when only
    constant tensors were measured). With it, maximum and flag are all-reduced over the group, so
    every rank gets the same $M$, and all of them must call this at the same step.
    """
    local = max(regular, default=-math.inf)
    if group is not None:
        import torch.distributed as dist

        device = _collective_device(group)
        row = torch.tensor([local, 1.0 if measured else 0.0], dtype=torch.float64, device=device)
        dist.all_reduce(row, op=dist.ReduceOp.MAX, group=group)
        local, flag = row.tolist()
        measured = flag > 0
    if not measured:
        return None
    return local if local > -math.inf else 1.0


def _is_dtensor(t: Tensor) -> bool:
    if not torch.distributed.is_available():
        return False
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def _dtensor_stats(mesh: Any, grads: Sequence[Any]) -> list[GradStats]:
    """Merge the local shards' statistics of DTensors on one mesh, dimension by dimension."""
    import torch.distributed as dist

    grads = [_without_partial(g) for g in grads]
    stats = gsnr.stack_stats([g.to_local() for g in grads])
    for dim in range(mesh.ndim):
        sharded = [i for i, g in enumerate(grads) if g.placements[dim].is_shard()]
        if not sharded:
            continue  # replicated along this dimension: every piece is a copy, counted once
        rows = torch.tensor([_row(stats[i]) for i in sharded], dtype=torch.float64, device=mesh.device_type)
        group = mesh.get_group(dim)
        gathered = [torch.empty_like(rows) for _ in range(dist.get_world_size(group))]
        dist.all_gather(gathered, rows, group=group)
        pieces = torch.stack(gathered, dim=1).tolist()  # (T, world, 3), in mesh-coordinate order
        for i, tensor_pieces in zip(sharded, pieces):
            stats[i] = gsnr.combine([GradStats(*piece) for piece in tensor_pieces])
    return stats


def _dtensor_nonzero(mesh: Any, grads: Sequence[Any]) -> list[bool]:
    """OR the local shards' non-zero flags of DTensors on one mesh, dimension by dimension."""
    import torch.distributed as dist

    grads = [_without_partial(g) for g in grads]  # shards of a pending sum may cancel
    local = gsnr.nonzero([g.to_local() for g in grads])
    flags = torch.tensor(local, dtype=torch.uint8, device=mesh.device_type)
    for dim in range(mesh.ndim):
        sharded = [i for i, g in enumerate(grads) if g.placements[dim].is_shard()]
        if not sharded:
            continue  # replicated along this dimension: every piece is a copy
        rows = flags[sharded]
        dist.all_reduce(rows, op=dist.ReduceOp.MAX, group=mesh.get_group(dim))
        flags[sharded] = rows
    return [bool(f) for f in flags.tolist()]


def _without_partial(grad: Any) -> Any:
    if not any(p.is_partial() for p in grad.placements):
        return grad
    from torch.distributed.tensor import Replicate

    placements = [Replicate() if p.is_partial() else p for p in grad.placements]
    return grad.redistribute(grad.device_mesh, placements)


def _row(stats: GradStats) -> list[float]:
    return [stats.count, stats.mean, stats.m2]


def _collective_device(group: Any) -> torch.device:
    import torch.distributed as dist

    backend = dist.get_backend(group)
    if "nccl" in str(backend) and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
