"""Every figure stockcast draws: the run's test forecasts, the backtest's, the served forecast.

Built as matplotlib `Figure` objects, never through pyplot: pyplot keeps each figure alive in global
state, so a sweep or a server process drawing many would grow without bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from stockcast.metrics import Quantiles, central_interval, covered, interval_width

if TYPE_CHECKING:  # annotations only: the client draws without importing the backtest's torch
    from stockcast.eval.backtest import Backtest



def forecast_figure(symbol: str, dates: np.ndarray, actual: np.ndarray, forecast: Quantiles,
                    metrics: dict[str, float]) -> Figure:
    """Top: actual closes with the 1-day-ahead median and its 80 % interval, and the last step's median, at
    their target dates ([N, H] datetime64, `Split.target_dates`). Bottom: CRPS per horizon step, model vs the
    naive-empirical and EWMA baselines."""
    horizon = actual.shape[1]
    median = forecast.median
    fig = Figure(figsize=(11, 7))
    top, bottom = fig.subplots(2, 1, height_ratios=(2, 1))
    first_dates = [d[0] for d in dates]
    top.plot(first_dates, actual[:, 0], color="black", lw=1.4, label="actual close")
    if len(forecast.levels) > 1:
        lower, upper = central_interval(forecast.values, forecast.levels, 80)
        top.fill_between(first_dates, lower[:, 0], upper[:, 0], color="C0", alpha=0.25, lw=0,
                         label="80 % interval, 1 day ahead")
    top.plot(first_dates, median[:, 0], color="C0", lw=1, label="median, 1 day ahead")
    top.plot([d[-1] for d in dates], median[:, -1], color="C1", lw=1, alpha=0.8,
             label=f"median, {horizon} days ahead")
    top.set_title(f"{symbol}: test period (CRPS skill vs naive-empirical {metrics['skill_crps']:+.3f}, EWMA's "
                  f"{metrics['ewma_skill_crps']:+.3f}; 80 % coverage {metrics['test_coverage_80']:.2f})")
    top.set_ylabel("price")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    steps = np.arange(1, horizon + 1)
    for offset, (prefix, label) in zip((-0.27, 0, 0.27), (("test", "LSTM"), ("naive", "naive-empirical"),
                                                           ("ewma", "EWMA")), strict=True):
        bottom.bar(steps + offset, [metrics[f"{prefix}_crps_h{step}"] for step in steps], width=0.27, label=label)
    bottom.set_xlabel("horizon step (trading days ahead)")
    bottom.set_ylabel("CRPS (% of close)")
    bottom.set_xticks(steps)
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _finish(fig: Figure, *axes: Axes) -> Figure:
    """The backtest figures' common ending: a light grid and a small legend on each axis."""
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
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
    return _finish(fig, left, right)


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
    return _finish(fig, axis)


def ranges_figure(symbol: str, backtest: Backtest, model: str = "lstm", peer: str = "ewma") -> Figure:
    """Backtest of the quantile forecasts: a fan chart of the model's last step over the test period;
    the reliability diagram (observed vs nominal coverage of each central interval, every quantile
    method); the model's and the peer's 80 % width at the last step beside the realised absolute move."""
    fig = Figure(figsize=(13, 9))
    grid = fig.add_gridspec(2, 2)
    fan, reliability, widths = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    horizon, levels = backtest.actual.shape[1], backtest.levels
    assert levels is not None  # a backtest with the model's quantile forecasts has their levels
    targets = [dates[-1] for dates in backtest.target_dates]
    quantiles = backtest.quantiles[model]
    for coverage, alpha in ((90, 0.15), (80, 0.3)):
        lower, upper = central_interval(quantiles, levels, coverage)
        fan.fill_between(targets, lower[:, -1], upper[:, -1], color="C0", alpha=alpha, lw=0, label=f"{coverage} %")
    fan.plot(targets, backtest.forecasts[model][:, -1], color="C0", lw=1, label="median")
    fan.plot(targets, backtest.actual[:, -1], color="black", lw=1.3, label="actual close")
    fan.set(title=f"{symbol}: {model} ranges {horizon} trading days ahead, walk-forward", ylabel="price")
    reliability.plot([0, 100], [0, 100], color="grey", ls=":", lw=1)
    coverages = sorted(round(100 * (1 - 2 * level)) for level in levels  # the central intervals: 0.05 -> 90 %
                       if level < 0.5 and np.isclose(levels, 1 - level).any())
    for name, values in backtest.quantiles.items():
        observed = [100 * covered(*central_interval(values, levels, c), backtest.actual).mean() for c in coverages]
        reliability.plot(coverages, observed, marker="o", ms=3, label=name, **_style(list(backtest.quantiles), name))
    reliability.set(title="reliability: all steps", xlabel="nominal coverage (%)", ylabel="observed coverage (%)")
    origins = backtest.origin_dates
    move = 100 * np.abs(backtest.actual[:, -1] / backtest.last_close - 1)
    widths.plot(origins, move, color="grey", lw=0.8, label=f"realised |{horizon}-day move|")
    for name in (model, peer):
        if name in backtest.quantiles:
            width = interval_width(*central_interval(backtest.quantiles[name], levels, 80), backtest.last_close)
            widths.plot(origins, width[:, -1], label=f"{name} 80 % width", **_style(list(backtest.quantiles), name))
    widths.set(title=f"80 % width at step {horizon} vs the realised move", ylabel="% of close")
    return _finish(fig, fan, reliability, widths)


def served_figure(stock: str, model_version: str, last_date: str, last_close: float, dates: list[str],
                  prices: list[float], history: pd.Series,
                  intervals: dict[str, dict[str, list[float]]] | None = None) -> Figure:
    """The served forecast for people: recent closes (`history`, indexed by date), then the forecast's
    median drawn from the last close on its trading dates, with its 90 and 80 % bands when served."""
    forecast_dates = pd.to_datetime([last_date, *dates])
    fig = Figure(figsize=(10, 5))
    axis = fig.subplots()
    axis.plot(history.index, history.to_numpy(), color="black", lw=1.3, label="close")
    for coverage, alpha in (("90", 0.15), ("80", 0.3)):
        if intervals and coverage in intervals:
            band = intervals[coverage]
            axis.fill_between(forecast_dates, [last_close, *band["lower"]], [last_close, *band["upper"]],
                              color="tab:blue", alpha=alpha, lw=0, label=f"{coverage} % range")
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


def var_figure(portfolio: str, daily: pd.DataFrame) -> Figure:
    """The served 1-day VaR at 99 and 97.5 % against the realized profit and loss, exceptions marked: `daily` holds
    one portfolio's served rows of the risk backtest (date, pnl_1, var_1_0.99, var_1_0.975)."""
    fig = Figure(figsize=(12, 4.5))
    axis = fig.subplots()
    pnl = daily.pnl_1 * 100
    axis.bar(daily.date, pnl, width=1.0, color="grey", alpha=0.6, label="realized profit and loss")
    for column, level, colour in (("var_1_0.99", "99", "C3"), ("var_1_0.975", "97.5", "C1")):
        axis.plot(daily.date, -daily[column] * 100, color=colour, lw=1.4, label=f"-VaR {level} %")
    exceptions = daily.pnl_1 < -daily["var_1_0.99"]
    axis.scatter(daily.date[exceptions], pnl[exceptions], color="C3", zorder=3, s=30,
                 label=f"exceptions at 99 % ({int(exceptions.sum())} of {len(daily)} days)")
    axis.set(title=f"{portfolio}: served 1-day VaR against the next day's profit and loss",
             ylabel="% of the position's gross value")
    return _finish(fig, axis)


def universe_figure(folds: dict[str, pd.DataFrame]) -> Figure:
    """Per fold (a row), the global net against its best baseline ticker by ticker: left, the net's CRPS skill
    against the best baseline's (above the diagonal: the net did better), seen and unseen tickers apart; right,
    each ticker's 80 % coverage, sorted, with the 0.75..0.85 band. `folds`: per_ticker.csv's rows with `best`,
    the group's best baseline's skill on that ticker."""
    fig = Figure(figsize=(12, 4.2 * len(folds)))
    axes = fig.subplots(len(folds), 2, squeeze=False)
    for (fold, table), (skill, coverage) in zip(folds.items(), axes, strict=True):
        for seen, colour, label in ((True, "C0", "seen"), (False, "C1", "unseen")):
            rows = table[table.seen == seen]
            skill.scatter(100 * rows.best, 100 * rows.skill_crps, s=10, alpha=0.6, color=colour,
                          label=f"{label} ({len(rows)}; net better on {(rows.skill_crps > rows.best).mean():.0%})")
        low, high = (100 * np.nanpercentile(table[["best", "skill_crps"]].to_numpy(), q) for q in (0.5, 99.5))
        skill.plot([low, high], [low, high], color="black", lw=0.8, label="equal skill")
        skill.set(title=f"{fold}: CRPS skill per ticker (% vs naive-empirical)", xlabel="best baseline's",
                  ylabel="global net's", xlim=(low, high), ylim=(low, high))
        ordered = table.sort_values("test_coverage_80").reset_index(drop=True)
        coverage.axhspan(0.75, 0.85, color="grey", alpha=0.2, label="0.75..0.85")
        for seen, colour, label in ((True, "C0", "seen"), (False, "C1", "unseen")):
            rows = ordered[ordered.seen == seen]
            coverage.scatter(rows.index, rows.test_coverage_80, s=8, color=colour, label=label)
        coverage.axhline(0.8, color="black", lw=0.8)
        coverage.set(title=f"{fold}: 80 % interval coverage per ticker", xlabel="tickers, sorted by coverage",
                     ylabel="share of test outcomes inside")
        _finish(fig, skill, coverage)
    return fig
