"""The methods the risk backtest compares: the served model (and its marginals drawn independently) and three
peers a risk desk uses, historical simulation, RiskMetrics and filtered historical simulation.

Each reads one origin's `Window` and answers a `RiskForecast` of a position of gross value 1 (weights, not
shares): VaR and ES per (horizon, level) as positive fractions of that value, and a joint 1-day ensemble of the
tickers' returns for the energy and variogram scores. The peers answer 1 day and scale by the square root of
the horizon (Basel's rule); the served model forecasts every horizon itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from scipy import stats

from stockcast.runtime import copula


@dataclass(frozen=True)
class Window:
    """What a method may read at one origin: the past only."""

    closes: np.ndarray  # [W + 1, N] the tickers' closes on their common days, the origin's last
    weights: np.ndarray  # [N] shares of the gross value (negative: short)
    quantiles: np.ndarray  # [N, H, Q] the served forecasts' quantile prices from the origin
    levels: np.ndarray  # [Q] their levels
    seed: int
    tail: Mapping[str, Any] | None = None  # the marginals' bundle's fitted tails (its metadata's `risk_tail`)

    @property
    def returns(self) -> np.ndarray:
        """[W, N] simple daily returns."""
        return self.closes[1:] / self.closes[:-1] - 1


@dataclass(frozen=True)
class RiskForecast:
    var: dict[tuple[int, float], float]  # (horizon, level) -> VaR, a fraction of the gross value
    es: dict[tuple[int, float], float]
    ensemble: np.ndarray  # [M, N] joint 1-day returns


Asked = Sequence[tuple[int, float]]  # the (horizon, level) pairs a backtest scores


class Method(Protocol):
    def __call__(self, window: Window, asked: Asked, members: int) -> RiskForecast: ...


def _empirical(scenarios: np.ndarray, weights: np.ndarray,
               asked: Asked) -> tuple[dict[tuple[int, float], float], dict[tuple[int, float], float]]:
    """VaR and ES of 1-day joint return scenarios [M, N] of a position of `weights`, as the served model's are
    read off its scenarios (`copula.measures`), scaled by sqrt(horizon)."""
    levels = sorted({level for _, level in asked})
    found = copula.measures(torch.from_numpy(scenarios), torch.from_numpy(weights), levels, [0.5])
    return ({(h, level): found.var[levels.index(level)] * np.sqrt(h) for h, level in asked},
            {(h, level): found.es[levels.index(level)] * np.sqrt(h) for h, level in asked})


class Historical:
    """Historical simulation: the window's joint daily returns are the scenarios."""

    def __call__(self, window: Window, asked: Asked, members: int) -> RiskForecast:
        returns = window.returns
        return RiskForecast(*_empirical(returns, window.weights, asked), returns)


class FilteredHistorical:
    """Filtered historical simulation (Barone-Adesi et al. 1999): the window's returns over each ticker's EWMA
    volatility, rescaled by today's: the scenarios keep the days' joint shape at today's volatility."""

    def __init__(self, decay: float = copula.DECAY) -> None:
        self.decay = decay

    def __call__(self, window: Window, asked: Asked, members: int) -> RiskForecast:
        scaled, today = copula.standardized(torch.from_numpy(window.closes), self.decay)
        scenarios = np.expm1((scaled * today).numpy())
        return RiskForecast(*_empirical(scenarios, window.weights, asked), scenarios)


class RiskMetrics:
    """RiskMetrics (J.P. Morgan 1996): an EWMA covariance of log returns and normal changes of the position."""

    def __init__(self, decay: float = copula.DECAY) -> None:
        self.decay = decay

    def __call__(self, window: Window, asked: Asked, members: int) -> RiskForecast:
        returns = np.log1p(window.returns)
        covariance = np.cov(returns[:25].T, bias=True).reshape(returns.shape[1], returns.shape[1])
        for row in returns:
            covariance = self.decay * covariance + (1 - self.decay) * np.outer(row, row)
        spread = float(np.sqrt(window.weights @ covariance @ window.weights))
        var = {(h, level): stats.norm.ppf(level) * spread * np.sqrt(h) for h, level in asked}
        es = {(h, level): stats.norm.pdf(stats.norm.ppf(level)) / (1 - level) * spread * np.sqrt(h)
              for h, level in asked}
        draws = np.random.default_rng(window.seed).multivariate_normal(np.zeros(len(covariance)), covariance,
                                                                       members, method="eigh")
        return RiskForecast(var, es, np.expm1(draws))


class Served:
    """The served model: the marginals' forecasts and a copula of the window's standardized returns, drawn by the
    server's own code (`stockcast.runtime.copula.Sampler.draw`); `independent`: the same marginals, independent."""

    def __init__(self, sampler: copula.Sampler, independent: bool = False) -> None:
        self.sampler, self.independent = sampler, independent

    def __call__(self, window: Window, asked: Asked, members: int) -> RiskForecast:
        last = torch.from_numpy(window.closes[-1])
        horizons = sorted({horizon for horizon, _ in asked})
        _, changes = self.sampler.draw(torch.from_numpy(window.closes), last, torch.from_numpy(window.quantiles),
                                       torch.from_numpy(window.levels), horizons, window.seed,
                                       [window.tail] * len(last), self.independent)
        shares = torch.from_numpy(window.weights) / last  # a position of gross value 1
        var: dict[tuple[int, float], float] = {}
        es: dict[tuple[int, float], float] = {}
        for horizon, step in zip(horizons, changes, strict=True):
            levels = [level for h, level in asked if h == horizon]
            found = copula.measures(step, shares, levels, [0.5])
            var |= {(horizon, level): value for level, value in zip(levels, found.var, strict=True)}
            es |= {(horizon, level): value for level, value in zip(levels, found.es, strict=True)}
        one_day = (changes[horizons.index(1)][:members] / last).numpy()
        return RiskForecast(var, es, one_day)
