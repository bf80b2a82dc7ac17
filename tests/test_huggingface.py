"""SGDSaI inside transformers.Trainer (both documented routes) and with a peft LoRA model.

Real libraries, a few steps, a tiny GPT-2 built from a config (vocab 64), generated data, no hub.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from sgdsai import SGDSaI  # noqa: E402
from sgdsai.param_groups import decay_groups  # noqa: E402

VOCAB, CONTEXT = 64, 16


def tiny_gpt2(seed: int = 0) -> transformers.GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=CONTEXT,
        n_embd=16,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.GPT2LMHeadModel(config)


class CountingData(torch.utils.data.Dataset):
    """Sequences that count upward mod VOCAB from a random start: learnable in a few steps."""

    def __init__(self, n: int = 64) -> None:
        gen = torch.Generator().manual_seed(0)
        starts = torch.randint(0, VOCAB, (n, 1), generator=gen)
        self.ids = (starts + torch.arange(CONTEXT)) % VOCAB

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def training_args(tmp_path, **overrides) -> transformers.TrainingArguments:
    kwargs = dict(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=8,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
        seed=0,
        dataloader_num_workers=0,
    )
    kwargs.update(overrides)
    return transformers.TrainingArguments(**kwargs)


def unwrap(optimizer: torch.optim.Optimizer) -> SGDSaI:
    """Trainer wraps the optimizer in accelerate's AcceleratedOptimizer."""
    inner = getattr(optimizer, "optimizer", optimizer)
    assert isinstance(inner, SGDSaI)
    return inner


def losses(trainer: transformers.Trainer) -> list[float]:
    return [row["loss"] for row in trainer.state.log_history if "loss" in row]


def test_optimizer_cls_and_kwargs_uses_kwargs_lr_and_trainer_weight_decay(tmp_path) -> None:
    """Trainer builds the groups (weight_decay from TrainingArguments, 0 for biases and norms) and
    takes lr from the kwargs: TrainingArguments.learning_rate is not used on this route."""
    model = tiny_gpt2()
    args = training_args(tmp_path, learning_rate=1e-5, weight_decay=0.1, lr_scheduler_type="constant")
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=CountingData(),
        optimizer_cls_and_kwargs=(SGDSaI, {"lr": 1.0, "momentum": 0.9}),
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    opt = unwrap(trainer.optimizer)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 1.0]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    table = opt.gsnr(model)
    assert set(table) == {n for n, _ in model.named_parameters()}
    assert max(table.values()) == 1.0 and all(0 < v <= 1 for v in table.values())
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())
    curve = losses(trainer)
    assert len(curve) == 6 and curve[-1] < curve[0]


def test_optimizers_tuple_with_named_groups_follows_the_scheduler(tmp_path) -> None:
    model = tiny_gpt2()
    opt = SGDSaI(decay_groups(model, 0.1), 1.0)
    schedule = transformers.get_cosine_schedule_with_warmup(opt, num_warmup_steps=2, num_training_steps=6)
    trainer = transformers.Trainer(
        model=model, args=training_args(tmp_path), train_dataset=CountingData(), optimizers=(opt, schedule)
    )
    trainer.train()
    assert unwrap(trainer.optimizer) is opt
    logged = [row["learning_rate"] for row in trainer.state.log_history if "learning_rate" in row]
    expected = [min(s / 2, 0.5 * (1 + math.cos(math.pi * (s - 2) / 4))) for s in range(6)]
    assert logged == pytest.approx(expected)  # lr logged before each step's scheduler update
    assert set(opt.gsnr()) == {n for n, _ in model.named_parameters()}  # names from decay_groups
    assert losses(trainer)[-1] < losses(trainer)[0]


def test_gradient_accumulation_in_trainer_measures_once_on_the_summed_gradient(tmp_path) -> None:
    """With accumulation the optimizer steps every 2 micro-batches; the g-SNR is measured from
    the first *accumulated* gradient and never again (the reference M is fixed)."""
    model = tiny_gpt2()
    opt = SGDSaI(decay_groups(model, 0.0), 1.0)
    args = training_args(tmp_path, max_steps=3, per_device_train_batch_size=4, gradient_accumulation_steps=2)
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=CountingData(), optimizers=(opt, None)
    )
    trainer.train()
    assert trainer.state.global_step == 3
    assert opt.param_groups[0]["gsnr_max"] is not None
    assert len(opt.gsnr()) == len(list(model.parameters()))


def test_peft_lora_a_matrices_train_although_b_starts_at_zero(tmp_path) -> None:
    """LoRA's B = 0 makes every A's first gradient exactly zero: SGDSaI must defer A's g-SNR to
    the next step, then train it (the released package freezes A for good)."""
    peft = pytest.importorskip("peft")
    base = tiny_gpt2()
    frozen = {n: p.detach().clone() for n, p in base.named_parameters()}
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"], lora_dropout=0.0, fan_in_fan_out=True
    )
    model = peft.get_peft_model(base, config)
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    a_names = [n for n in lora if "lora_A" in n]
    assert a_names and all(torch.count_nonzero(lora[n.replace("lora_A", "lora_B")]) == 0 for n in a_names)
    opt = SGDSaI(decay_groups(model, 0.0), 2.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / 8)
    trainer = transformers.Trainer(
        model=model, args=training_args(tmp_path), train_dataset=CountingData(), optimizers=(opt, schedule)
    )
    trainer.train()
    table = opt.gsnr()
    assert set(table) == set(lora)  # only trainable tensors, by name, and every one measured
    for name in a_names:
        assert 0 < table[name] <= 1
        moved = (dict(model.named_parameters())[name].detach() - lora[name]).abs().max()
        assert moved > 1e-4, name
    base_now = {n.removeprefix("base_model.model."): p for n, p in model.named_parameters()}
    for name, value in frozen.items():
        key = name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        current = base_now.get(key, base_now.get(name))
        torch.testing.assert_close(current.detach(), value, rtol=0, atol=0)
