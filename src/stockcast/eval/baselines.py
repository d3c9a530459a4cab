"""Forecasting methods for the backtest, and the probabilistic baselines training scores against.

A method is a callable `(history [T, F] oldest first, horizon) -> [horizon]` closes, or
`[horizon, Q]` quantile closes at the backtest's levels. The history's first four columns are the days'
bars (Close, Open, High, Low: `BARS`), then the model's other features; the backtest hands each call
`values[:origin + 1]` and nothing else.

The window baselines (`EmpiricalNaive`, `Ewma`, `Har`) fit on windows of bars `[N, C, 4]` with their next
`horizon` closes `[N, H]`, the shape the data module makes, so training fits them on its training
windows and the backtest (`Refit`) on all windows of the history so far. Their daily variances are the
served net's own (`stockcast.models.net.daily_variance`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from stockcast.data.datamodule import make_windows
from stockcast.models.net import BARS, EWMA_LAMBDA, FLOOR, daily_variance, ewma_variance
from stockcast.runtime.metric_keys import EWMA, HAR, NAIVE_EMPIRICAL, PANEL_HAR, RANGE_EWMA

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
        self.fitted: Any | None = None  # the model fitted last (refit_every > 1)
        self.calls = 0

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
            assert self.fitted is not None  # fitted on the first call
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


def history_columns(features: list[str]) -> list[str]:
    """The columns of a backtest's history: the bars, then the model's other features."""
    return list(BARS) + [name for name in features if name not in BARS]


class NetMethod:
    """A trained ForecastNet: the last `context` rows of its `features` in, `horizon` closes (or [H, Q]) out."""

    def __init__(self, net: nn.Module, context: int, features: list[str]) -> None:
        self.net, self.context = net.eval(), context
        self.columns = [history_columns(features).index(name) for name in features]

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        prices = torch.tensor(history[None, -self.context:, self.columns], dtype=torch.float32)  # [1, C, F]
        with torch.no_grad():
            return self.net(prices)[0, :horizon].double().numpy()


class MeanOf:
    """The mean forecast of several methods, e.g. nets trained with different seeds (quantile by quantile
    for quantile forecasts: the average of the members' quantile functions)."""

    def __init__(self, methods: list[Method]) -> None:
        self.methods = methods

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        return np.mean([method(history, horizon) for method in self.methods], axis=0)


def _variances(bars: np.ndarray, estimator: str) -> torch.Tensor:
    """[N, C, 4] bars -> [N, C - 1] daily variances, as ForecastNet computes them."""
    return daily_variance(torch.from_numpy(np.asarray(bars, dtype=np.float64)), estimator)


def _sigma(variances: torch.Tensor, initial: float, decay: float) -> np.ndarray:
    """[N, C - 1] daily variances -> [N] EWMA volatility at the last row, as ForecastNet computes it."""
    start = torch.tensor(initial, dtype=variances.dtype)
    return ewma_variance(variances, start, decay).clamp_min(1e-12).sqrt().numpy()


class EmpiricalNaive:
    """The last close times the quantiles of the h-step log changes seen in the fitting windows: "no
    forecast" as a distribution, as wide in a calm month as in a crash. The reference of `skill_crps`."""

    def __init__(self, levels: list[float]) -> None:
        self.levels = np.asarray(levels, dtype=float)

    def fit(self, bars: np.ndarray, targets: np.ndarray) -> EmpiricalNaive:
        self.changes = np.quantile(np.log(targets / bars[:, -1, :1]), self.levels, axis=0).T  # [H, Q]
        return self

    def predict(self, bars: np.ndarray) -> np.ndarray:
        return bars[:, -1, 0, None, None] * np.exp(self.changes)  # [N, H, Q]


class Scaled:
    """sigma_h at the origin times sqrt(h) times the quantiles of the standardized h-step changes
    log(c[t+h] / c[t]) / (sigma_h sqrt(h)) seen in the fitting windows: the volatility baselines differ
    only in `_fit_sigma` and `_sigma` ([N, C, 4] bars -> [N, H] daily volatility per step). A window's sigma is
    at least sqrt(FLOOR) times the fitting windows' median: months without a range (a frozen quote) would
    otherwise standardize changes by almost nothing and put the quantiles out of floating-point range."""

    def __init__(self, levels: list[float]) -> None:
        self.levels = np.asarray(levels, dtype=float)

    def fit(self, bars: np.ndarray, targets: np.ndarray) -> Scaled:
        self._fit_sigma(bars, targets)
        sigma = self._sigma(bars, targets.shape[1])  # [N, H]
        self.least = max(np.sqrt(FLOOR) * float(np.median(sigma)), 1e-6)
        steps = np.sqrt(np.arange(1, targets.shape[1] + 1))
        z = np.log(targets / bars[:, -1, :1]) / (np.maximum(sigma, self.least) * steps)  # [N, H]
        self.z = np.quantile(z, self.levels, axis=0).T  # [H, Q]
        return self

    def predict(self, bars: np.ndarray) -> np.ndarray:
        steps = np.sqrt(np.arange(1, self.z.shape[0] + 1))  # [H]
        scale = (np.maximum(self._sigma(bars, len(steps)), self.least) * steps)[..., None]  # [N, H, 1]
        return bars[:, -1, 0, None, None] * np.exp(self.z * scale)  # [N, H, Q]

    def _fit_sigma(self, bars: np.ndarray, targets: np.ndarray) -> None:
        raise NotImplementedError

    def _sigma(self, bars: np.ndarray, horizon: int) -> np.ndarray:
        raise NotImplementedError


class Ewma(Scaled):
    """RiskMetrics: sigma = the EWMA (`decay`, 0.94) of the daily variances at the origin, the same for every
    step. `estimator="close"`: squared close-to-close log returns (RiskMetrics itself); "garman_klass",
    "parkinson", "rogers_satchell": the day's range (the range EWMA). Each EWMA starts from the fitting
    windows' median variance, as the net's does."""

    def __init__(self, levels: list[float], estimator: str = "close", decay: float = EWMA_LAMBDA) -> None:
        super().__init__(levels)
        self.estimator, self.decay = estimator, decay

    def _fit_sigma(self, bars: np.ndarray, targets: np.ndarray) -> None:
        variances = _variances(bars, self.estimator)
        self.initial = float(np.median(_sigma(variances, float(variances.mean()), self.decay) ** 2))

    def _sigma(self, bars: np.ndarray, horizon: int) -> np.ndarray:
        sigma = _sigma(_variances(bars, self.estimator), self.initial, self.decay)  # [N]
        return np.repeat(sigma[:, None], horizon, axis=1)


class Har(Scaled):
    """HAR (Corsi 2009) on log range variance: per step h, one least-squares fit of the log mean daily variance
    of the next h days on the log mean variances of the last 1, 5 and 22 days (each floored at FLOOR times the
    fitting windows' median, so a day with no range has a log). The next days' variances are read off the
    later fitting windows, which hold them (consecutive windows of one ticker)."""

    def __init__(self, levels: list[float], estimator: str = "garman_klass",
                 spans: tuple[int, ...] = (1, 5, 22)) -> None:
        super().__init__(levels)
        self.estimator, self.spans = estimator, tuple(spans)

    def _design(self, variances: np.ndarray) -> np.ndarray:
        """[N, C - 1] -> [N, 1 + spans] regressors."""
        means = [np.log(np.maximum(variances[:, -n:].mean(axis=1), self.floor)) for n in self.spans]
        return np.stack([np.ones(len(variances)), *means], axis=1)

    def regressions(self, bars: np.ndarray, horizon: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per step h = 1..horizon, from consecutive windows of one ticker: the regressors of windows 0..N-h-1
        [N - h, 1 + spans] and the log mean variance of each one's next h days [N - h]. Sets the ticker's floor."""
        variances = _variances(bars, self.estimator).numpy()  # [N, C - 1]
        self.floor = max(FLOOR * float(np.median(variances)), 1e-12)  # no log of zero, even on a flat series
        design = self._design(variances)
        for step in range(1, horizon + 1):
            ahead = np.log(np.maximum(variances[step:, -step:].mean(axis=1), self.floor))  # window i + h's last h days
            yield design[:-step], ahead

    def _fit_sigma(self, bars: np.ndarray, targets: np.ndarray) -> None:
        self.coefficients = np.stack([np.linalg.lstsq(design, ahead, rcond=None)[0]
                                      for design, ahead in self.regressions(bars, targets.shape[1])], axis=1)

    def _sigma(self, bars: np.ndarray, horizon: int) -> np.ndarray:
        design = self._design(_variances(bars, self.estimator).numpy())
        return np.sqrt(np.exp(design @ self.coefficients))  # [N, H]


class PanelHar(Har):
    """HAR with its slopes pooled over a panel of tickers and a level of each ticker's own (Bollerslev, Hood,
    Huss and Pedersen 2018): `pooled` estimates the slopes [spans, H] once, within tickers (each ticker's
    regressors and targets less their means: the fixed-effects regression), on the training tickers' training
    windows; `fit` on one ticker's windows keeps them and sets that ticker's intercept per step to its mean log
    variance ahead less the slopes times its mean regressors. A ticker the slopes never saw fits its level the
    same way, from its own history up to the origin."""

    def __init__(self, levels: list[float], slopes: list[list[float]], estimator: str = "garman_klass",
                 spans: tuple[int, ...] = (1, 5, 22)) -> None:
        super().__init__(levels, estimator, spans)
        self.slopes = np.asarray(slopes, dtype=float)  # [spans, H]
        if self.slopes.shape[0] != len(self.spans):
            raise ValueError(f"slopes need one row per span {self.spans}, got shape {self.slopes.shape}")

    @classmethod
    def pooled(cls, levels: list[float], panel: Iterable[np.ndarray], horizon: int, estimator: str = "garman_klass",
               spans: tuple[int, ...] = (1, 5, 22)) -> PanelHar:
        """The slopes of every ticker's consecutive fitting windows [N, C, 4] in `panel`, pooled."""
        width = len(spans)
        gram, moment = np.zeros((horizon, width, width)), np.zeros((horizon, width))
        reader = Har(levels, estimator, spans)
        for bars in panel:
            for step, (design, ahead) in enumerate(reader.regressions(bars, horizon)):
                centered = design[:, 1:] - design[:, 1:].mean(axis=0)
                gram[step] += centered.T @ centered
                moment[step] += centered.T @ (ahead - ahead.mean())
        slopes = np.stack([np.linalg.lstsq(gram[step], moment[step], rcond=None)[0] for step in range(horizon)], axis=1)
        return cls(levels, slopes.tolist(), estimator, spans)

    def _fit_sigma(self, bars: np.ndarray, targets: np.ndarray) -> None:
        intercepts = [ahead.mean() - design[:, 1:].mean(axis=0) @ self.slopes[:, step]
                      for step, (design, ahead) in enumerate(self.regressions(bars, targets.shape[1]))]
        self.coefficients = np.vstack([intercepts, self.slopes])  # [1 + spans, H]


def window_baselines(levels: list[float], panel_slopes: list[list[float]] | None = None
                     ) -> dict[str, EmpiricalNaive | Scaled]:
    """The baselines training and the monitor score every model against, by metric prefix: naive-empirical
    (the reference of skill_crps), RiskMetrics, the range EWMA (Garman-Klass), HAR and, given slopes pooled
    over a panel of tickers (`PanelHar.pooled`), panel HAR."""
    baselines: dict[str, EmpiricalNaive | Scaled] = {
        NAIVE_EMPIRICAL.prefix: EmpiricalNaive(levels), EWMA.prefix: Ewma(levels),
        RANGE_EWMA.prefix: Ewma(levels, "garman_klass"), HAR.prefix: Har(levels)}
    if panel_slopes is not None:
        baselines[PANEL_HAR.prefix] = PanelHar(levels, panel_slopes)
    return baselines


class Refit:
    """A window baseline as a backtest method: fit on every window of the bars so far, then forecast
    from the last `context` of them."""

    def __init__(self, baseline: EmpiricalNaive | Scaled, context: int) -> None:
        self.baseline, self.context = baseline, context

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        bars = history[:, :len(BARS)]
        inputs, targets = make_windows(bars, self.context, horizon)
        return self.baseline.fit(inputs, targets).predict(bars[None, -self.context:])[0]


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
