"""Every figure stockcast draws: the run's test forecasts, the backtest's, the served forecast.

Built as matplotlib `Figure` objects, never through pyplot: pyplot keeps each figure alive in global
state, so a sweep or a server process drawing many would grow without bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:  # annotations only: the client draws without importing the backtest's torch
    from stockcast.eval.backtest import Backtest


def forecast_figure(symbol: str, dates: list[pd.DatetimeIndex], actual: np.ndarray, forecast: np.ndarray,
                    metrics: dict[str, float]) -> Figure:
    """Top: actual closes with the 1-step and last-step forecasts at their target dates.
    Bottom: MAPE per horizon step, model vs naive."""
    horizon = actual.shape[1]
    fig = Figure(figsize=(11, 7))
    top, bottom = fig.subplots(2, 1, height_ratios=(2, 1))
    first_dates = [d[0] for d in dates]
    last_dates = [d[-1] for d in dates]
    top.plot(first_dates, actual[:, 0], color="black", lw=1.4, label="actual close")
    top.plot(first_dates, forecast[:, 0], lw=1, label="forecast, 1 day ahead")
    top.plot(last_dates, forecast[:, -1], lw=1, alpha=0.8, label=f"forecast, {horizon} days ahead")
    top.set_title(f"{symbol}: test period forecasts (MAPE {metrics['test_mape']:.2f} % vs naive "
                  f"{metrics['naive_mape']:.2f} %, skill {metrics['skill_mape']:+.3f})")
    top.set_ylabel("price")
    top.legend()
    top.grid(alpha=0.3)
    steps = np.arange(1, horizon + 1)
    model = [metrics[f"test_mape_h{s}"] for s in steps]
    naive = [metrics[f"naive_mape_h{s}"] for s in steps]
    bottom.bar(steps - 0.2, model, width=0.4, label="LSTM")
    bottom.bar(steps + 0.2, naive, width=0.4, label="naive last value")
    bottom.set_xlabel("horizon step (trading days ahead)")
    bottom.set_ylabel("MAPE (%)")
    bottom.set_xticks(steps)
    bottom.legend()
    bottom.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _style(methods: list[str], name: str) -> dict:
    """One colour per method in both backtest figures; the LSTM in bold black."""
    if name == "lstm":
        return {"color": "black", "lw": 2.2}
    return {"color": f"C{methods.index(name)}", "lw": 1.2}


def error_by_step_figure(symbol: str, per_step: dict[str, np.ndarray], methods: list[str]) -> Figure:
    """Backtest: MAPE and directional accuracy per horizon step, one line per method."""
    fig = Figure(figsize=(12, 4.5))
    left, right = fig.subplots(1, 2)
    for name in methods:
        steps = np.arange(1, len(per_step[f"{name}_mape"]) + 1)
        style = _style(methods, name)
        left.plot(steps, per_step[f"{name}_mape"], marker="o", ms=3, label=name, **style)
        if not np.isnan(per_step[f"{name}_direction"]).all():
            right.plot(steps, per_step[f"{name}_direction"], marker="o", ms=3, label=name, **style)
    right.axhline(50, color="grey", ls=":", lw=1)
    left.set(title=f"{symbol}: MAPE by horizon step", xlabel="trading days ahead", ylabel="MAPE (%)")
    right.set(title="directional accuracy (naive has none)", xlabel="trading days ahead", ylabel="% right sign")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    return fig


def forecasts_figure(symbol: str, backtest: Backtest, methods: list[str]) -> Figure:
    """Backtest: actual closes, and each method's last-step forecast placed on its target date."""
    horizon = backtest.actual.shape[1]
    fig = Figure(figsize=(12, 5))
    axis = fig.subplots()
    actual_dates = [dates[0] for dates in backtest.target_dates] + list(backtest.target_dates[-1][1:])
    actual = np.concatenate([backtest.actual[:, 0], backtest.actual[-1, 1:]])
    axis.plot(actual_dates, actual, color="grey", lw=2.5, alpha=0.6, label="actual close")
    last_targets = [dates[-1] for dates in backtest.target_dates]
    for name in methods:
        axis.plot(last_targets, backtest.forecasts[name][:, -1], alpha=0.9, label=f"{name}, {horizon} days ahead",
                  **(_style(methods, name) | {"lw": 1.4 if name == "lstm" else 0.9}))
    axis.set(title=f"{symbol}: walk-forward forecasts over the test period", ylabel="price")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    return fig


def served_figure(stock: str, model_version: str, last_date: str, last_close: float, dates: list[str],
                  prices: list[float], history: pd.Series) -> Figure:
    """The served forecast for people: recent closes (`history`, indexed by date), then the forecast
    drawn from the last close on its trading dates."""
    forecast_dates = pd.to_datetime([last_date, *dates])
    fig = Figure(figsize=(10, 5))
    axis = fig.subplots()
    axis.plot(history.index, history.to_numpy(), color="black", lw=1.3, label="close")
    axis.plot(forecast_dates, [last_close, *prices], color="tab:blue", lw=1.8, marker="o", ms=3,
              label=f"forecast ({len(dates)} trading days)")
    axis.axvline(forecast_dates[0], color="grey", ls=":", lw=1)
    axis.set_title(f"{stock}: forecast from {last_date} (model version {model_version})")
    axis.set_ylabel("price")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
