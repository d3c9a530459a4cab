"""Backtest tables from the shared metrics: point forecasts per method and step (skill and Diebold-Mariano
vs naive), and quantile forecasts (CRPS skill vs naive-empirical, coverage, width, interval score,
Kupiec, Christoffersen, Diebold-Mariano on CRPS vs naive-empirical and EWMA)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockcast.eval.backtest import Backtest
from stockcast.metrics import (
    ALL_METRICS,
    average,
    central_interval,
    christoffersen,
    covered,
    crps,
    diebold_mariano,
    interval_width,
    kupiec,
    move_spread,
    percentage_errors,
    step_errors,
    winkler_score,
)
from stockcast.runtime.metric_keys import EWMA, NAIVE_EMPIRICAL

MODEL = "lstm"  # the trained net among the backtest's methods
REFERENCE = "naive"
RANGE_REFERENCE, RANGE_PEER = NAIVE_EMPIRICAL.method, EWMA.method  # the reference of skill_crps, and the peer to beat
COVERAGES = (50, 80, 90)


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
    """`{method}_{metric}` -> [H] per-step values, for plots and MLflow; `crps` and `coverage_80` too for
    the methods that forecast quantiles."""
    out = {}
    for name, forecast in backtest.forecasts.items():
        for metric, values in step_errors(forecast, backtest.actual, backtest.last_close).items():
            out[f"{name}_{metric}"] = values
    for name, quantiles in backtest.quantiles.items():
        assert backtest.levels is not None  # set with any quantile forecasts (walk_forward)
        out[f"{name}_crps"] = crps(quantiles, backtest.actual, backtest.last_close, backtest.levels).mean(axis=0)
        hits = covered(*central_interval(quantiles, backtest.levels, 80), backtest.actual)
        out[f"{name}_coverage_80"] = hits.mean(axis=0)
    return out


def range_table(backtest: Backtest) -> pd.DataFrame:
    """One row per quantile method: CRPS (% of the origin's close) and its skill vs naive-empirical;
    coverage and width (%) of the central 50/80/90 % intervals; the 80 % interval (Winkler) score;
    Kupiec's and Christoffersen's p-values of the 80 % interval's hits one step ahead (consecutive
    one-step targets do not overlap, so calibrated misses are independent there); Diebold-Mariano
    p-values of the per-origin CRPS (mean over steps, lag H-1) vs naive-empirical and vs EWMA."""
    actual, last_close, levels = backtest.actual, backtest.last_close, backtest.levels
    assert levels is not None  # a backtest of quantile forecasts (evaluate's always is) has its levels
    scores = {name: crps(q, actual, last_close, levels) for name, q in backtest.quantiles.items()}  # [N, H]
    reference = scores[RANGE_REFERENCE].mean()
    rows = {}
    for name, quantiles in backtest.quantiles.items():
        row = {"crps": scores[name].mean(), "skill_crps": 1 - scores[name].mean() / reference}
        intervals = {coverage: central_interval(quantiles, levels, coverage) for coverage in COVERAGES}
        for coverage, (lower, upper) in intervals.items():
            row[f"coverage_{coverage}"] = covered(lower, upper, actual).mean()
            row[f"width_{coverage}"] = interval_width(lower, upper, last_close).mean()
        lower, upper = intervals[80]
        row["winkler_80"] = winkler_score(lower, upper, actual, last_close, 80).mean()
        first_step = covered(lower[:, 0], upper[:, 0], actual[:, 0])
        row["kupiec_p"], row["christoffersen_p"] = kupiec(first_step, 80).pvalue, christoffersen(first_step).pvalue
        for other in (RANGE_REFERENCE, RANGE_PEER):
            row[f"dm_p_vs_{other}"] = np.nan if other == name or other not in scores else \
                diebold_mariano(scores[name].mean(axis=1), scores[other].mean(axis=1), actual.shape[1]).pvalue
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
