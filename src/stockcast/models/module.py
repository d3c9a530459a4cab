"""Forecaster: the LightningModule that trains a ForecastNet in its encoded target space."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.utilities.types import OptimizerConfig, OptimizerLRSchedulerConfig
from torch import nn

from stockcast.errors import StockcastError
from stockcast.models.net import ForecastNet

LOSSES = ("pinball", "mse")
# How the pinball loss weighs a window: "even" (each window's standardized changes alike) or "volatility" (by
# sigma sqrt(h), so the loss is in log-price units, as the CRPS in % of the close that scores it).
WEIGHTINGS = ("even", "volatility")
REQUIRED_LEVELS = (0.05, 0.1, 0.5, 0.9, 0.95)  # the median and the 80 and 90 % intervals every score reads


class PinballLoss(nn.Module):
    """The pinball (quantile) loss averaged over levels, steps and samples: [B, H, Q] outputs against
    [B, H] targets, each (sample, step) optionally weighted ([B, H]). Its minimiser at each level is that
    quantile of the target's distribution."""

    levels: torch.Tensor  # a buffer (register_buffer below)

    def __init__(self, quantiles: list[float]) -> None:
        super().__init__()
        self.register_buffer("levels", torch.tensor(quantiles, dtype=torch.float32))

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        diff = targets[..., None] - outputs  # [B, H, Q], positive: the target is above the quantile
        loss = torch.maximum(self.levels * diff, (self.levels - 1) * diff).mean(-1)  # [B, H]
        return loss.mean() if weights is None else (loss * weights).sum() / weights.sum()


class Forecaster(L.LightningModule):
    """Trains a built `ForecastNet` (config node `model.net`) in its encoded target space.

    loss="pinball": the net has a quantile head at `quantiles` (the config interpolates the same list
    into `model.net.quantiles`, so the loss sizes the head); loss="mse": a point net, one value per step.
    `weighting` (WEIGHTINGS) weighs each window's pinball loss.
    `optimizer` and `scheduler` are partials (Hydra `_partial_: true`) completed with the params. The
    net's arguments are recorded once, by the pipeline, as the serving bundle's `metadata["net"]`.
    """

    def __init__(self, net: ForecastNet, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
                 loss: str = "pinball", quantiles: list[float] | None = None, weighting: str = "even") -> None:
        super().__init__()
        if loss not in LOSSES:
            raise StockcastError(f"model.loss must be one of {LOSSES}, got {loss!r}")
        head = None if net.levels is None else [round(float(level), 6) for level in net.levels]
        wanted = [round(float(level), 6) for level in quantiles or []] if loss == "pinball" else None
        if wanted is not None and not set(REQUIRED_LEVELS) <= set(wanted):  # None unless loss="pinball"
            raise StockcastError(f"model.quantiles must hold {list(REQUIRED_LEVELS)} (the median and the 80 and "
                                 f"90 % intervals), got {quantiles}")
        if head != wanted:
            raise StockcastError(f"model.loss={loss} with model.quantiles={quantiles} needs a net head of "
                                 f"{wanted or 'one point'} per step, got {head or 'one point'}")
        scaled = loss == "pinball" and net.target == "volatility"
        if weighting not in WEIGHTINGS or (weighting == "volatility" and not scaled):
            raise StockcastError(f"model.weighting must be one of {WEIGHTINGS}; volatility needs the pinball loss "
                                 f"and model.net.target=volatility, got {weighting!r}")
        self.net, self.weighting = net, weighting
        self.optimizer, self.scheduler = optimizer, scheduler
        if loss == "pinball":
            assert quantiles is not None  # the check above: they hold REQUIRED_LEVELS
            self.loss: nn.Module = PinballLoss(quantiles)
        else:
            self.loss = nn.MSELoss()

    def forward(self, prices: torch.Tensor) -> torch.Tensor:
        return self.net(prices)

    def loss_of(self, prices: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of windows [B, W, F] and their next closes [B, H], in the head's encoded space."""
        sigma = self.net.sigma(prices)  # once per batch, for the inputs and the targets
        scale = self.net.scale(prices, sigma) if self.net.target == "volatility" else None
        outputs, encoded = self.net.predict_encoded(prices, sigma), self.net.encode_target(targets, prices, scale)
        if self.weighting == "volatility":  # each window's loss in log-price units: the scale x standardized
            assert scale is not None  # weighting="volatility" needs target="volatility", which has a scale
            return self.loss(outputs, encoded, scale.detach())
        return self.loss(outputs, encoded)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        prices, targets = batch  # [B, W, F], [B, H]
        loss = self.loss_of(prices, targets)
        # sync_dist: under DDP every rank gets the mean over ranks, so all name and pick the same best checkpoint
        self.log(f"{stage}_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(prices),
                 sync_dist=True)
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> OptimizerConfig | OptimizerLRSchedulerConfig:
        optimizer = self.optimizer(params=self.parameters())
        if self.scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}
