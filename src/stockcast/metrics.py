"""Forecast errors in price units, for the model and the naive last-value forecast."""

from __future__ import annotations

import numpy as np


def error_metrics(forecast: np.ndarray, actual: np.ndarray, prefix: str) -> dict[str, float]:
    """RMSE, MAE and MAPE (percent) of [N, H] forecasts, averaged and per step (`{prefix}_mape_h1`..)."""
    error = forecast - actual  # [N, H]
    per_step = {
        "rmse": np.sqrt((error**2).mean(axis=0)),  # [H]
        "mae": np.abs(error).mean(axis=0),
        "mape": 100 * np.abs(error / actual).mean(axis=0),
    }
    metrics = {
        f"{prefix}_rmse": float(np.sqrt((error**2).mean())),
        f"{prefix}_mae": float(np.abs(error).mean()),
        f"{prefix}_mape": float(per_step["mape"].mean()),
    }
    for name, values in per_step.items():
        metrics.update({f"{prefix}_{name}_h{step}": float(v) for step, v in enumerate(values, start=1)})
    return metrics


def naive_forecast(last_close: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed close repeated over the horizon: [N] -> [N, H]."""
    return np.repeat(last_close[:, None], horizon, axis=1)


def compare_with_naive(forecast: np.ndarray, actual: np.ndarray, last_close: np.ndarray) -> dict[str, float]:
    """`test_*` and `naive_*` metrics plus `skill_mape = 1 - test_mape / naive_mape`."""
    metrics = error_metrics(forecast, actual, "test")
    metrics |= error_metrics(naive_forecast(last_close, actual.shape[1]), actual, "naive")
    metrics["skill_mape"] = 1 - metrics["test_mape"] / metrics["naive_mape"]
    return metrics
