"""Image classification with a small ViT (``ViTForImageClassification``) trained from scratch.

Data: ``digits`` (scikit-learn's 8x8 digits, patch 2), ``fashion-mnist`` (28x28, fetched with
``sgdsai data fetch fashion-mnist``, patch 7) or ``synthetic`` (8x8, no files); their training,
validation and test splits and linear floors are `sgdsai_lab.tasks.image_data`'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sgdsai_lab.tasks import Task, TaskSpec, image_data, row_batches

SIZES = {  # hidden, layers, heads
    "tiny": (32, 1, 2),
    "small": (64, 2, 4),
    "base": (128, 4, 4),
}
SPEC = TaskSpec(
    data=("digits", "fashion-mnist", "synthetic"),
    sizes=tuple(SIZES),
    metric="val_accuracy",
    eval_size=image_data.EVAL_SIZE,
    floor="linear",
    floor_computed=True,
)


def build(data: str, size: str, seed: int, batch_size: int | None = None) -> Task:
    from transformers import ViTConfig, ViTForImageClassification

    hidden, layers, heads = SIZES[size]
    batch_size = batch_size or 64
    if data not in SPEC.data:
        raise ValueError(f"vit data must be one of {', '.join(SPEC.data)}, not {data!r}")
    splits = image_data.image_splits(data)
    image = splits.image_size
    patch = image // 4  # 4 x 4 patches: 8x8 images in 2x2 pixels, 28x28 in 7x7
    batch = row_batches(splits.train, batch_size, seed)

    def loss(model: torch.nn.Module, xy: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(pixel_values=xy[0]).logits, xy[1])

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=image, patch_size=patch, num_channels=1, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=2 * hidden, num_labels=10,  # type: ignore[call-arg]
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    model = ViTForImageClassification(config)
    evaluate, outcomes = image_data.evaluator(splits, lambda model, x: model(pixel_values=x).logits)
    return Task(
        model=model,
        batch=batch,
        loss=loss,
        evaluate=evaluate,
        outcomes=outcomes,
        traced=[
            "vit.embeddings.patch_embeddings.projection.weight",
            "vit.layers.0.attention.q_proj.weight",
            "vit.layers.0.layernorm_before.weight",
            "vit.layers.0.mlp.fc1.bias",
            "classifier.weight",
        ],
        info={  # Adam-mini: non-matrix tensors (tokens, conv patches) get per-coordinate Adam
            "chance_accuracy": 0.1,
            "floors": image_data.linear_floors(splits, cached=data in image_data.CACHED),
            "eval_sizes": image_data.eval_sizes(splits),
            "eval_digests": image_data.eval_digests(splits),
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
