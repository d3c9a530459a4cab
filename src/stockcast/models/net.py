"""ForecastNet: raw prices in, raw prices (or quantile prices) out. Imports torch only: this file ships in the archive.

Scaling, the volatility estimate's starting point and the target transform are buffers, so the module
alone turns a price window into a forecast; training (via `Forecaster`) and serving run the same computation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

PRICE_FEATURES = ("Open", "High", "Low", "Close", "Adj Close")
TARGETS = ("volatility", "relative", "level")
EWMA_LAMBDA = 0.94  # RiskMetrics' daily decay: the starting variance weighs 0.94**n after n returns


def ewma_variance(returns: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """[B, N] daily log returns (oldest first) -> [B] RiskMetrics variance after the last one.

    v_n = lambda v_{n-1} + (1 - lambda) r_n^2 from v_0 = `initial`, written as one weighted sum so
    that any N costs one pass and no weight overflows.
    """
    count = returns.shape[-1]
    powers = EWMA_LAMBDA ** torch.arange(count - 1, -1, -1, dtype=returns.dtype, device=returns.device)
    return EWMA_LAMBDA ** count * initial + (1 - EWMA_LAMBDA) * (returns.square() * powers).sum(-1)


class ForecastNet(nn.Module):
    """LSTM over the last `window` rows of prices; a linear head emits all `horizon` steps at once.

    target="volatility": the LSTM reads the window's daily log returns divided by sigma, the EWMA
    volatility at the origin over the last `context` closes (started from the training median
    variance, so fewer closes still work), plus log(sigma / training median sigma); the head predicts
    log(close[t+h] / close[t]) / (sigma sqrt(h)). Other price features enter as log(feature / close) / sigma.
    target="relative": the head predicts each step's change relative to the window's last close (in
    units of the training changes' std); price features enter relative to that close too.
    target="level": the head predicts min-max scaled closes; every feature enters min-max scaled.
    Non-price features (Volume) are always min-max scaled. Feature 0 is the close.

    quantiles=None gives a point net ([B, H] out); levels in (0, 1) give [B, H, Q] quantile prices,
    non-crossing by construction: the lowest level plus cumulative softplus increments.
    """

    def __init__(self, features: list[str], hidden: int = 64, layers: int = 2, dropout: float = 0.0,
                 horizon: int = 10, target: str = "volatility", quantiles: list[float] | None = None,
                 window: int | None = None, context: int | None = None) -> None:
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if not features or features[0] != "Close":
            raise ValueError(f"features must start with Close, got {features}")
        if quantiles is not None and not (quantiles and list(quantiles) == sorted(set(quantiles))
                                          and quantiles[0] > 0 and quantiles[-1] < 1):
            raise ValueError(f"quantiles must be increasing levels in (0, 1), got {quantiles}")
        if quantiles is not None and 0.5 not in quantiles:
            raise ValueError(f"quantiles must hold 0.5: the point forecast is the median, got {quantiles}")
        if window is not None and window < (2 if target == "volatility" else 1):
            raise ValueError(f"window too short for target {target!r}: {window}")
        if context is not None and context < (window or 2):
            raise ValueError(f"context ({context}) must cover the window ({window}) and at least 2 closes")
        self.target, self.horizon, self.window, self.context = target, horizon, window, context
        n_features = len(features)
        self.lstm = nn.LSTM(n_features + (target == "volatility"), hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, horizon * len(quantiles or [None]))
        is_price = [name in PRICE_FEATURES for name in features]
        self.register_buffer("is_price", torch.tensor(is_price, dtype=torch.bool))
        self.register_buffer("feature_min", torch.zeros(n_features))
        self.register_buffer("feature_max", torch.ones(n_features))
        self.register_buffer("change_std", torch.ones(()))
        self.register_buffer("median_variance", torch.ones(()))
        self.register_buffer("levels", None if quantiles is None else torch.tensor(quantiles))
        if quantiles is not None:
            self._start_at_normal_quantiles()

    def _start_at_normal_quantiles(self) -> None:
        """Head bias = standard normal quantiles: an untrained volatility net starts as EWMA x normal."""
        normal = torch.special.ndtri(self.levels.double())  # [Q]
        steps = (normal[1:] - normal[:-1]).expm1().log()  # softplus^-1 of the gaps
        with torch.no_grad():
            self.head.bias.copy_(torch.cat([normal[:1], steps]).float().repeat(self.horizon))

    def set_scaler(self, feature_min: list[float], feature_max: list[float], change_std: float,
                   median_variance: float | None = None) -> None:
        """Copy training-period statistics into the buffers (saved with the weights).

        median_variance: the median over the training rows of the EWMA variance of daily log returns
        (needed by target="volatility"; None keeps the current value).
        """
        self.feature_min.copy_(torch.tensor(feature_min))
        self.feature_max.copy_(torch.tensor(feature_max))
        self.change_std.fill_(change_std)
        if median_variance is not None:
            self.median_variance.fill_(median_variance)

    def _span(self) -> torch.Tensor:
        return (self.feature_max - self.feature_min).clamp_min(1e-8)

    def _rows(self, prices: torch.Tensor) -> torch.Tensor:
        """The last `window` rows, the ones the LSTM reads."""
        if self.window is not None and prices.shape[1] < self.window:
            raise ValueError(f"need at least {self.window} rows of prices, got {prices.shape[1]}")
        return prices if self.window is None else prices[:, -self.window:]

    def volatility(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, L, F] raw prices -> [B] daily EWMA volatility at the last close, over the last `context` closes."""
        closes = prices[:, -(self.context or prices.shape[1]):, 0].log()  # [B, C]
        variance = ewma_variance(closes[:, 1:] - closes[:, :-1], self.median_variance)  # [B]
        return variance.clamp_min(1e-12).sqrt()

    def _step_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        """[B] sigma -> [B, H]: sigma sqrt(h), the spread of each step's log change in encoded units."""
        steps = torch.arange(1, self.horizon + 1, dtype=sigma.dtype, device=sigma.device)
        return sigma[:, None] * steps.sqrt()

    def encode_inputs(self, prices: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L, F] raw -> [B, W, F] network inputs ([B, W - 1, F + 1] for target="volatility").

        `sigma` ([B], target="volatility"): `volatility(prices)` when the caller has it already."""
        rows = self._rows(prices)
        scaled = (rows - self.feature_min) / self._span()  # [B, W, F]
        if self.target == "level":
            return scaled
        if self.target == "relative":
            relative = (rows / rows[:, -1:, :1] - 1) / self.change_std  # [B, W, F]
            return torch.where(self.is_price, relative, scaled)
        sigma = (self.volatility(prices) if sigma is None else sigma)[:, None, None]  # [B, 1, 1]
        logs = torch.where(self.is_price, rows, 1.0).log()  # [B, W, F]; non-price columns unused
        returns = (logs[:, 1:, :1] - logs[:, :-1, :1]) / sigma  # [B, W - 1, 1]
        spreads = torch.where(self.is_price, (logs - logs[..., :1]) / sigma, scaled)[:, 1:, 1:]  # [B, W - 1, F - 1]
        scale = (sigma / self.median_variance.sqrt()).log().expand(-1, returns.shape[1], 1)  # [B, W - 1, 1]
        return torch.cat([returns, spreads, scale], dim=-1)

    def encode_target(self, targets: torch.Tensor, prices: torch.Tensor,
                      sigma: torch.Tensor | None = None) -> torch.Tensor:
        """[B, H] raw closes -> [B, H] in the space the head predicts."""
        if self.target == "level":
            return (targets - self.feature_min[0]) / self._span()[0]
        last_close = prices[:, -1, :1]  # [B, 1]
        if self.target == "relative":
            return (targets / last_close - 1) / self.change_std
        return (targets / last_close).log() / self._step_scale(self.volatility(prices) if sigma is None else sigma)

    def decode(self, outputs: torch.Tensor, prices: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """[B, H] or [B, H, Q] head outputs -> raw closes of the same shape (monotone in the outputs)."""
        trail = (1,) * (outputs.dim() - 2)  # a level axis broadcasts against per-step scales
        if self.target == "level":
            return outputs * self._span()[0] + self.feature_min[0]
        last_close = prices[:, -1, :1].reshape(-1, 1, *trail)  # [B, 1(, 1)]
        if self.target == "relative":
            return last_close * (1 + outputs * self.change_std)
        scale = self._step_scale(self.volatility(prices) if sigma is None else sigma)  # [B, H]
        return last_close * (outputs * scale.reshape(*outputs.shape[:2], *trail)).exp()

    def predict_encoded(self, prices: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L, F] raw prices -> [B, H] (or [B, H, Q]) head outputs: the training loss compares these."""
        sequence, _ = self.lstm(self.encode_inputs(prices, sigma))  # [B, W, hidden]
        outputs = self.head(sequence[:, -1])  # [B, H * Q]
        if self.levels is None:
            return outputs
        outputs = outputs.reshape(len(outputs), self.horizon, -1)  # [B, H, Q]
        steps = F.softplus(outputs[..., 1:]).cumsum(-1)  # [B, H, Q - 1], non-decreasing
        return torch.cat([outputs[..., :1], outputs[..., :1] + steps], dim=-1)

    def forward(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, L, F] raw prices (oldest first, L >= window) -> [B, H] closes or [B, H, Q] quantile closes."""
        sigma = self.sigma(prices)  # once for inputs and decoding
        return self.decode(self.predict_encoded(prices, sigma), prices, sigma)

    def sigma(self, prices: torch.Tensor) -> torch.Tensor | None:
        """`volatility(prices)` for target="volatility" (the only form that reads it), else None."""
        return self.volatility(prices) if self.target == "volatility" else None

