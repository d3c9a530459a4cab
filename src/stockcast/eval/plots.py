"""Evaluation figures: error by horizon step per method; forecasts vs actual over the test period."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from stockcast.eval.backtest import Backtest


def _style(methods: list[str], name: str) -> dict:
    """One colour per method in both figures; the LSTM in bold black."""
    if name == "lstm":
        return {"color": "black", "lw": 2.2}
    return {"color": f"C{methods.index(name)}", "lw": 1.2}


def error_by_step_figure(symbol: str, per_step: dict[str, np.ndarray], methods: list[str]) -> Figure:
    """MAPE and directional accuracy per horizon step, one line per method."""
    fig = Figure(figsize=(12, 4.5))  # not pyplot's: nothing keeps it alive after saving
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
    """Actual closes, and each method's last-step forecast placed on its target date."""
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
