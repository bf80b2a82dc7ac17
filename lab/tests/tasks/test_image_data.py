"""The image tasks' splits: validation and test are disjoint from training and from each other, the
same at every build; the linear floor is cached by a digest of the data and read back unchanged;
evaluation scores both held-out splits."""

from __future__ import annotations

import json

import pytest
import torch

from sgdsai_lab.sources import images
from sgdsai_lab.tasks import image_data


def _fake_fashion(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct random 'images' in Fashion-MNIST's shape: 6,000 training, 1,000 test."""
    n, seed = (6000, 1) if split == "train" else (1000, 2)
    x = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    return x, torch.arange(n) % 10


def _rows(split: image_data.Split) -> set[bytes]:
    return {row.numpy().tobytes() for row in split[0].flatten(1)}


@pytest.mark.parametrize("data", ["fashion-mnist", "digits", "synthetic"])
def test_validation_and_test_are_disjoint_from_training_and_from_each_other(data, monkeypatch) -> None:
    if data == "digits":
        pytest.importorskip("sklearn")
    monkeypatch.setattr(images, "fashion_mnist", _fake_fashion)
    splits = image_data.image_splits(data)
    train, val, test = (_rows(s) for s in (splits.train, splits.val, splits.test))
    assert len(train) == len(splits.train[0]) and val and test  # no image twice within a split
    assert not train & val and not train & test and not val & test
    if data == "fashion-mnist":
        assert (len(splits.train[0]), len(splits.val[0]), len(splits.test[0])) == (1000, 5000, 1000)
    else:
        assert abs(len(splits.val[0]) - len(splits.test[0])) <= 1
    again = image_data.image_splits(data)
    assert torch.equal(again.val[0], splits.val[0]) and torch.equal(again.test[1], splits.test[1])


def test_the_cached_linear_floor_is_read_back_for_the_same_data_only(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    splits = image_data.image_splits("synthetic")
    fitted = image_data.linear_floors(splits, cached=True)
    assert fitted == image_data.linear_floors(splits)  # the cache stores what a fit gives
    (path,) = (tmp_path / "floors").glob("*.json")
    entry = json.loads(path.read_text())
    path.write_text(
        json.dumps({**entry, "value": {**fitted, "linear_val": -1.0}})
    )  # tell a read from a refit
    assert image_data.linear_floors(splits, cached=True)["linear_val"] == -1.0
    x, y = splits.test
    other = image_data.ImageSplits(splits.train, splits.val, (x, (y + 1) % 10))
    assert image_data.linear_floors(other, cached=True)["linear_val"] == fitted["linear_val"]
    assert len(list((tmp_path / "floors").glob("*.json"))) == 2


def test_evaluation_scores_both_held_out_splits() -> None:
    splits = image_data.image_splits("synthetic")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    evaluate, outcomes = image_data.evaluator(splits, lambda m, x: m(x))
    out = evaluate(model)
    assert set(out) == {"val_loss", "val_accuracy", "test_loss", "test_accuracy"}
    with torch.no_grad():
        want = model(splits.test[0]).argmax(-1) == splits.test[1]
    assert (
        out["test_accuracy"] == pytest.approx(want.float().mean().item())
        and out["val_loss"] != out["test_loss"]
    )
    assert torch.equal(outcomes()["test"], want)
