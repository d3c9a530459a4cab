"""ForecastNet: raw prices in, raw prices out. Imports torch only: this file ships in the archive.

Scaling and the target transform are buffers, so the module alone turns a price window into a
price forecast; training (via `Forecaster`) and serving run the same computation.
"""

from __future__ import annotations

import torch
from torch import nn

PRICE_FEATURES = ("Open", "High", "Low", "Close", "Adj Close")
TARGETS = ("relative", "level")


class ForecastNet(nn.Module):
    """LSTM over a window of prices; a linear head emits all `horizon` steps at once.

    target="relative": the net predicts each step's change relative to the window's last close
    (in units of the training changes' std); price features enter relative to that close too.
    target="level": the net predicts min-max scaled closes; every feature enters min-max scaled.
    Non-price features (Volume) are always min-max scaled. Feature 0 is the close.
    """

    def __init__(self, features: list[str], hidden: int = 64, layers: int = 2, dropout: float = 0.0,
                 horizon: int = 10, target: str = "relative") -> None:
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if not features or features[0] != "Close":
            raise ValueError(f"features must start with Close, got {features}")
        self.target, self.horizon = target, horizon
        n_features = len(features)
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, horizon)
        is_price = [name in PRICE_FEATURES for name in features]
        self.register_buffer("is_price", torch.tensor(is_price, dtype=torch.bool))
        self.register_buffer("feature_min", torch.zeros(n_features))
        self.register_buffer("feature_max", torch.ones(n_features))
        self.register_buffer("change_std", torch.ones(()))

    def set_scaler(self, feature_min: list[float], feature_max: list[float], change_std: float) -> None:
        """Copy training-period statistics into the buffers (saved with the weights)."""
        self.feature_min.copy_(torch.tensor(feature_min))
        self.feature_max.copy_(torch.tensor(feature_max))
        self.change_std.fill_(change_std)

    def _span(self) -> torch.Tensor:
        return (self.feature_max - self.feature_min).clamp_min(1e-8)

    def encode_inputs(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, W, F] raw -> [B, W, F] network inputs."""
        scaled = (prices - self.feature_min) / self._span()  # [B, W, F]
        if self.target == "level":
            return scaled
        last_close = prices[:, -1:, :1]  # [B, 1, 1]
        relative = (prices / last_close - 1) / self.change_std  # [B, W, F]
        return torch.where(self.is_price, relative, scaled)

    def encode_target(self, targets: torch.Tensor, prices: torch.Tensor) -> torch.Tensor:
        """[B, H] raw closes -> [B, H] in the space the head predicts."""
        if self.target == "level":
            return (targets - self.feature_min[0]) / self._span()[0]
        return (targets / prices[:, -1, :1] - 1) / self.change_std

    def decode(self, outputs: torch.Tensor, prices: torch.Tensor) -> torch.Tensor:
        """[B, H] head outputs -> [B, H] raw closes."""
        if self.target == "level":
            return outputs * self._span()[0] + self.feature_min[0]
        return prices[:, -1, :1] * (1 + outputs * self.change_std)

    def predict_encoded(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, W, F] raw prices -> [B, H] head outputs (the training loss compares these)."""
        sequence, _ = self.lstm(self.encode_inputs(prices))  # [B, W, hidden]
        return self.head(sequence[:, -1])  # [B, H]

    def forward(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, W, F] raw prices (oldest first) -> [B, H] forecast closes."""
        return self.decode(self.predict_encoded(prices), prices)
