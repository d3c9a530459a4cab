"""Forecast scores shared by training, evaluation and monitoring: point errors, quantile scores, tests.

Shapes: N origins, H horizon steps, Q quantile levels. Forecasts and actual closes are prices [N, H]
(quantile forecasts [N, H, Q]); `last_close` [N] is each origin's close, the base of every percentage
except MAPE/sMAPE (percent of the actual price, as they are usually defined).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import special, stats

from stockcast.errors import StockcastError

TRAIN_METRICS = ("rmse", "mae", "mape")
ALL_METRICS = (*TRAIN_METRICS, "smape", "direction")

STEP_KEY = re.compile(r"_h\d+$")  # a per-step metric: test_crps_h3


# ---- point forecasts [N, H] ----

def percentage_errors(forecast: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Absolute errors in percent of the actual price, [N, H]: MAPE's terms and the backtest's DM loss."""
    return 100 * np.abs(forecast - actual) / np.abs(actual)


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
        "mape": percentage_errors(forecast, actual).mean(axis=0),
        "smape": 100 * (2 * np.abs(error) / (np.abs(forecast) + np.abs(actual))).mean(axis=0),
        "direction": np.where(flat, np.nan, direction),
    }


def average(name: str, per_step: np.ndarray) -> float:
    """Over all steps: RMSE pools squared errors; the others are means of the per-step values."""
    if name == "rmse":
        return float(np.sqrt((per_step**2).mean()))
    return float(per_step.mean())


def by_step(key: str, per_step: np.ndarray) -> dict[str, float]:
    """`{key}_h1`, `{key}_h2`, ...: the per-step names MLflow gets."""
    return {f"{key}_h{step}": float(value) for step, value in enumerate(per_step, start=1)}


def averages(metrics: dict[str, float]) -> dict[str, float]:
    """`metrics` without the per-step `{key}_h{step}` ones."""
    return {key: value for key, value in metrics.items() if not STEP_KEY.search(key)}


def error_metrics(forecast: np.ndarray, actual: np.ndarray, last_close: np.ndarray, prefix: str,
                  names: tuple[str, ...] = TRAIN_METRICS) -> dict[str, float]:
    """`{prefix}_{name}` averaged and `{prefix}_{name}_h{step}` per step, for each metric in `names`."""
    per_step = step_errors(forecast, actual, last_close)
    metrics = {f"{prefix}_{name}": average(name, per_step[name]) for name in names}
    for name in names:
        metrics |= by_step(f"{prefix}_{name}", per_step[name])
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


def move_spread(forecast: np.ndarray, last_close: np.ndarray) -> float:
    """Std across origins of the last step's move, in percent of the origin's close: near zero for a
    forecaster that only learned "naive plus drift"."""
    return float(np.std(100 * (forecast[:, -1] / last_close - 1)))


# ---- quantile forecasts [N, H, Q] ----

class Quantiles(NamedTuple):
    """A quantile forecast: `values` [N, H, Q] in prices at increasing `levels` [Q] in (0, 1)."""

    values: np.ndarray
    levels: np.ndarray

    @property
    def median(self) -> np.ndarray:
        """[N, H]: the values at level 0.5, the point forecast of a quantile forecast."""
        found = np.flatnonzero(np.isclose(self.levels, 0.5, rtol=0, atol=1e-6))
        if len(found) == 0:
            raise StockcastError(f"no median among the levels {[round(float(x), 4) for x in self.levels]}")
        return self.values[..., found[0]]

    @classmethod
    def point(cls, forecast: np.ndarray) -> Quantiles:
        """A point forecast [N, H] as a one-value distribution (its median): CRPS = absolute error."""
        return cls(forecast[..., None], np.array([0.5]))


def pinball_loss(q: np.ndarray, actual: np.ndarray, levels: Sequence[float] | np.ndarray) -> np.ndarray:
    """Pinball (quantile) loss per level in price units, [N, H, Q]; `.mean(-1)` averages the levels."""
    grid = np.asarray(levels, dtype=float)
    if q.shape[-1] != len(grid):
        raise ValueError(f"{q.shape[-1]} quantiles for {len(grid)} levels")
    diff = actual[..., None] - q  # [N, H, Q], positive: the actual is above the quantile
    return np.maximum(grid * diff, (grid - 1) * diff)


def crps(q: np.ndarray, actual: np.ndarray, last_close: np.ndarray,
         levels: Sequence[float] | np.ndarray) -> np.ndarray:
    """CRPS per origin and step, [N, H], in percent of the origin's close: 2 x the pinball loss averaged
    over the levels. On the 19 levels 0.05..0.95 this reads about 5 % above a Gaussian's exact CRPS (the
    grid k/20 leaves out the tails); a ratio of two such scores (skill) mostly cancels that."""
    return 200 * pinball_loss(q, actual, levels).mean(axis=-1) / last_close[:, None]


def central_interval(q: np.ndarray, levels: Sequence[float] | np.ndarray,
                     coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds [N, H] of the central `coverage` % interval (80 -> levels 0.1 and 0.9);
    a point forecast (the one level 0.5) is its own interval, lower = upper."""
    grid = np.asarray(levels, dtype=float)
    if len(grid) == 1 and np.isclose(grid[0], 0.5):
        return q[..., 0], q[..., 0]
    tail = (1 - coverage / 100) / 2
    bounds = []
    for level in (tail, 1 - tail):
        found = np.flatnonzero(np.isclose(grid, level, rtol=0, atol=1e-6))  # float32 levels too
        if len(found) == 0:
            raise StockcastError(f"the {coverage:g} % interval needs the quantile level {level:.4g}, "
                                 f"not among {[round(float(x), 4) for x in grid]}")
        bounds.append(q[..., found[0]])
    return bounds[0], bounds[1]


def covered(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Hit indicator [N, H]: the actual close lies inside its interval (bounds included)."""
    return (lower <= actual) & (actual <= upper)


def interval_width(lower: np.ndarray, upper: np.ndarray, last_close: np.ndarray) -> np.ndarray:
    """Interval width [N, H] in percent of the origin's close."""
    return 100 * (upper - lower) / last_close[:, None]


def winkler_score(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray, last_close: np.ndarray,
                  coverage: float) -> np.ndarray:
    """Interval (Winkler) score [N, H] in percent of the origin's close: the width plus 2 / alpha times the
    distance by which the actual misses the interval (alpha = 1 - coverage / 100); lower is better, and
    the true alpha/2 and 1 - alpha/2 quantiles minimise its expectation."""
    alpha = 1 - coverage / 100
    below, above = np.maximum(lower - actual, 0), np.maximum(actual - upper, 0)
    return 100 * ((upper - lower) + 2 / alpha * (below + above)) / last_close[:, None]


def distribution_metrics(forecast: Quantiles, actual: np.ndarray, last_close: np.ndarray,
                         prefix: str) -> dict[str, float]:
    """`{prefix}_crps`, `_coverage_80`, `_coverage_90`, `_width_80` averaged over origins and steps, and
    per step `{prefix}_crps_h{step}`, `{prefix}_coverage_80_h{step}` (MLflow names; CRPS and width in %)."""
    q, levels = forecast
    score = crps(q, actual, last_close, levels)  # [N, H]
    lower, upper = central_interval(q, levels, 80)
    hits_80 = covered(lower, upper, actual)
    hits_90 = covered(*central_interval(q, levels, 90), actual)
    metrics = {f"{prefix}_crps": float(score.mean()), f"{prefix}_coverage_80": float(hits_80.mean()),
               f"{prefix}_coverage_90": float(hits_90.mean()),
               f"{prefix}_width_80": float(interval_width(lower, upper, last_close).mean())}
    return metrics | by_step(f"{prefix}_crps", score.mean(axis=0)) | \
        by_step(f"{prefix}_coverage_80", hits_80.mean(axis=0))


def compare_distributions(forecasts: Mapping[str, Quantiles], actual: np.ndarray, last_close: np.ndarray,
                          reference: str = "naive") -> dict[str, float]:
    """`distribution_metrics` of each forecast under its prefix, and each one's CRPS skill vs `reference`,
    1 - crps / reference crps: `skill_crps` for `test` (as `skill_mape`), `{prefix}_skill_crps` otherwise.

    E.g. {"test": model, "naive": naive, "ewma": ewma} -> test_crps, naive_crps, skill_crps, ewma_skill_crps;
    {"val": model, "val_naive": naive} with reference "val_naive" -> val_crps, val_skill_crps.
    """
    metrics: dict[str, float] = {}
    for prefix, forecast in forecasts.items():
        metrics |= distribution_metrics(forecast, actual, last_close, prefix)
    for prefix in forecasts:
        if prefix != reference:
            name = "skill_crps" if prefix == "test" else f"{prefix}_skill_crps"
            metrics[name] = 1 - metrics[f"{prefix}_crps"] / metrics[f"{reference}_crps"]
    return metrics


# ---- tests ----

@dataclass(frozen=True)
class Significance:
    """A test's statistic and p-value; a NaN pair when the data cannot decide (no variance)."""

    statistic: float
    pvalue: float


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, horizon: int) -> Significance:
    """Test equal expected loss of two forecasts of the same targets ([N] losses each, e.g. per-origin
    APE or CRPS), with the Harvey-Leybourne-Newbold small-sample correction. A negative statistic: the
    first forecast has the smaller loss; the p-value is two-sided.

    h-step forecasts made at consecutive origins overlap, so the loss differential is MA(h-1):
    its long-run variance sums autocovariances up to lag h-1. HLN rescale the statistic and
    compare it with Student's t on N-1 degrees of freedom.
    """
    d = np.asarray(loss_a, dtype=float) - np.asarray(loss_b, dtype=float)  # [N]
    n = len(d)
    centered = d - d.mean()
    gammas = [centered @ centered / n] + [centered[k:] @ centered[:-k] / n for k in range(1, horizon)]
    long_run_variance = gammas[0] + 2 * sum(gammas[1:])
    if long_run_variance <= 0:
        return Significance(float("nan"), float("nan"))
    dm = d.mean() / np.sqrt(long_run_variance / n)
    correction = np.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic = float(dm * correction)
    return Significance(statistic, float(2 * stats.t.sf(abs(statistic), df=n - 1)))


def pooled_test(differences: Sequence[pd.Series], lag: int) -> Significance:
    """Test a zero mean of loss differences pooled over many series (e.g. per-origin CRPS differences of several
    ticker-years, each indexed by its origin dates): summed per date, then the mean of the sums tested with
    Newey-West errors of `lag` lags (Driscoll-Kraay: dates are correlated across tickers and, for h-step
    forecasts, across h - 1 days). Two-sided, normal."""
    sums = pd.concat(differences, axis=1).fillna(0.0).sum(axis=1).sort_index().to_numpy()  # [T]
    n = len(sums)
    centered = sums - sums.mean()
    gammas = [centered[k:] @ centered[:n - k] / n for k in range(lag + 1)]
    long_run_variance = gammas[0] + 2 * sum((1 - k / (lag + 1)) * gamma for k, gamma in enumerate(gammas) if k)
    if n < 2 or long_run_variance <= 0:
        return Significance(float("nan"), float("nan"))
    statistic = float(sums.mean() / np.sqrt(long_run_variance / n))
    return Significance(statistic, float(2 * stats.norm.sf(abs(statistic))))


def _likelihood_ratio(statistic: float) -> Significance:
    """An LR statistic against chi-squared with one degree of freedom (clipped at 0 against rounding)."""
    statistic = max(float(statistic), 0.0)
    return Significance(statistic, float(stats.chi2.sf(statistic, df=1)))


def _bernoulli_loglik(misses: float, hits: float, miss_rate: float) -> float:
    """log L of `misses` and `hits` at `miss_rate`, with 0 log 0 = 0 (no misses, or nothing but misses)."""
    return float(special.xlogy(misses, miss_rate) + special.xlogy(hits, 1 - miss_rate))


def kupiec(hits: np.ndarray, coverage: float) -> Significance:
    """Kupiec's unconditional coverage test of a hit sequence [T] (True: inside the `coverage` % interval):
    LR = 2 (log L(observed miss rate) - log L(1 - coverage)), chi-squared(1). A small p-value: the
    interval covers too often or too rarely."""
    hits = np.asarray(hits, dtype=bool)
    if hits.size == 0:
        raise ValueError("kupiec needs at least one hit indicator")
    misses = float((~hits).sum())
    inside = hits.size - misses
    observed = _bernoulli_loglik(misses, inside, misses / hits.size)
    return _likelihood_ratio(2 * (observed - _bernoulli_loglik(misses, inside, 1 - coverage / 100)))


def christoffersen(hits: np.ndarray) -> Significance:
    """Christoffersen's independence test of a hit sequence [T]: does a miss make the next miss more (or
    less) likely? LR of a two-state Markov chain against independent misses, chi-squared(1).

    Forecasts h > 1 steps ahead from consecutive origins share targets, so their misses cluster even
    when calibrated: test one step, or every h-th origin.
    """
    miss = ~np.asarray(hits, dtype=bool)
    if miss.size < 2:
        raise ValueError("christoffersen needs at least two hit indicators")
    before, after = miss[:-1], miss[1:]
    n01, n11 = float((~before & after).sum()), float((before & after).sum())  # n_ij: i then j (1 = miss)
    n00, n10 = float((~before).sum()) - n01, float(before.sum()) - n11
    markov = _bernoulli_loglik(n01, n00, n01 / (n00 + n01) if n00 + n01 else 0.0) + \
        _bernoulli_loglik(n11, n10, n11 / (n10 + n11) if n10 + n11 else 0.0)
    independent = _bernoulli_loglik(n01 + n11, n00 + n10, (n01 + n11) / after.size)
    return _likelihood_ratio(2 * (markov - independent))


def conditional_coverage(hits: np.ndarray, coverage: float) -> Significance:
    """Christoffersen's conditional coverage test: Kupiec's and the independence statistics summed, against
    chi-squared with two degrees of freedom. A small p-value: misses too many, too few or clustered."""
    statistic = kupiec(hits, coverage).statistic + christoffersen(hits).statistic
    return Significance(statistic, float(stats.chi2.sf(statistic, df=2)))


# ---- the risk of a position: VaR and ES as positive losses, profit and loss (`pnl`) signed ----

TRAFFIC_LIGHT = ((4, "green"), (9, "yellow"))  # Basel's zones for 250 days of 99 % VaR: 0-4, 5-9, 10 and more
ZONES = ("green", "yellow", "red")


def traffic_light(exceptions: int) -> str:
    """Basel's traffic-light zone of a 99 % VaR's exceptions over 250 days: green, yellow or red."""
    return next((zone for most, zone in TRAFFIC_LIGHT if exceptions <= most), "red")


def acerbi_szekely_z2(pnl: np.ndarray, var: np.ndarray, es: np.ndarray, level: float) -> float:
    """Acerbi and Szekely's (2014) Z2 of an ES at `level` ([T] each): sum of the exceptions' pnl over
    T (1 - level) ES, plus 1. Zero in expectation for a correct model; negative when the losses beyond the
    VaR are larger than the ES said (-0.70 rejects at about 5 % for 250 days at 97.5 %)."""
    pnl, var, es = (np.asarray(values, dtype=float) for values in (pnl, var, es))
    exceptions = pnl < -var
    return float((pnl * exceptions / es).sum() / (len(pnl) * (1 - level)) + 1)


def fz0_loss(pnl: np.ndarray, var: np.ndarray, es: np.ndarray, level: float) -> np.ndarray:
    """[T] the FZ0 joint loss of (VaR, ES) at `level` (Patton, Ziegel and Chen 2019): strictly consistent for
    the pair, so lower on average means better; scale-free in the pnl's units only up to a constant, so compare
    methods on the same portfolio. With v = -VaR, e = -ES < 0 and a = 1 - level:
    -1{y <= v}(v - y) / (a e) + v / e + log(-e) - 1."""
    y, v, e = (np.asarray(values, dtype=float) for values in (pnl, -np.asarray(var), -np.asarray(es)))
    return -((y <= v) * (v - y)) / ((1 - level) * e) + v / e + np.log(-e) - 1
