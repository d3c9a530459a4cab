"""Forecaster: the LightningModule that trains a ForecastNet in its encoded target space."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from stockcast.models.net import ForecastNet


class Forecaster(L.LightningModule):
    """Wraps `ForecastNet`; the loss is MSE between encoded targets and head outputs.

    `optimizer` and `scheduler` are partials (Hydra `_partial_: true`) completed with the params.
    """

    def __init__(self, features: list[str], horizon: int, optimizer: Callable[..., torch.optim.Optimizer],
                 hidden: int = 64, layers: int = 2, dropout: float = 0.0, target: str = "relative",
                 scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.net = ForecastNet(features=list(features), hidden=hidden, layers=layers, dropout=dropout,
                               horizon=horizon, target=target)
        self.optimizer, self.scheduler = optimizer, scheduler
        self.loss = nn.MSELoss()

    def net_kwargs(self) -> dict:
        """The constructor arguments of the net, as stored in the serving bundle."""
        return {key: self.hparams[key] for key in ("features", "hidden", "layers", "dropout", "horizon", "target")}

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
