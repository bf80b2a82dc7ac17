"""SGD-SaI in a PyTorch Lightning module: ``configure_optimizers`` is the only SGD-SaI-specific part.

Lightning's gradient clipping, accumulation (``accumulate_grad_batches``) and 16-bit precision all
work unchanged: the g-SNR is measured once, from the first (clipped, accumulated, unscaled)
gradient, and is scale-invariant. A step that the fp16 scaler skips (inf/NaN) measures nothing.

    pip install sgdsai pytorch-lightning
    python examples/lightning_module.py
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from torch import nn

from sgdsai import SGDSaI
from sgdsai.param_groups import decay_groups

logger = logging.getLogger(__name__)


class TinyRegressor(pl.LightningModule):
    def __init__(self, lr: float = 1.0, weight_decay: float = 0.01, steps: int = 100) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = SGDSaI(decay_groups(self, self.hparams.weight_decay), self.hparams.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_train_end(self) -> None:
        scales = self.optimizers().optimizer.gsnr()  # by parameter name, thanks to decay_groups
        logger.info("g-SNR scales: %s", {name: round(s, 3) for name, s in scales.items()})


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = x.sin().sum(dim=1, keepdim=True)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    steps = 100
    trainer = pl.Trainer(
        max_steps=steps,
        gradient_clip_val=1.0,
        accumulate_grad_batches=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(TinyRegressor(steps=steps), loader)


if __name__ == "__main__":
    main()
