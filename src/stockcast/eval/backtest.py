"""Walk-forward backtest: every method forecasts from every origin of the test period."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.eval.baselines import Method


@dataclass(frozen=True)
class Backtest:
    """Forecasts [N, H] per method, on the same origins and targets."""

    origin_dates: pd.DatetimeIndex  # [N] date of each origin's last observed close
    target_dates: list[pd.DatetimeIndex]  # N x [H]
    last_close: np.ndarray  # [N]
    actual: np.ndarray  # [N, H]
    forecasts: dict[str, np.ndarray]


def walk_forward(methods: dict[str, Method], prices: pd.DataFrame, features: list[str], test_start: pd.Timestamp,
                 horizon: int, min_history: int) -> Backtest:
    """Origins: every day whose next `horizon` trading days all lie in the test period (from
    `test_start`) and that has `min_history` rows behind it. Each method gets `values[:origin + 1]`."""
    values = prices[features].to_numpy(dtype=np.float64)  # [T, F]
    close = values[:, 0]
    first = max(int(prices.index.searchsorted(test_start)) - 1, min_history - 1)
    origins = np.arange(first, len(values) - horizon)  # [N]
    if len(origins) == 0:
        raise ValueError("the test period is shorter than the horizon")
    forecasts = {name: np.empty((len(origins), horizon)) for name in methods}
    for i, origin in enumerate(origins):
        history = values[:origin + 1]  # nothing after the origin
        for name, method in methods.items():
            forecasts[name][i] = method(history, horizon)
    target_rows = origins[:, None] + np.arange(1, horizon + 1)[None, :]  # [N, H]
    return Backtest(
        origin_dates=prices.index[origins],
        target_dates=[prices.index[rows] for rows in target_rows],
        last_close=close[origins],
        actual=close[target_rows],
        forecasts=forecasts,
    )
