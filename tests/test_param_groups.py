"""decay_groups: the p.dim() >= 2 rule, names kept for SGDSaI.gsnr(), frozen and shared tensors."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

import sgdsai.param_groups
from sgdsai import SGDSaI
from sgdsai.param_groups import decay_groups


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.norm = nn.LayerNorm(6)
        self.proj = nn.Linear(6, 6)
        self.conv = nn.Conv1d(6, 6, 3)
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.embed.weight  # tied, as in GPT-2

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.proj(self.norm(self.embed(idx)))
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)
        return self.head(h * self.scale)


def names(group: dict) -> list[str]:
    return [n for n, _ in group["params"]]


def test_matrices_decay_and_vectors_scalars_do_not() -> None:
    decay, no_decay = decay_groups(Tiny(), 0.1)
    assert names(decay) == ["embed.weight", "proj.weight", "conv.weight"]
    assert names(no_decay) == ["scale", "norm.weight", "norm.bias", "proj.bias", "conv.bias"]
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)


def test_module_and_named_parameters_give_the_same_groups() -> None:
    model = Tiny()
    assert decay_groups(model, 0.1) == decay_groups(model.named_parameters(), 0.1)


def test_every_trainable_parameter_appears_exactly_once() -> None:
    model = Tiny()
    grouped = [p for g in decay_groups(model, 0.1) for _, p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))


def test_shared_parameter_listed_twice_appears_once() -> None:
    model = Tiny()
    pairs = list(model.named_parameters(remove_duplicate=False))
    assert sum(p is model.embed.weight for _, p in pairs) == 2
    grouped = [n for g in decay_groups(pairs, 0.1) for n in names(g)]
    assert grouped.count("embed.weight") == 1 and "head.weight" not in grouped


def test_frozen_parameters_are_skipped() -> None:
    model = Tiny()
    model.proj.requires_grad_(False)
    grouped = [n for g in decay_groups(model, 0.1) for n in names(g)]
    assert "proj.weight" not in grouped and "proj.bias" not in grouped
    assert "conv.weight" in grouped


def test_empty_group_is_left_out() -> None:
    groups = decay_groups(nn.Linear(3, 3, bias=False), 0.1)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.1


def test_custom_rule_replaces_the_default() -> None:
    groups = decay_groups(Tiny(), 0.1, rule=lambda name, p: p.dim() >= 2 and not name.startswith("embed"))
    assert "embed.weight" in names(groups[1])


def test_plain_tensors_raise_type_error() -> None:
    with pytest.raises(TypeError, match="named_parameters"):
        decay_groups(list(Tiny().parameters()), 0.1)


def test_sgdsai_reports_gsnr_by_name_and_decays_only_the_first_group() -> None:
    torch.manual_seed(0)
    model = Tiny()
    opt = SGDSaI(decay_groups(model, 0.5), lr=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    model(torch.randint(0, 10, (4, 5))).square().mean().backward()
    opt.step()
    table = opt.gsnr()
    assert set(table) == {n for n, _ in model.named_parameters()}
    assert table == opt.gsnr(model)  # names from the groups agree with names from the module


def test_only_the_decay_group_is_shrunk_by_the_step() -> None:
    """momentum=0: bias moves by exactly -lr * scale * g, weight by that plus -lr * wd * w."""
    torch.manual_seed(0)
    model = nn.Linear(4, 4)
    lr, wd = 0.1, 0.5
    opt = SGDSaI(decay_groups(model, wd), lr, momentum=0.0)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    model(torch.randn(8, 4)).sum().backward()
    opt.step()
    scale = opt.gsnr()
    expected_b = b0 - lr * scale["bias"] * model.bias.grad
    expected_w = w0 * (1 - lr * wd) - lr * scale["weight"] * model.weight.grad
    torch.testing.assert_close(model.bias.detach(), expected_b)
    torch.testing.assert_close(model.weight.detach(), expected_w)


def test_docstring_example_runs() -> None:
    result = doctest.testmod(sgdsai.param_groups, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
