"""Train a tiny GPT-2 with SGD-SaI under Hugging Face Accelerate.

Shows the pieces a real run combines: named decay groups, an LR schedule, gradient accumulation,
gradient clipping and mixed precision, all through ``accelerate``'s own API. SGD-SaI's g-SNR is
scale-invariant, so clipping and the averaging of accumulated micro-batches do not change it.

    pip install "sgdsai[hf]"
    accelerate launch examples/accelerate_train.py            # or: python examples/accelerate_train.py
"""

from __future__ import annotations

import argparse
import logging

import torch
from accelerate import Accelerator
from transformers import GPT2Config, GPT2LMHeadModel, get_cosine_schedule_with_warmup

from sgdsai import SGDSaI
from sgdsai.param_groups import decay_groups

logger = logging.getLogger(__name__)


def counting_batches(vocab: int, context: int, batch: int, seed: int):
    """Endless batches of sequences counting upward mod ``vocab``: a task a tiny model learns."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, vocab, (batch, 1), generator=gen)
        yield (starts + torch.arange(context)) % vocab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1.0, help="lr of the highest-g-SNR tensor")
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--accumulate", type=int, default=2)
    parser.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    accelerator = Accelerator(
        gradient_accumulation_steps=args.accumulate, mixed_precision=args.mixed_precision
    )
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=64, n_positions=32, n_embd=64, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0
    )
    model = GPT2LMHeadModel(config)
    sgdsai = SGDSaI(decay_groups(model, args.weight_decay), args.lr)
    scheduler = get_cosine_schedule_with_warmup(sgdsai, args.steps // 10, args.steps)
    model, optimizer, scheduler = accelerator.prepare(model, sgdsai, scheduler)

    batches = counting_batches(config.vocab_size, config.n_positions, 16, seed=accelerator.process_index)
    model.train()
    for step in range(args.steps * args.accumulate):
        with accelerator.accumulate(model):
            ids = next(batches).to(accelerator.device)
            loss = model(input_ids=ids, labels=ids).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        if accelerator.sync_gradients and (step // args.accumulate) % 10 == 0:
            logger.info(
                "step %d  loss %.3f  lr %.3g",
                step // args.accumulate,
                loss.item(),
                scheduler.get_last_lr()[0],
            )

    lowest = sorted(sgdsai.gsnr().items(), key=lambda kv: kv[1])[:3]  # scales by parameter name
    logger.info("lowest g-SNR scales: %s", ", ".join(f"{n}={s:.3f}" for n, s in lowest))


if __name__ == "__main__":
    main()
