"""Scenarios run by every rank of a gloo process group on CPU; each returns a picklable record.

The parent test process spawns the ranks once per world size, reads the records back and checks
them against single-process runs of the same model on the same data (see test_distributed.py).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from sgdsai import SGDSaI
from sgdsai.zero import zero_redundancy_sgdsai

STEPS = 20
SAVE_AT = 10
BATCH = 8
LR = 0.05
COLLECTIVES = ("all_gather", "all_reduce", "all_gather_into_tensor", "reduce_scatter_tensor", "broadcast")


def tiny_model() -> nn.Module:
    """Shards of every kind on 2 and 4 ranks: even, uneven, single-element (empty on rank > 0)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3), nn.Tanh(), nn.Linear(3, 1)).double()


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(step)
    x = torch.randn(BATCH, 5, generator=gen, dtype=torch.float64)
    return x, x[:, :1].sin() + 0.1 * torch.randn(BATCH, 1, generator=gen, dtype=torch.float64)


def local_batch(step: int, rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = batch(step)
    rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    return x[rows], y[rows]


def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (model(x) - y).square().mean()


def full(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    return t.full_tensor() if hasattr(t, "full_tensor") else t.clone()


@contextmanager
def count_collectives(counter: dict[str, int], forbid: bool = False):
    """Count (or forbid) the c10d collectives called inside the block."""
    originals = {name: getattr(dist, name) for name in COLLECTIVES}

    def wrap(name: str, fn: Callable) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if forbid:
                raise AssertionError(f"collective {name} called")
            counter[name] = counter.get(name, 0) + 1
            return fn(*args, **kwargs)

        return wrapped

    for name, fn in originals.items():
        setattr(dist, name, wrap(name, fn))
    try:
        yield counter
    finally:
        for name, fn in originals.items():
            setattr(dist, name, fn)


def fsdp2_model(world: int) -> nn.Module:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world,))
    model = tiny_model()
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def train(
    model: nn.Module,
    opt: Any,
    rank: int,
    world: int,
    steps: range,
    record: dict,
    forward: Any = None,
    **kw: Any,
) -> None:
    """Train on the ranks' slices of the global batch, recording collectives made by ``step``."""
    per_step = []
    for step in steps:
        loss_fn(forward or model, *local_batch(step, rank, world)).backward()
        counter: dict[str, int] = {}
        with count_collectives(counter, **kw):
            opt.step()
        opt.zero_grad(set_to_none=True)
        per_step.append(sum(counter.values()))
        if step == steps.start:
            inner = getattr(opt, "optim", opt)
            record["gsnr"] = inner.gsnr(model) if not hasattr(opt, "optim") else None
            record["gsnr_max"] = inner.param_groups[0]["gsnr_max"]
    record["collectives"] = per_step
    record["params"] = {n: full(p) for n, p in model.named_parameters()}


def scenario_fsdp2(rank: int, world: int, out: Path) -> dict:
    """20 steps under FSDP2; the world-2 run saves a DCP checkpoint after SAVE_AT steps."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    model = fsdp2_model(world)
    opt = SGDSaI(model.parameters(), LR, foreach=world == 4)
    record: dict[str, Any] = {}
    train(model, opt, rank, world, range(SAVE_AT), record)
    first = dict(record)
    if world == 2:
        state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}
        dcp.save(state, checkpoint_id=str(out / "ckpt"))
    train(model, opt, rank, world, range(SAVE_AT, STEPS), record)
    record["gsnr"], record["gsnr_max"] = first["gsnr"], first["gsnr_max"]
    record["collectives"] = first["collectives"] + record["collectives"]
    record["momentum_sample"] = full(opt.state[next(iter(model.parameters()))]["momentum_buffer"])
    return record


def scenario_resume(rank: int, world: int, out: Path) -> dict:
    """Resume the world-2 checkpoint on this world size and finish the run."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    from sgdsai.checkpoint import optimizer_state_dict_to_load

    model = fsdp2_model(world)
    opt = SGDSaI(model.parameters(), LR)
    reader = dcp.FileSystemReader(str(out / "ckpt"))
    state = {
        "model": get_model_state_dict(model),
        "optim": optimizer_state_dict_to_load(model, opt, reader.read_metadata()),
    }
    dcp.load(state, storage_reader=reader)
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, opt, state["optim"])
    record: dict[str, Any] = {
        "gsnr_types": {
            (s["lr_scale"].dtype, s["lr_scale"].device.type, s["lr_scale"].dim()) for s in opt.state.values()
        },
        "gsnr_loaded": opt.gsnr(model),
        "gsnr_max_loaded": opt.param_groups[0]["gsnr_max"],
    }
    train(model, opt, rank, world, range(SAVE_AT, STEPS), record)
    return record


def scenario_ddp(rank: int, world: int, out: Path) -> dict:
    from torch.nn.parallel import DistributedDataParallel

    model = tiny_model()
    opt = SGDSaI(model.parameters(), LR)
    record: dict[str, Any] = {}
    train(model, opt, rank, world, range(STEPS), record, forward=DistributedDataParallel(model), forbid=True)
    return record


def scenario_zero(rank: int, world: int, out: Path) -> dict:
    """ZeRO with a global reference (the helper), and plain ZeRO, where M stays rank-local."""
    from torch.distributed.optim import ZeroRedundancyOptimizer

    record: dict[str, Any] = {}
    model = tiny_model()
    opt = zero_redundancy_sgdsai(model.parameters(), LR)
    train(model, opt, 0, 1, range(STEPS), record)  # every rank computes the full-batch gradient
    record["owned"] = [tuple(p.shape) for p in opt.optim.param_groups[0]["params"]]
    plain = ZeroRedundancyOptimizer(tiny_model().parameters(), SGDSaI, lr=LR)
    for group in plain.optim.param_groups:
        for p in group["params"]:
            p.grad = torch.randn_like(p) + 1.0
    plain.step()
    record["plain_gsnr_max"] = plain.optim.param_groups[0]["gsnr_max"]
    return record


def stage_grad(rank: int, index: int, step: int) -> torch.Tensor:
    """Pipeline-stage gradients: rank 1's first gradient is zero, so only rank 0 measures at step 0."""
    gen = torch.Generator().manual_seed(10 * rank + index + 100 * step)
    scale = 0.0 if rank == 1 and step == 0 else 1.0
    return scale * (torch.randn(4 + 3 * index, generator=gen, dtype=torch.float64) + 0.2 * (rank + index))


def scenario_stages(rank: int, world: int, out: Path) -> dict:
    """Ranks owning different tensors (pipeline stages) share the reference through ``reference_group``."""
    params = [torch.zeros(4 + 3 * index, dtype=torch.float64, requires_grad=True) for index in range(3)]
    opt = SGDSaI(params, LR, reference_group=dist.group.WORLD)
    record: dict[str, Any] = {"gsnr_max": [], "collectives": [], "scales": []}
    for step in range(3):
        for index, p in enumerate(params):
            p.grad = stage_grad(rank, index, step)
        counter: dict[str, int] = {}
        with count_collectives(counter):
            opt.step()
        record["gsnr_max"].append(opt.param_groups[0]["gsnr_max"])
        record["collectives"].append(sum(counter.values()))
        record["scales"].append(list(opt.gsnr().values()))
    return record


def dtensor_cases(world: int) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
    """(shape, placements) of hand-made gradients: uneven and empty shards, replicas, partial sums,
    two shardings of one dimension; a 1-D mesh on 2 ranks, 2x2 on 4."""
    if world == 2:
        return [((5, 3), ("S0",)), ((4, 3), ("S1",)), ((6,), ("R",)), ((1, 4), ("S0",)), ((3, 3), ("P",))]
    return [
        ((5, 3), ("R", "S0")),
        ((4, 3), ("S0", "S1")),
        ((2, 6), ("S1", "R")),
        ((7, 2), ("S0", "S0")),
        ((3, 3), ("P", "S0")),
        ((6,), ("R", "R")),
    ]


def dtensor_full_grad(index: int, shape: tuple[int, ...]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(100 + index)
    return torch.randn(shape, generator=gen, dtype=torch.float64) + 0.3


def scenario_dtensor(rank: int, world: int, out: Path) -> dict:
    """``grad_stats`` of hand-made DTensor gradients, and the collectives it takes."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Partial, Replicate, Shard, distribute_tensor

    from sgdsai.distributed import grad_stats

    mesh = init_device_mesh("cpu", (world,) if world == 2 else (2, 2))
    kinds = {"R": Replicate(), "S0": Shard(0), "S1": Shard(1), "P": Partial()}
    grads = []
    for index, (shape, names) in enumerate(dtensor_cases(world)):
        placements = [kinds[n] for n in names]
        whole = [Replicate() if p.is_partial() else p for p in placements]
        local = distribute_tensor(dtensor_full_grad(index, shape), mesh, whole).to_local()
        local = local / mesh.size(names.index("P")) if "P" in names else local
        stride = torch.empty(shape).stride()
        grads.append(DTensor.from_local(local, mesh, placements, run_check=False, shape=shape, stride=stride))
    counter: dict[str, int] = {}
    with count_collectives(counter):
        stats = grad_stats(grads)
    return {"stats": [(s.count, s.mean, s.m2) for s in stats], "collectives": counter}


def numel_zero_shard_run(grads: list[list[torch.Tensor]], place: Callable | None = None) -> dict:
    """Two steps of ``scale="numel"`` on the tensors of `numel_zero_shard_grads`; ``place`` shards."""
    place = place or (lambda t: t)
    torch.manual_seed(0)
    params = [nn.Parameter(place(torch.randn(8, 4, dtype=torch.float64))) for _ in range(2)]
    opt = SGDSaI(params, 0.1, scale="numel", weight_decay=0.1)
    counts = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = place(g)
        counter: dict[str, int] = {}
        with count_collectives(counter):
            opt.step()
        counts.append(counter)
    return {
        "params": [full(p) for p in params],
        "measured": [float(opt.state[p]["lr_scale"]) for p in params],
        "collectives": counts,
    }


def numel_zero_shard_grads() -> list[list[torch.Tensor]]:
    """Step 1: the first tensor's rows 4: (rank 1's shard on 2 ranks) are zero; step 2: all ones."""
    gen = torch.Generator().manual_seed(7)
    first = torch.randn(8, 4, generator=gen, dtype=torch.float64)
    first[4:] = 0
    other = [torch.randn(8, 4, generator=gen, dtype=torch.float64) for _ in range(2)]
    return [[first, other[0]], [torch.ones(8, 4, dtype=torch.float64), other[1]]]


def scenario_numel_zero_shard(rank: int, world: int, out: Path) -> dict:
    """``scale="numel"`` on Shard(0) DTensors whose first gradient is zero on some ranks only."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world,))
    return numel_zero_shard_run(numel_zero_shard_grads(), lambda t: distribute_tensor(t, mesh, [Shard(0)]))


def entry(rank: int, world: int, scenarios: list[str], out: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    path = Path(out)
    dist.init_process_group(
        "gloo", init_method=f"file://{path / f'store-{world}'}", rank=rank, world_size=world
    )
    records = {}
    try:
        for name in scenarios:
            try:
                records[name] = globals()[f"scenario_{name}"](rank, world, path)
            except Exception:
                records[name] = {"error": traceback.format_exc()}
            dist.barrier()
    finally:
        torch.save(records, path / f"records-{world}-{rank}.pt")
        dist.destroy_process_group()
