"""A pooled run scored ticker by ticker: `per_ticker.csv`, each window's CRPS by origin, and their summary.

A pooled (or global) net is one forecast over many tickers; whether it helps is a question about each ticker,
so every test ticker gets the skills a per-ticker run reports (vs naive-empirical, over its own test origins),
and the summary averages tickers, not windows: the means over all of them and over the `seen_` and `unseen_`
ones, the best baseline of a group (the highest mean skill among range EWMA, HAR and panel HAR), the share of
tickers the net beats it on, and a Driscoll-Kraay test (`metrics.pooled_test`) of the net's CRPS against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stockcast.metrics import Quantiles, compare_distributions, crps, pooled_test
from stockcast.runtime.metric_keys import HAR, PANEL_HAR, PEERS, RANGE_EWMA

PER_TICKER = "per_ticker.csv"  # a pooled run's artifact: one row per test ticker, COLUMNS
PER_TICKER_VAL = "per_ticker_val.csv"  # the same over the validation year, `val_coverage_80` for COVERAGE
NET = "test"  # the served forecast's prefix among a run's test forecasts (`test_crps`, `skill_crps`)
SELF = "net"  # the net's own, before its combination with its start (`net_crps`, `net_skill_crps`)
SKILLS = tuple(peer.prefix for peer in (*PEERS, PANEL_HAR))  # the baselines whose skills per_ticker.csv lists
CONTENDERS = tuple(peer.prefix for peer in (RANGE_EWMA, HAR, PANEL_HAR))  # a pooled net's bar: the best of these
COVERAGE = "test_coverage_80"
COLUMNS = ["ticker", "seen", "origins", "skill_crps", f"{SELF}_skill_crps", *(f"{name}_skill_crps" for name in SKILLS),
           COVERAGE]
COVERAGE_BAND = (0.75, 0.85)  # an 80 % interval whose hit rate lies here counts as calibrated


def score_tickers(forecasts: Mapping[str, Quantiles], actual: np.ndarray, last_close: np.ndarray,
                  tickers: Sequence[str], origins: Sequence[pd.DatetimeIndex],
                  unseen: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test windows in ticker order (`tickers[i]` has `len(origins[i])` consecutive rows of every forecast, the
    net's under NET, the reference under "naive") -> per_ticker.csv's rows, and each row's CRPS (mean over steps,
    % of the close) per method with its ticker and origin date."""
    rows, scores, first = [], [], 0
    for ticker, dates in zip(tickers, origins, strict=True):
        own = slice(first, first + len(dates))
        first = own.stop
        sliced = {name: Quantiles(forecast.values[own], forecast.levels) for name, forecast in forecasts.items()}
        metrics = compare_distributions(sliced, actual[own], last_close[own])
        rows.append({"ticker": ticker, "seen": ticker not in unseen, "origins": len(dates)}
                    | {column: metrics.get(column, np.nan) for column in COLUMNS[3:]})
        scores.append(pd.DataFrame({"ticker": ticker, "origin": dates}
                                   | {name: crps(q.values, actual[own], last_close[own], q.levels).mean(axis=1)
                                      for name, q in sliced.items()}))
    return pd.DataFrame(rows, columns=COLUMNS), pd.concat(scores, ignore_index=True)


def summary(per_ticker: pd.DataFrame, by_origin: pd.DataFrame, horizon: int) -> dict[str, float]:
    """Means over tickers (`mean_`, and `seen_`, `unseen_` where there are such tickers) of per_ticker.csv's
    skills and coverage, and per group its best contender's name (as an index into CONTENDERS, MLflow metrics
    are numbers), the net's gain over it in skill points, the share of tickers where the net beats it, the share
    calibrated (COVERAGE_BAND), and the pooled test's statistic and p-value (negative: the net's CRPS is lower)."""
    metrics: dict[str, float] = {}
    groups = {"mean": per_ticker, "seen": per_ticker[per_ticker.seen], "unseen": per_ticker[~per_ticker.seen]}
    for group, table in groups.items():
        if table.empty or (group != "mean" and len(table) == len(per_ticker)):
            continue
        metrics |= {f"{group}_{column}": float(table[column].mean()) for column in COLUMNS[3:]
                    if table[column].notna().any()}
        present = [name for name in CONTENDERS if table[f"{name}_skill_crps"].notna().any()]
        best = max(present, key=lambda name: table[f"{name}_skill_crps"].mean())
        low, high = COVERAGE_BAND
        metrics |= {f"{group}_best_baseline": float(CONTENDERS.index(best)),
                    f"{group}_gain_vs_best": 100 * float(table.skill_crps.mean() - table[f"{best}_skill_crps"].mean()),
                    f"{group}_share_beating_best": float((table.skill_crps > table[f"{best}_skill_crps"]).mean()),
                    f"{group}_share_calibrated": float(table.test_coverage_80.between(low, high).mean())}
        scored = by_origin[by_origin.ticker.isin(table.ticker)]
        differences = [frame.set_index("origin")[NET] - frame.set_index("origin")[best]
                       for _, frame in scored.groupby("ticker")]
        test = pooled_test(differences, lag=horizon - 1)
        metrics |= {f"{group}_pooled_statistic": test.statistic, f"{group}_pooled_pvalue": test.pvalue}
    return metrics


def best_baseline(metrics: Mapping[str, float], group: str) -> str:
    """The name of a group's best contender in `summary`'s metrics."""
    return CONTENDERS[int(metrics[f"{group}_best_baseline"])]
