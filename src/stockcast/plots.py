"""Figures logged with each run: forecast vs actual over the test period, error by horizon step."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def forecast_figure(symbol: str, dates: list[pd.DatetimeIndex], actual: np.ndarray, forecast: np.ndarray,
                    metrics: dict[str, float]) -> Figure:
    """Top: actual closes with the 1-step and last-step forecasts at their target dates.
    Bottom: MAPE per horizon step, model vs naive."""
    horizon = actual.shape[1]
    fig = Figure(figsize=(11, 7))  # not pyplot's: nothing keeps it alive after logging
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
