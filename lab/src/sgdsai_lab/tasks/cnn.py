"""Image classification with a small ResNet (BasicBlocks with BatchNorm) trained from scratch.

The network: a 3x3 stem convolution (stride 2 on images of 16 pixels or more: 28x28 becomes 14x14,
which makes a step about 4x cheaper), three stages of BasicBlocks (the second and third halve the
resolution and double the width), global average pooling and a linear head. Convolutions use
He initialisation (fan-out), as torchvision's ResNets do. BatchNorm uses batch statistics in
training and running statistics in evaluation.

Data: ``fashion-mnist`` (28x28, fetched with ``sgdsai data fetch fashion-mnist``), ``digits``
(scikit-learn's 8x8 digits) or ``synthetic`` (8x8, no files); their training, validation and test
splits and linear floors are `sgdsai_lab.tasks.image_data`'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sgdsai_lab.tasks import Task, TaskSpec, image_data, row_batches

SIZES = {  # stem width (doubled per stage), BasicBlocks per stage
    "tiny": (16, 1),
    "small": (16, 2),
    "base": (32, 3),
}
SPEC = TaskSpec(
    data=("fashion-mnist", "digits", "synthetic"),
    sizes=tuple(SIZES),
    metric="val_accuracy",
    eval_size=image_data.EVAL_SIZE,
    floor="linear",
    floor_computed=True,
)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection (1x1 convolution + BatchNorm
    where the shape changes)."""

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self, width: int, blocks: int, stem_stride: int = 1, classes: int = 10, channels: int = 1
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, current = [], width
        for stage in range(3):
            out = width * 2**stage
            stride = 1 if stage == 0 else 2
            stages.append(nn.Sequential(*(BasicBlock(current if i == 0 else out, out, stride if i == 0 else 1)
                                          for i in range(blocks))))  # fmt: skip
            current = out
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(current, classes)  # not "linear": Adam-mini treats names with that as MLP rows
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean((2, 3)))


def build(data: str, size: str, seed: int, batch_size: int | None = None) -> Task:
    if size not in SIZES:
        raise ValueError(f"cnn size must be one of {', '.join(SPEC.sizes)}, not {size!r}")
    width, blocks = SIZES[size]
    batch_size = batch_size or 128
    if data not in SPEC.data:
        raise ValueError(f"cnn data must be one of {', '.join(SPEC.data)}, not {data!r}")
    splits = image_data.image_splits(data)
    batch = row_batches(splits.train, batch_size, seed)

    def loss(model: nn.Module, xy: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(xy[0]), xy[1])

    torch.manual_seed(seed)
    model = ResNet(width, blocks, stem_stride=2 if splits.image_size >= 16 else 1)
    evaluate, outcomes = image_data.evaluator(splits, lambda model, x: model(x))
    return Task(
        model=model,
        batch=batch,
        loss=loss,
        evaluate=evaluate,
        outcomes=outcomes,
        traced=[
            "stem.0.weight",
            "stages.0.0.conv1.weight",
            "stages.2.0.conv2.weight",
            "stages.1.0.bn1.weight",
            "head.weight",
        ],
        info={  # Adam-mini: no attention here; every tensor falls in its default one-scale-per-tensor
            "floors": image_data.linear_floors(splits, cached=data in image_data.CACHED),
            "eval_sizes": image_data.eval_sizes(splits),
            "eval_digests": image_data.eval_digests(splits),
            "chance_accuracy": 0.1,  # ten classes: what a diverged run counts as in grid averages
            "dim": 4 * width,  # block (biases: per-coordinate Adam). dim and n_heads go unused.
            "n_heads": 1,
        },
        description=f"ResNet {size} ({3 * blocks} BasicBlocks, widths {width}-{4 * width}) on {data}, "
        f"batch {batch_size}",
    )
