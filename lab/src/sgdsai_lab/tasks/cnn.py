"""Image classification with a small ResNet (BasicBlocks with BatchNorm) trained from scratch.

The network: a 3x3 stem convolution (stride 2 on images of 16 pixels or more: 28x28 becomes 14x14,
which makes a step about 4x cheaper), three stages of BasicBlocks (the second and third halve the
resolution and double the width), global average pooling and a linear head. Convolutions use
He initialisation (fan-out), as torchvision's ResNets do. BatchNorm uses batch statistics in
training and running statistics in evaluation.

Data: ``fashion-mnist`` (28x28, fetched with ``sgdsai data fetch fashion-mnist``; the first
``EVAL_LIMIT`` of its test set are the evaluation set), ``digits`` (scikit-learn's 8x8 digits, 20%
held out) or ``synthetic`` (8x8 Gaussian images labelled by a fixed random linear map: no files).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sgdsai_lab.tasks import Task, TaskSpec, row_batches
from sgdsai_lab.tasks.vit import EVAL_LIMIT, holdout_split, synthetic_images

SIZES = {  # stem width (doubled per stage), BasicBlocks per stage
    "tiny": (16, 1),
    "small": (16, 2),
    "base": (32, 3),
}
EVAL_CHUNK = 500
SPEC = TaskSpec(
    data=("fashion-mnist", "digits", "synthetic"),
    sizes=tuple(SIZES),
    metric="val_accuracy",
    eval_size=f"the first {EVAL_LIMIT} held-out images",
    floor="linear",
    floor_computed=False,
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
    from sgdsai_lab.sources import images

    if size not in SIZES:
        raise ValueError(f"cnn size must be one of {', '.join(SPEC.sizes)}, not {size!r}")
    width, blocks = SIZES[size]
    batch_size = batch_size or 128
    if data == "fashion-mnist":
        (x_train, y_train), (x_test, y_test) = images.fashion_mnist("train"), images.fashion_mnist("test")
    elif data == "digits":
        (x_train, y_train), (x_test, y_test) = holdout_split(*images.digits())
    elif data == "synthetic":
        (x_train, y_train), (x_test, y_test) = holdout_split(*synthetic_images(1000))
    else:
        raise ValueError(f"cnn data must be one of {', '.join(SPEC.data)}, not {data!r}")
    x_test, y_test = x_test[:EVAL_LIMIT], y_test[:EVAL_LIMIT]

    batch = row_batches((x_train, y_train), batch_size, seed)

    def loss(model: nn.Module, xy: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(xy[0]), xy[1])

    @torch.no_grad()
    def evaluate(model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        logits = torch.cat([model(x.to(device)).cpu() for x in x_test.split(EVAL_CHUNK)])
        model.train(was_training)
        return {
            "val_loss": F.cross_entropy(logits, y_test).item(),
            "val_accuracy": (logits.argmax(-1) == y_test).float().mean().item(),
        }

    torch.manual_seed(seed)
    model = ResNet(width, blocks, stem_stride=2 if x_train.shape[-1] >= 16 else 1)
    return Task(
        model=model,
        batch=batch,
        loss=loss,
        evaluate=evaluate,
        traced=[
            "stem.0.weight",
            "stages.0.0.conv1.weight",
            "stages.2.0.conv2.weight",
            "stages.1.0.bn1.weight",
            "head.weight",
        ],
        info={  # Adam-mini: no attention here; every tensor falls in its default one-scale-per-tensor
            "dim": 4 * width,  # block (biases: per-coordinate Adam). dim and n_heads go unused.
            "n_heads": 1,
        },
        description=f"ResNet {size} ({3 * blocks} BasicBlocks, widths {width}-{4 * width}) on {data}, "
        f"batch {batch_size}",
    )
