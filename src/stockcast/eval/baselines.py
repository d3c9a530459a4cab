"""Forecasting methods for the backtest, and the probabilistic baselines training scores against.

A method is a callable `(history [T, F] oldest first, horizon) -> [horizon]` closes, or
`[horizon, Q]` quantile closes at the backtest's levels; column 0 of the history is the close. The
backtest hands each call `values[:origin + 1]` and nothing else.

The window baselines (`EmpiricalNaive`, `Ewma`) fit on windows of closes `[N, C]` with their next
`horizon` closes `[N, H]`, the shape the data module makes, so training fits them on its training
windows and the backtest (`Refit`) on all windows of the history so far.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from stockcast.data.datamodule import make_windows
from stockcast.models.net import ewma_variance

Method = Callable[[np.ndarray, int], np.ndarray]


class StatsForecastModel:
    """A statsforecast model (Naive, RandomWalkWithDrift, WindowAverage, AutoETS, ...) as a method.

    `model` builds a fresh, unfitted model (a Hydra partial). With `refit_every: 1` it is fit on each
    origin's history and forecasts at once; with k > 1 it is re-estimated every k origins and, in
    between, its fitted parameters are applied to the newest history (`forward`). `history` keeps only
    the last closes before the origin (None: all of them). No call ever sees data after its origin.
    `levels`: quantile levels to answer with, from the model's own prediction intervals (level l < 0.5
    is the lower end of the central 100 (1 - 2l) % interval); None answers the mean alone.
    """

    def __init__(self, model: Callable[[], Any], refit_every: int = 1, history: int | None = None,
                 levels: list[float] | None = None) -> None:
        self.make_model, self.refit_every, self.history = model, refit_every, history
        self.levels = levels
        self.fitted, self.calls = None, 0

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        close = history[:, 0] if self.history is None else history[-self.history:, 0]
        coverages = {level: _coverage(level) for level in self.levels or []}  # 0.05 -> 90 (the lower end of 90 %)
        kwargs = {"level": sorted(set(coverages.values()) - {0})} if self.levels else {}
        if self.refit_every == 1:
            answer = self.make_model().forecast(y=close, h=horizon, **kwargs)
        else:
            if self.calls % self.refit_every == 0:
                self.fitted = self.make_model().fit(close)
            self.calls += 1
            answer = self.fitted.forward(y=close, h=horizon, **kwargs)
        if self.levels is None:
            return np.asarray(answer["mean"])
        columns = [answer["mean"] if coverages[level] == 0 else
                   answer[f"{'lo' if level < 0.5 else 'hi'}-{coverages[level]}"] for level in self.levels]
        return np.sort(np.stack(columns, axis=-1), axis=-1)  # [H, Q]


def _coverage(level: float) -> int | float:
    """The central interval whose end is quantile `level`, in percent as statsforecast names it (0.05 -> 90)."""
    coverage = round(abs(200 * level - 100), 6)
    return int(coverage) if coverage == int(coverage) else coverage


class NetMethod:
    """A trained ForecastNet: the last `context` rows of the history in, `horizon` closes (or [H, Q]) out."""

    def __init__(self, net: nn.Module, context: int) -> None:
        self.net, self.context = net.eval(), context

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        prices = torch.tensor(history[None, -self.context:], dtype=torch.float32)  # [1, C, F]
        with torch.no_grad():
            return self.net(prices)[0, :horizon].double().numpy()


class MeanOf:
    """The mean forecast of several methods, e.g. nets trained with different seeds (quantile by quantile
    for quantile forecasts: the average of the members' quantile functions)."""

    def __init__(self, methods: list[Method]) -> None:
        self.methods = methods

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        return np.mean([method(history, horizon) for method in self.methods], axis=0)


def _sigma(closes: np.ndarray, initial: float) -> np.ndarray:
    """[N, C] closes -> [N] daily EWMA volatility at the last close, as ForecastNet computes it."""
    returns = torch.from_numpy(np.diff(np.log(closes), axis=1))
    return ewma_variance(returns, torch.tensor(initial, dtype=returns.dtype)).clamp_min(1e-12).sqrt().numpy()


class EmpiricalNaive:
    """The last close times the quantiles of the h-step log changes seen in the fitting windows: "no
    forecast" as a distribution, as wide in a calm month as in a crash. The reference of `skill_crps`."""

    def __init__(self, levels: list[float]) -> None:
        self.levels = np.asarray(levels, dtype=float)

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> EmpiricalNaive:
        self.changes = np.quantile(np.log(targets / inputs[:, -1:]), self.levels, axis=0).T  # [H, Q]
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return inputs[:, -1, None, None] * np.exp(self.changes)  # [N, H, Q]


class Ewma:
    """RiskMetrics: sigma = the EWMA (lambda 0.94) volatility of daily log returns at the origin, times
    sqrt(h) and the quantiles of the standardized h-step changes log(c[t+h] / c[t]) / (sigma sqrt(h))
    seen in the fitting windows. Each EWMA starts from the windows' median variance, as the net's does."""

    def __init__(self, levels: list[float]) -> None:
        self.levels = np.asarray(levels, dtype=float)

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> Ewma:
        returns = np.diff(np.log(inputs), axis=1)
        self.initial = float(np.median(_sigma(inputs, float(np.mean(returns**2))) ** 2))
        steps = np.sqrt(np.arange(1, targets.shape[1] + 1))
        z = np.log(targets / inputs[:, -1:]) / (_sigma(inputs, self.initial)[:, None] * steps)  # [N, H]
        self.z = np.quantile(z, self.levels, axis=0).T  # [H, Q]
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        steps = np.sqrt(np.arange(1, self.z.shape[0] + 1))[:, None]  # [H, 1]
        scale = _sigma(inputs, self.initial)[:, None, None] * steps  # [N, H, 1]
        return inputs[:, -1, None, None] * np.exp(self.z * scale)  # [N, H, Q]


class Refit:
    """A window baseline as a backtest method: fit on every window of the closes so far, then forecast
    from the last `context` of them."""

    def __init__(self, baseline: EmpiricalNaive | Ewma, context: int) -> None:
        self.baseline, self.context = baseline, context

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        inputs, targets = make_windows(history[:, :1], self.context, horizon)
        return self.baseline.fit(inputs[..., 0], targets).predict(history[None, -self.context:, 0])[0]


class Garch:
    """GARCH(1,1) on daily log returns (the `arch` package), normal quantiles of the summed h-step
    variance and mean. Re-estimated every `refit_every` origins on the last `history` returns; in
    between, the fitted parameters are applied to the newest returns."""

    def __init__(self, levels: list[float], refit_every: int = 20, history: int = 1000) -> None:
        self.z = stats.norm.ppf(np.asarray(levels, dtype=float))  # [Q]
        self.refit_every, self.history = refit_every, history
        self.params, self.calls = None, 0

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        from arch import arch_model

        returns = 100 * np.diff(np.log(history[-self.history - 1:, 0]))  # percent: arch's optimiser prefers it
        model = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
        if self.calls % self.refit_every == 0:
            self.params = model.fit(disp="off").params
        self.calls += 1
        forecast = model.fix(self.params).forecast(horizon=horizon, reindex=False)
        mean = np.cumsum(forecast.mean.to_numpy()[0]) / 100  # [H] of the h-step log change
        spread = np.sqrt(np.cumsum(forecast.variance.to_numpy()[0])) / 100
        return history[-1, 0] * np.exp(mean[:, None] + spread[:, None] * self.z)  # [H, Q]
