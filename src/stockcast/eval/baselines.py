"""Forecasting methods for the backtest. Each sees only the history up to its origin.

A method is a callable `(history [T, F] oldest first, horizon) -> [horizon]` closes; column 0 of
the history is the close. The backtest hands each call `values[:origin + 1]` and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

Method = Callable[[np.ndarray, int], np.ndarray]


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last close, held flat."""
    return np.full(horizon, history[-1, 0])


def drift(history: np.ndarray, horizon: int) -> np.ndarray:
    """Random walk with drift: the last close plus the average daily change of the whole history."""
    close = history[:, 0]
    slope = (close[-1] - close[0]) / (len(close) - 1)
    return close[-1] + slope * np.arange(1, horizon + 1)


class MovingAverage:
    """The mean of the last `window` closes, held flat."""

    def __init__(self, window: int = 20) -> None:
        self.window = window

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        return np.full(horizon, history[-self.window:, 0].mean())


class StatsForecastModel:
    """A statsforecast model (e.g. AutoETS) refit every `refit_every` origins on the last
    `history` closes before the origin; in between, its fitted parameters are applied to the
    newest history (`forward`), so no call ever sees data after its origin."""

    def __init__(self, model: Callable[[], Any], refit_every: int = 5, history: int = 750) -> None:
        self.make_model, self.refit_every, self.history = model, refit_every, history
        self.fitted, self.calls = None, 0

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        close = history[-self.history:, 0]
        if self.calls % self.refit_every == 0:
            self.fitted = self.make_model().fit(close)
        self.calls += 1
        return np.asarray(self.fitted.forward(y=close, h=horizon)["mean"])


class NetMethod:
    """A trained ForecastNet: the last `window` rows of the history in, `horizon` closes out."""

    def __init__(self, net: nn.Module, window: int) -> None:
        self.net, self.window = net.eval(), window

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        prices = torch.tensor(history[None, -self.window:], dtype=torch.float32)  # [1, W, F]
        with torch.no_grad():
            return self.net(prices)[0, :horizon].double().numpy()


class MeanOf:
    """The mean forecast of several methods, e.g. nets trained with different seeds."""

    def __init__(self, methods: list[Method]) -> None:
        self.methods = methods

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        return np.mean([method(history, horizon) for method in self.methods], axis=0)
