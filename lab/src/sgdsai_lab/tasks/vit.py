"""Image classification with a small ViT (``ViTForImageClassification``) trained from scratch.

Data: ``digits`` (scikit-learn's 8x8 digits, 20% held out), ``fashion-mnist`` (28x28, fetched with
``sgdsai data fetch fashion-mnist``, patch 7; the first 2,000 of its 10k test images are the
evaluation set) or ``synthetic``
(8x8 Gaussian images labelled by a fixed random linear map: learnable, no files).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sgdsai_lab.tasks import Task, TaskSpec, row_batches

SIZES = {  # hidden, layers, heads
    "tiny": (32, 1, 2),
    "small": (64, 2, 4),
    "base": (128, 4, 4),
}
EVAL_LIMIT = 2000
SPEC = TaskSpec(
    data=("digits", "fashion-mnist", "synthetic"),
    sizes=tuple(SIZES),
    metric="val_accuracy",
    eval_size=f"the first {EVAL_LIMIT} held-out images",
    floor="linear",
    floor_computed=False,
)


def synthetic_images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=gen)
    w = torch.randn(64, 10, generator=gen)
    return x, (x.flatten(1) @ w).argmax(-1)


def holdout_split(x: torch.Tensor, y: torch.Tensor, seed: int = 0):
    """A fixed random 80/20 split into ``((x_train, y_train), (x_test, y_test))``."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def build(data: str, size: str, seed: int, batch_size: int | None = None) -> Task:
    from transformers import ViTConfig, ViTForImageClassification

    from sgdsai_lab.sources import images

    hidden, layers, heads = SIZES[size]
    batch_size = batch_size or 64
    if data == "digits":
        (x_train, y_train), (x_test, y_test) = holdout_split(*images.digits())
        image, patch = 8, 2
    elif data == "fashion-mnist":
        (x_train, y_train), (x_test, y_test) = images.fashion_mnist("train"), images.fashion_mnist("test")
        image, patch = 28, 7
    elif data == "synthetic":
        (x_train, y_train), (x_test, y_test) = holdout_split(*synthetic_images(1000))
        image, patch = 8, 2
    else:
        raise ValueError(f"vit data must be one of {', '.join(SPEC.data)}, not {data!r}")
    x_test, y_test = x_test[:EVAL_LIMIT], y_test[:EVAL_LIMIT]

    batch = row_batches((x_train, y_train), batch_size, seed)

    def loss(model: torch.nn.Module, xy: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(pixel_values=xy[0]).logits, xy[1])

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        logits = torch.cat([model(pixel_values=x).logits for x in x_test.split(500)])
        model.train(was_training)
        return {
            "val_loss": F.cross_entropy(logits, y_test).item(),
            "val_accuracy": (logits.argmax(-1) == y_test).float().mean().item(),
        }

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=image, patch_size=patch, num_channels=1, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=2 * hidden, num_labels=10,  # type: ignore[call-arg]
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    model = ViTForImageClassification(config)
    return Task(
        model=model,
        batch=batch,
        loss=loss,
        evaluate=evaluate,
        traced=[
            "vit.embeddings.patch_embeddings.projection.weight",
            "vit.layers.0.attention.q_proj.weight",
            "vit.layers.0.layernorm_before.weight",
            "vit.layers.0.mlp.fc1.bias",
            "classifier.weight",
        ],
        info={  # Adam-mini: non-matrix tensors (tokens, conv patches) get per-coordinate Adam
            "chance_accuracy": 0.1,
            "io_names": [
                "vit.embeddings.cls_token",
                "vit.embeddings.position_embeddings",
                "vit.embeddings.patch_embeddings.projection.weight",
                "classifier.weight",
            ],
            "dim": hidden,
            "n_heads": heads,
            "adam_mini": {
                "output_names": ["classifier"],
                "adam_block_names": ["cls_token", "position_embeddings", "patch_embeddings"],
            },
        },
        description=f"ViT {size} ({layers}x{hidden}, patch {patch}) on {data}, batch {batch_size}",
    )
