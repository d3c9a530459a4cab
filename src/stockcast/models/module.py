"""Forecaster: the LightningModule that trains a ForecastNet in its encoded target space."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from stockcast.models.net import ForecastNet


class Forecaster(L.LightningModule):
    """Trains a built `ForecastNet` (config node `model.net`); the loss is MSE between encoded targets
    and head outputs.

    `optimizer` and `scheduler` are partials (Hydra `_partial_: true`) completed with the params. The
    net's arguments are recorded once, by the pipeline, as the serving bundle's `metadata["net"]`.
    """

    def __init__(self, net: ForecastNet, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None) -> None:
        super().__init__()
        self.net = net
        self.optimizer, self.scheduler = optimizer, scheduler
        self.loss = nn.MSELoss()

    def forward(self, prices: torch.Tensor) -> torch.Tensor:
        return self.net(prices)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        prices, targets = batch  # [B, W, F], [B, H]
        loss = self.loss(self.net.predict_encoded(prices), self.net.encode_target(targets, prices))
        self.log(f"{stage}_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(prices))
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> dict:
        optimizer = self.optimizer(params=self.parameters())
        if self.scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}
