"""Diebold-Mariano test with the Harvey-Leybourne-Newbold small-sample correction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class DMResult:
    statistic: float  # negative: the first forecast has the smaller loss
    pvalue: float  # two-sided


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, horizon: int) -> DMResult:
    """Test equal expected loss of two forecasts of the same targets ([N] losses each).

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
        return DMResult(float("nan"), float("nan"))
    dm = d.mean() / np.sqrt(long_run_variance / n)
    correction = np.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic = float(dm * correction)
    return DMResult(statistic, float(2 * stats.t.sf(abs(statistic), df=n - 1)))
