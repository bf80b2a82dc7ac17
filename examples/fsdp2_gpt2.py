"""Train a tiny GPT-2 with SGD-SaI under FSDP2, on the Python standard library's own source bytes.

    torchrun --standalone --nproc_per_node=2 examples/fsdp2_gpt2.py --steps 40 --save ckpt
    torchrun --standalone --nproc_per_node=4 examples/fsdp2_gpt2.py --steps 80 --resume ckpt

Every rank trains on its slice of each global batch; FSDP2 (``fully_shard``) shards each block's
parameters, gradients and SGD-SaI momentum over the ranks. The g-SNR of every tensor is measured
whole at the first step (one ``all_gather`` for all tensors, see docs/distributed.md), so the run
matches one process on the whole batch. ``--save`` writes a ``torch.distributed.checkpoint`` that
``--resume`` continues on any number of ranks without measuring again. Needs the ``demo`` extra
(transformers, tqdm); gloo on CPU, NCCL when CUDA is available.
"""

from __future__ import annotations

import argparse
import logging
import os

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from tqdm import tqdm

from sgdsai import SGDSaI
from sgdsai.checkpoint import optimizer_state_dict_to_load
from sgdsai_lab.demo import batches, tiny_gpt2
from sgdsai_lab.sources.stdlib import stdlib_bytes

logger = logging.getLogger("fsdp2_gpt2")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40, help="train until this global step (default: 40)")
    p.add_argument("--batch-size", type=int, default=16, help="global batch, split over the ranks")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--corpus-bytes", type=int, default=2_000_000)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="write a DCP checkpoint here at the end")
    p.add_argument("--resume", help="continue from this DCP checkpoint")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s")
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} is not divisible by {world} ranks")
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    mesh = init_device_mesh(device.type, (world,))

    torch.manual_seed(args.seed)  # the same initial weights on every rank, before sharding
    model = tiny_gpt2(args.context).to(device)
    for block in model.transformer.h:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = SGDSaI(model.named_parameters(), args.lr, momentum=0.9, weight_decay=1e-2)

    start = 0
    if args.resume:
        reader = dcp.FileSystemReader(args.resume)
        state = {
            "model": get_model_state_dict(model),
            "optim": optimizer_state_dict_to_load(model, opt, reader.read_metadata()),
            "step": torch.tensor(0),
        }
        dcp.load(state, storage_reader=reader)
        set_model_state_dict(model, state["model"])
        set_optimizer_state_dict(model, opt, state["optim"])
        start = int(state["step"])
        logger.info("resumed at step %d on %d ranks; g-SNR reference M = %.4g", start, world,
                    opt.param_groups[0]["gsnr_max"])  # fmt: skip

    tokens = stdlib_bytes(args.corpus_bytes)
    rows = slice(rank * args.batch_size // world, (rank + 1) * args.batch_size // world)
    schedule = batches(tokens, args.steps, args.batch_size, args.context, args.seed)
    bar = tqdm(range(start, args.steps), desc=f"FSDP2 x{world}", disable=rank != 0)
    for step in bar:
        x = schedule[step][rows].to(device)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = loss.detach()
        dist.all_reduce(loss)  # a sum: gloo has no average
        bar.set_postfix(loss=f"{loss.item() / world:.3f}")
    logger.info("final train loss %.4f; scales of the first tensors: %s", loss.item() / world,
                dict(list(opt.gsnr().items())[:4]))  # fmt: skip

    if args.save:
        state = {
            "model": get_model_state_dict(model),
            "optim": get_optimizer_state_dict(model, opt),
            "step": torch.tensor(args.steps),
        }
        dcp.save(state, checkpoint_id=args.save)
        logger.info("saved step %d to %s", args.steps, args.save)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
