"""Forecast errors in price units, per horizon step and averaged, and the naive baseline."""

from __future__ import annotations

import numpy as np

TRAIN_METRICS = ("rmse", "mae", "mape")
ALL_METRICS = (*TRAIN_METRICS, "smape", "direction")


def step_errors(forecast: np.ndarray, actual: np.ndarray, last_close: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step errors of [N, H] forecasts made at origins whose close was `last_close` [N].

    mape/smape are percent of price; direction is the percent of origins whose forecast move
    (vs the last close) has the sign of the actual move, NaN for a flat forecast like the naive one.
    """
    error = forecast - actual  # [N, H]
    predicted_move = np.sign(forecast - last_close[:, None])  # [N, H]
    actual_move = np.sign(actual - last_close[:, None])
    flat = np.all(predicted_move == 0, axis=0)  # [H]
    direction = 100 * (predicted_move == actual_move).mean(axis=0)
    return {
        "rmse": np.sqrt((error**2).mean(axis=0)),  # [H]
        "mae": np.abs(error).mean(axis=0),
        "mape": 100 * np.abs(error / actual).mean(axis=0),
        "smape": 100 * (2 * np.abs(error) / (np.abs(forecast) + np.abs(actual))).mean(axis=0),
        "direction": np.where(flat, np.nan, direction),
    }


def average(name: str, per_step: np.ndarray) -> float:
    """Over all steps: RMSE pools squared errors; the others are means of the per-step values."""
    if name == "rmse":
        return float(np.sqrt((per_step**2).mean()))
    return float(per_step.mean())


def error_metrics(forecast: np.ndarray, actual: np.ndarray, last_close: np.ndarray, prefix: str,
                  names: tuple[str, ...] = TRAIN_METRICS) -> dict[str, float]:
    """`{prefix}_{name}` averaged and `{prefix}_{name}_h{step}` per step, for each metric in `names`."""
    per_step = step_errors(forecast, actual, last_close)
    metrics = {f"{prefix}_{name}": average(name, per_step[name]) for name in names}
    for name in names:
        metrics |= {f"{prefix}_{name}_h{step}": float(v) for step, v in enumerate(per_step[name], start=1)}
    return metrics


def naive_forecast(last_close: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed close repeated over the horizon: [N] -> [N, H]."""
    return np.repeat(last_close[:, None], horizon, axis=1)


def compare_with_naive(forecast: np.ndarray, actual: np.ndarray, last_close: np.ndarray,
                       model: str = "test", naive: str = "naive", skill: str = "skill_mape") -> dict[str, float]:
    """`test_*` and `naive_*` metrics plus `skill_mape = 1 - test_mape / naive_mape` (names settable,
    e.g. `val_*`, `val_naive_*`, `val_skill_mape` for the validation period)."""
    metrics = error_metrics(forecast, actual, last_close, model)
    metrics |= error_metrics(naive_forecast(last_close, actual.shape[1]), actual, last_close, naive)
    metrics[skill] = 1 - metrics[f"{model}_mape"] / metrics[f"{naive}_mape"]
    return metrics
