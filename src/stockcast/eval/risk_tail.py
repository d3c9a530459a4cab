"""The marginals' tails beyond the served levels, fitted to what the net got wrong.

For each horizon and side, every outcome beyond the net's lowest (highest) quantile is measured, in log change,
in units of the scale that continues the quantile function's last segment (`copula.Located.changes`'s unit);
a generalized Pareto distribution is fitted to these standardized excesses, pooled over tickers and days, by
maximum likelihood with its shape estimated, and the share of outcomes beyond the level is kept as the tail's
`rate`. Where the net's exponential continuation were right, the excesses would be exponential (shape 0, scale
1) at the level's own rate. The fit is the bundle's `risk_tail` (metadata.json), which `copula.Tails` reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

LEAST = 200  # the fewest excesses a side and horizon is fitted on: fewer, and the bundle keeps the fixed tail


def standardized_excesses(quantiles: np.ndarray, outcomes: np.ndarray, last: np.ndarray,
                          levels: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Forecast `quantiles` [N, H, Q] (prices at `levels`), realized `outcomes` [N, H] and the `last` closes [N]
    -> per horizon the lower and upper tails' standardized excesses, and [H] the forecasts counted."""
    q = np.log(quantiles / last[:, None, None])
    y = np.log(outcomes / last[:, None])
    lower_unit = levels[0] * (q[..., 1] - q[..., 0]) / (levels[1] - levels[0])
    upper_unit = (1 - levels[-1]) * (q[..., -1] - q[..., -2]) / (levels[-1] - levels[-2])
    usable = np.isfinite(y) & np.isfinite(q).all(-1) & (lower_unit > 0) & (upper_unit > 0)
    lower, upper = [], []
    for step in range(q.shape[1]):
        keep = usable[:, step]
        below = (q[keep, step, 0] - y[keep, step]) / lower_unit[keep, step]
        above = (y[keep, step] - q[keep, step, -1]) / upper_unit[keep, step]
        lower.append(below[below > 0])
        upper.append(above[above > 0])
    return lower, upper, usable.sum(0)


def fitted(quantiles: np.ndarray, outcomes: np.ndarray, last: np.ndarray,
           levels: np.ndarray) -> dict[str, Any] | None:
    """The generalized Pareto tails of the net's standardized errors (see the module), per horizon: {"lower" |
    "upper": {"shape", "scale", "rate", "excesses": [H]}}; None where a side and horizon has fewer than LEAST."""
    lower, upper, counted = standardized_excesses(quantiles, outcomes, last, np.asarray(levels, dtype=float))
    tails: dict[str, Any] = {}
    for side, excesses in (("lower", lower), ("upper", upper)):
        if min(len(found) for found in excesses) < LEAST:
            return None
        fits = [stats.genpareto.fit(found, floc=0) for found in excesses]
        tails[side] = {"shape": [float(shape) for shape, _, _ in fits],
                       "scale": [float(scale) for _, _, scale in fits],
                       "rate": [len(found) / int(count) for found, count in zip(excesses, counted, strict=True)],
                       "excesses": [len(found) for found in excesses]}
    return tails
