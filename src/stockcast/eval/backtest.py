"""Walk-forward backtest: every method forecasts from every origin of the test period."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stockcast.data.datamodule import bars_of
from stockcast.eval.baselines import Method, history_columns
from stockcast.metrics import Quantiles
from stockcast.models.net import BARS
from stockcast.progress import tracked


@dataclass(frozen=True)
class Backtest:
    """Forecasts [N, H] per method, on the same origins and targets; quantile forecasts [N, H, Q] at
    `levels` for the methods that answer with a distribution (their point forecast is its median)."""

    origin_dates: pd.DatetimeIndex  # [N] date of each origin's last observed close
    target_dates: list[pd.DatetimeIndex]  # N x [H]
    last_close: np.ndarray  # [N]
    actual: np.ndarray  # [N, H]
    forecasts: dict[str, np.ndarray]
    quantiles: dict[str, np.ndarray] = field(default_factory=dict)
    levels: np.ndarray | None = None


def walk_forward(methods: dict[str, Method], prices: pd.DataFrame, features: list[str], test_start: pd.Timestamp,
                 horizon: int, min_history: int, levels: list[float] | None = None,
                 span: tuple[pd.Timestamp | None, pd.Timestamp | None] = (None, None)) -> Backtest:
    """Origins: every day whose next `horizon` trading days all lie in the test period (from
    `test_start`) and that has `min_history` rows behind it; `span` (first, last origin date, inclusive)
    replaces the test period's start and ends the origins earlier, e.g. at a served model's span. Each
    method gets `values[:origin + 1]` (the days' bars, then the other `features`: `history_columns`) and
    answers [H] closes or [H, Q] quantile closes at `levels` (which must then hold 0.5)."""
    others = history_columns(features)[len(BARS):]
    values = np.concatenate([bars_of(prices), prices[others].to_numpy(dtype=np.float64)], axis=1)  # [T, 4 + F']
    close = values[:, 0]
    start, end = span
    first = int(prices.index.searchsorted(start)) if start is not None else \
        int(prices.index.searchsorted(test_start)) - 1
    stop = len(values) - horizon if end is None else min(len(values) - horizon,
                                                             int(prices.index.searchsorted(end, side="right")))
    origins = np.arange(max(first, min_history - 1), stop)  # [N]
    if len(origins) == 0:
        raise ValueError("the test period is shorter than the horizon")
    answers: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    for origin in tracked(origins, "walk-forward origins"):
        history = values[:origin + 1]  # nothing after the origin
        for name, method in methods.items():
            answers[name].append(method(history, horizon))
    forecasts, quantiles = {}, {}
    for name, answer in answers.items():
        stacked = np.stack(answer)  # [N, H] or [N, H, Q]
        if stacked.ndim == 3:
            if levels is None or len(levels) != stacked.shape[-1]:
                raise ValueError(f"{name} answered {stacked.shape[-1]} quantiles: the backtest's levels must be those")
            quantiles[name] = stacked
            stacked = Quantiles(stacked, np.asarray(levels)).median
        forecasts[name] = stacked
    target_rows = origins[:, None] + np.arange(1, horizon + 1)[None, :]  # [N, H]
    return Backtest(
        origin_dates=prices.index[origins],
        target_dates=[prices.index[rows] for rows in target_rows],
        last_close=close[origins],
        actual=close[target_rows],
        forecasts=forecasts,
        quantiles=quantiles,
        levels=None if levels is None else np.asarray(levels, dtype=float),
    )

