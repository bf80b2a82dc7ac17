"""The optimizer registry builds every listed optimizer, and wires each the way it says."""

from __future__ import annotations

import copy

import pytest
import torch

from sgdsai import SGDSaI
from sgdsai_lab.tasks import build_task
from sgdsai_lab.zoo import OPTIMIZERS, available, build_optimizer, state_bytes


def _tiny_task(seed: int = 0):
    return build_task("vit", "synthetic", "tiny", seed, batch_size=8)


def _steps(name: str, steps: int = 2, lr: float | None = None):
    task = _tiny_task()
    opt = build_optimizer(name, task.model, OPTIMIZERS[name].lr if lr is None else lr, 0.01, task.info)
    for step in range(steps):
        opt.zero_grad()
        task.loss(task.model, task.batch(step)).backward()
        opt.step()
    return task, opt


#: third-party optimizers that do not move every tensor in two steps, and why
STILL = {
    "pytorch-optimizer-sgdsai": "pytorch_optimizer 4.1.0's SGDSaI leaves two LayerNorm gains of the tiny ViT unmoved",
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=STILL[n])) if n in STILL else n
        for n in OPTIMIZERS
    ],
)
def test_every_listed_optimizer_builds_and_moves_every_parameter(name: str) -> None:
    if not available(name):
        pytest.skip(f"{OPTIMIZERS[name].package} is not installed")
    start = {n: p.detach().clone() for n, p in _tiny_task().model.named_parameters()}
    task, opt = _steps(name)
    moved = [n for n, p in task.model.named_parameters() if not torch.equal(p, start[n])]
    assert len(moved) == len(start)
    assert state_bytes(opt) > 0


def test_sgdsai_modes_are_the_paper_and_released_code_flags() -> None:
    model = torch.nn.Linear(3, 2)
    paper = build_optimizer("sgdsai", model, 0.1, 0.0)
    official = build_optimizer("sgdsai-official", model, 0.1, 0.0)
    assert isinstance(paper, SGDSaI) and isinstance(official, SGDSaI)
    assert (paper.defaults["normalize"], paper.defaults["unbiased"]) == (True, False)
    assert (official.defaults["normalize"], official.defaults["unbiased"]) == (False, True)


def test_official_mode_trains_like_the_released_package() -> None:
    pytest.importorskip("sgd_sai")
    ours, _ = _steps("sgdsai-official", steps=3, lr=1e-3)
    theirs, _ = _steps("sgd-sai-1.0.3", steps=3, lr=1e-3)
    for (name, a), (_, b) in zip(ours.model.named_parameters(), theirs.model.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)


def test_sgdsai_keeps_half_of_adamws_state() -> None:
    _, sgdsai = _steps("sgdsai", steps=1)
    task, adamw = _steps("adamw", steps=1)
    param_bytes = sum(p.numel() * p.element_size() for p in task.model.parameters())
    assert param_bytes <= state_bytes(sgdsai) < param_bytes * 1.01
    assert 2 * param_bytes <= state_bytes(adamw) < 2 * param_bytes * 1.01


def test_unknown_optimizer_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown optimizer 'adam'; choose from .*adamw"):
        build_optimizer("adam", torch.nn.Linear(2, 2), 0.1, 0.0)


def test_muon_takes_the_vit_hidden_matrices_and_adamw_the_rest() -> None:
    task = _tiny_task()
    muon, adamw = build_optimizer("muon", task.model, 1e-3, 0.1, task.info).optimizers
    names = {id(p): n for n, p in task.model.named_parameters()}
    in_muon = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    in_adamw = {names[id(p)] for g in adamw.param_groups for p in g["params"]}
    assert in_muon | in_adamw == set(names.values()) and not in_muon & in_adamw
    assert in_muon == {
        n for n, p in task.model.named_parameters() if p.dim() == 2 and n != "classifier.weight"
    }
    assert {"vit.layers.0.attention.q_proj.weight", "vit.layers.0.mlp.fc1.weight"} <= in_muon
    assert set(task.info["io_names"]) <= in_adamw  # patch convolution, cls token, positions, classifier


def test_muon_resumes_exactly_from_its_state_dict() -> None:
    """Muon is two optimizers stepped as one; its state dict restores both, and its state reads
    both afresh after a load (a stale view would report no state)."""
    task, opt = _steps("muon", 2)
    saved = {k: v.detach().clone() for k, v in task.model.state_dict().items()}
    state = copy.deepcopy(opt.state_dict())  # torch loads tensors of the right dtype without copying
    twin, twin_opt = _steps("muon", 2)
    twin_opt.load_state_dict(state)
    assert state_bytes(twin_opt) == state_bytes(opt) > 0
    for model, optimizer in ((task.model, opt), (twin.model, twin_opt)):
        model.load_state_dict(saved)
        optimizer.zero_grad()
        task.loss(model, task.batch(2)).backward()
        optimizer.step()
    for (name, a), b in zip(task.model.state_dict().items(), twin.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_documented_table_lists_every_entry_with_its_defaults() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "experiments.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line.split("|")[-2].strip() for line in docs.splitlines()
            if line.startswith("| `")}  # fmt: skip
    assert {n: f"{e.lr:g}, {e.weight_decay:g}" for n, e in OPTIMIZERS.items()}.items() <= rows.items()


def _gpt2_first_step(name: str):
    task = build_task("gpt2", "synthetic", "tiny", 0, batch_size=4)
    opt = build_optimizer(name, task.model, 1.0, 1e-4, task.info)
    task.loss(task.model, task.batch(0)).backward()
    opt.step()
    return task, opt


def test_blocks_m_takes_its_reference_from_the_blocks_and_clamps_the_embeddings() -> None:
    _, paper = _gpt2_first_step("sgdsai")
    task, blocks = _gpt2_first_step("sgdsai-blocks-m")
    io = {id(p) for n, p in task.model.named_parameters() if n in task.info["io_names"]}
    assert blocks.param_groups[0]["gsnr_max"] < paper.param_groups[0]["gsnr_max"]  # the embedding set M
    for group in blocks.param_groups:
        assert all((id(p) in io) == (not group["gsnr_reference"]) for p in group["params"])
        assert all(0 < float(blocks.state[p]["lr_scale"]) <= 1 for p in group["params"])
    embedding = task.model.get_input_embeddings().weight
    assert float(blocks.state[embedding]["lr_scale"]) == 1.0  # above the blocks' M: clamped


def test_numel_mode_scales_every_tensor_by_its_size_alone() -> None:
    task, opt = _gpt2_first_step("sgdsai-numel")
    m = opt.param_groups[0]["gsnr_max"]
    largest = max(p.numel() for p in task.model.parameters())
    assert m == pytest.approx(largest**0.5)
    for group in opt.param_groups:
        for p in group["params"]:
            assert float(opt.state[p]["lr_scale"]) == pytest.approx(min(p.numel() ** 0.5 / m, 1.0), rel=1e-6)


def test_vec1_keeps_paper_mode_on_the_matrices_and_gives_the_vectors_the_full_rate() -> None:
    paper_task, paper = _gpt2_first_step("sgdsai")
    paper_scales = {n: float(paper.state[p]["lr_scale"]) for n, p in paper_task.model.named_parameters()}
    task = build_task("gpt2", "synthetic", "tiny", 0, batch_size=4)
    start = {n: p.detach().clone() for n, p in task.model.named_parameters()}
    opt = build_optimizer("sgdsai-vec1", task.model, 1.0, 1e-4, task.info)
    task.loss(task.model, task.batch(0)).backward()
    opt.step()
    matrices = opt.optimizers[0]
    assert matrices.param_groups[0]["gsnr_max"] == paper.param_groups[0]["gsnr_max"]  # no vector set M
    for name, p in task.model.named_parameters():
        if p.dim() >= 2:
            assert float(matrices.state[p]["lr_scale"]) == paper_scales[name], name
        else:  # scale 1 and no decay: the first step is the whole gradient at lr 1
            torch.testing.assert_close(p.detach(), start[name] - p.grad, rtol=0, atol=1e-6)
    vectors = [n for n, p in task.model.named_parameters() if p.dim() < 2]
    assert vectors and max(paper_scales[n] for n in vectors) < 0.5  # paper mode gives them far less


class _Holder(torch.nn.Module):
    def __init__(self, params: dict[str, torch.nn.Parameter]) -> None:
        super().__init__()
        for name, p in params.items():
            self.register_parameter(name, p)


def test_vec1_matches_an_oracle_of_paper_mode_plus_ema_momentum_sgd_over_many_steps() -> None:
    """float64, a changing lr (as a scheduler sets it), None gradients on a matrix and on a vector,
    a 0-d parameter: the matrices follow `SGDSaIReference`, the vectors m <- mu m + (1 - mu) g
    (m_1 = g_1), p <- p - lr m, undecayed."""
    from sgdsai.reference import SGDSaIReference

    torch.manual_seed(0)
    shapes = {"w1": (6, 5), "w2": (4, 6), "conv": (3, 2, 2), "b1": (6,), "gain": (4,), "scalar": ()}
    params = {n: torch.randn(s, dtype=torch.float64) for n, s in shapes.items()}
    ours = {n: torch.nn.Parameter(v.clone()) for n, v in params.items()}
    theirs = {n: v.clone() for n, v in params.items() if v.dim() < 2}
    mats = {n: torch.nn.Parameter(v.clone()) for n, v in params.items() if v.dim() >= 2}
    opt = build_optimizer("sgdsai-vec1", _Holder(ours), 0.5, 0.1)
    oracle = SGDSaIReference(list(mats.values()), 0.5, 0.9, 0.1)
    momentum: dict[str, torch.Tensor] = {}
    for step in range(30):
        lr = 0.5 * (1 - step / 40)
        for group in [*opt.param_groups, *oracle.param_groups]:
            group["lr"] = lr
        for name in shapes:
            missing = (step == 3 and name == "gain") or (step == 5 and name == "w2")
            g = None if missing else torch.randn(shapes[name], dtype=torch.float64)
            ours[name].grad = g
            if name in mats:
                mats[name].grad = g
            elif g is not None:
                momentum[name] = g.clone() if name not in momentum else 0.9 * momentum[name] + 0.1 * g
                theirs[name] -= lr * momentum[name]
        opt.step()
        oracle.step()
    for name in shapes:
        expected = mats[name] if name in mats else theirs[name]
        torch.testing.assert_close(ours[name].detach(), expected.detach(), rtol=1e-12, atol=1e-12)
