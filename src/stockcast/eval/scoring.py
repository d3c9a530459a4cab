"""Backtest tables from the shared metrics: per method and step, skill and Diebold-Mariano vs naive."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockcast.eval.backtest import Backtest
from stockcast.metrics import ALL_METRICS, average, diebold_mariano, move_spread, percentage_errors, step_errors

REFERENCE = "naive"


def summary_table(backtest: Backtest, per_step: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per method: averaged metrics, skill_mape vs naive, DM on the mean APE over steps
    (lag H-1), and the spread (std across origins, %) of the predicted H-day move.

    per_step: `step_metrics(backtest)`, computed once by the caller (plots and MLflow use it too)."""
    horizon = backtest.actual.shape[1]
    reference_ape = percentage_errors(backtest.forecasts[REFERENCE], backtest.actual)  # [N, H]
    reference_loss, reference_mape = reference_ape.mean(axis=1), reference_ape.mean()
    rows = {}
    for name, forecast in backtest.forecasts.items():
        row = {metric: average(metric, per_step[f"{name}_{metric}"]) for metric in ALL_METRICS}
        row["skill_mape"] = 1 - row["mape"] / reference_mape
        if name == REFERENCE:
            row["dm_stat"] = row["dm_pvalue"] = np.nan
        else:
            loss = percentage_errors(forecast, backtest.actual).mean(axis=1)  # [N]
            test = diebold_mariano(loss, reference_loss, horizon)
            row["dm_stat"], row["dm_pvalue"] = test.statistic, test.pvalue
        row["move_spread"] = move_spread(forecast, backtest.last_close)
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["actual"] = np.nan
    table.loc["actual", "move_spread"] = move_spread(backtest.actual, backtest.last_close)
    return table


def step_table(backtest: Backtest, method: str) -> pd.DataFrame:
    """Per horizon step: MAPE of `method` and naive, skill, and DM p-value (lag h-1) at that step."""
    actual = backtest.actual
    model_ape = percentage_errors(backtest.forecasts[method], actual)  # [N, H]
    naive_ape = percentage_errors(backtest.forecasts[REFERENCE], actual)
    rows = []
    for step in range(actual.shape[1]):
        test = diebold_mariano(model_ape[:, step], naive_ape[:, step], step + 1)
        rows.append({"step": step + 1, f"{method}_mape": model_ape[:, step].mean(),
                     "naive_mape": naive_ape[:, step].mean(),
                     "skill_mape": 1 - model_ape[:, step].mean() / naive_ape[:, step].mean(),
                     "dm_pvalue": test.pvalue})
    return pd.DataFrame(rows).set_index("step")


def step_metrics(backtest: Backtest) -> dict[str, np.ndarray]:
    """`{method}_{metric}` -> [H] per-step values, for plots and MLflow."""
    out = {}
    for name, forecast in backtest.forecasts.items():
        for metric, values in step_errors(forecast, backtest.actual, backtest.last_close).items():
            out[f"{name}_{metric}"] = values
    return out
