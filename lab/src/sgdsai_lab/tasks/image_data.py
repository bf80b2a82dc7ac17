"""The image tasks' data: disjoint training, validation and test splits of each dataset, their
linear floors (`sgdsai_lab.floors.linear_floors`) and the chunked evaluation on both held-out
splits, shared by ``vit`` and ``cnn``.

* ``fashion-mnist``: `FASHION_VAL` images of the 60k training set, drawn by a fixed seed, are
  the validation split (``val_*``, which sweeps select on), the other 55k the training split; the
  10k test images are the test split (``test_*``, which verdicts report).
* ``digits`` (scikit-learn's 1,797 8x8 digits) and ``synthetic`` (1,000 8x8 Gaussian images labelled
  by a fixed random linear map: learnable, no files): a fixed random 80% trains, the other 20% is
  cut in two halves, validation then test.

The Fashion-MNIST floor takes a few minutes to fit, so it is cached under the data cache
(`sgdsai_lab.fetch.cached_json`), keyed by a digest of the splits and the fit settings and the
torch version; the small datasets' floors are computed at each build.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sgdsai_lab import floors
from sgdsai_lab.fetch import cached_json
from sgdsai_lab.tasks import tensors_digest

logger = logging.getLogger(__name__)

DATA = ("fashion-mnist", "digits", "synthetic")
#: Fashion-MNIST training images held out as the validation split
FASHION_VAL = 5000
#: the datasets whose linear floor is cached on disk (the others are fitted in well under a second)
CACHED = ("fashion-mnist",)
CLASSES = 10
EVAL_CHUNK = 500  #: images per evaluation forward pass
#: the evaluation sets in words (the tasks' ``eval_size``)
EVAL_SIZE = (
    f"val: {FASHION_VAL:,} training images held out, test: the 10k test images "
    "(digits, synthetic: the held-out 20% in halves)"
)

Split = floors.Split


@dataclass(frozen=True)
class ImageSplits:
    train: Split
    val: Split
    test: Split

    @property
    def image_size(self) -> int:
        return self.train[0].shape[-1]


def synthetic_images(n: int, seed: int = 0) -> Split:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=gen)
    w = torch.randn(64, 10, generator=gen)
    return x, (x.flatten(1) @ w).argmax(-1)


def _rows(split: Split, index: Tensor) -> Split:
    return split[0][index], split[1][index]


def holdout_split(x: Tensor, y: Tensor, seed: int = 0) -> ImageSplits:
    """A fixed random 80% for training, the other 20% cut in halves: validation, then test."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    half = cut + (len(x) - cut) // 2
    return ImageSplits(
        _rows((x, y), order[:cut]), _rows((x, y), order[cut:half]), _rows((x, y), order[half:])
    )


def image_splits(data: str) -> ImageSplits:
    """The three splits of ``data`` (one of `DATA`)."""
    from sgdsai_lab.sources import images

    if data == "fashion-mnist":
        train = images.fashion_mnist("train")
        order = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(0))
        return ImageSplits(
            _rows(train, order[FASHION_VAL:]), _rows(train, order[:FASHION_VAL]), images.fashion_mnist("test")
        )
    if data == "digits":
        return holdout_split(*images.digits())
    if data == "synthetic":
        return holdout_split(*synthetic_images(1000))
    raise ValueError(f"image data must be one of {', '.join(DATA)}, not {data!r}")


def digest(splits: ImageSplits) -> str:
    """A sha256 of every split's images and labels and of the linear fit's settings."""
    h = hashlib.sha256(json.dumps({"l2s": floors.L2S, "iterations": floors.LINEAR_ITERATIONS}).encode())
    for x, y in (splits.train, splits.val, splits.test):
        for t in (x, y):
            h.update(str((tuple(t.shape), t.dtype)).encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def eval_sizes(splits: ImageSplits) -> dict[str, int]:
    """The number of images in each evaluation split: what an accuracy's binomial noise depends on."""
    return {"val": len(splits.val[1]), "test": len(splits.test[1])}


def eval_digests(splits: ImageSplits) -> dict[str, str]:
    """Each evaluation split's `sgdsai_lab.tasks.tensors_digest` (images and labels, in order)."""
    return {"val": tensors_digest(splits.val), "test": tensors_digest(splits.test)}


def linear_floors(splits: ImageSplits, *, cached: bool = False) -> dict[str, float]:
    """The splits' linear floors; with ``cached``, read from (else fitted once and kept in) the data
    cache (`sgdsai_lab.fetch.cached_json`, kind ``floors``), keyed by `digest` and the torch version."""

    def fit() -> dict[str, float]:
        logger.info("fitting the linear floor of %d training images", len(splits.train[0]))
        return floors.linear_floors(splits.train, splits.val, splits.test, CLASSES)

    if not cached:
        return fit()
    found: dict[str, float] = cached_json(
        "floors", {"linear": digest(splits), "torch": torch.__version__}, fit
    )
    return found


def evaluator(
    splits: ImageSplits, forward: Callable[[nn.Module, Tensor], Tensor]
) -> tuple[Callable[[nn.Module], dict[str, float]], Callable[[], dict[str, Tensor]]]:
    """``(evaluate, outcomes)``: ``model -> {val_loss, val_accuracy, test_loss, test_accuracy}`` in
    eval mode, the logits ``forward(model, images)`` computed `EVAL_CHUNK` images at a time on the
    model's device; and ``() -> {split: per-image correctness}`` of the last evaluation (so the
    outcomes a record keeps are those its accuracies count, without a second pass)."""
    last: dict[str, Tensor] = {}

    @torch.no_grad()
    def evaluate(model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        out = {}
        for name, (x, y) in (("val", splits.val), ("test", splits.test)):
            logits = torch.cat(
                [forward(model, chunk.to(device)).float().cpu() for chunk in x.split(EVAL_CHUNK)]
            )
            last[name] = logits.argmax(-1) == y
            out[f"{name}_loss"] = F.cross_entropy(logits, y).item()
            out[f"{name}_accuracy"] = last[name].float().mean().item()
        model.train(was_training)
        return out

    def outcomes() -> dict[str, Tensor]:
        return dict(last)

    return evaluate, outcomes
