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


class StatsForecastModel:
    """A statsforecast model (Naive, RandomWalkWithDrift, WindowAverage, AutoETS, ...) as a method.

    `model` builds a fresh, unfitted model (a Hydra partial). With `refit_every: 1` it is fit on each
    origin's history and forecasts at once; with k > 1 it is re-estimated every k origins and, in
    between, its fitted parameters are applied to the newest history (`forward`). `history` keeps only
    the last closes before the origin (None: all of them). No call ever sees data after its origin.
    """

    def __init__(self, model: Callable[[], Any], refit_every: int = 1, history: int | None = None) -> None:
        self.make_model, self.refit_every, self.history = model, refit_every, history
        self.fitted, self.calls = None, 0

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        close = history[:, 0] if self.history is None else history[-self.history:, 0]
        if self.refit_every == 1:
            return np.asarray(self.make_model().forecast(y=close, h=horizon)["mean"])
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
