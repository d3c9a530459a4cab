"""A position's joint profit and loss from per-ticker forecast quantiles: tails, dependence, scenarios, measures.

Torch only (it ships in the archive) and shared with the backtest (`stockcast.eval.risk`), so the served numbers
are the backtested ones. The steps:
- marginals: each ticker's quantiles as log changes, linear between the served levels and, beyond the lowest and
  highest, a generalized Pareto tail whose scale continues the quantile function's slope at the last level and
  whose `shape` (0: exponential) was chosen on validation (docs/risk.md);
- dependence: daily log returns over an EWMA volatility (RiskMetrics' 0.94), their correlation shrunk towards
  the identity by Ledoit and Wolf's (2004) optimal intensity, a Gaussian copula;
- scenarios: correlated normals -> uniforms -> each marginal's quantile function -> the position's change;
- measures: VaR and ES per level, the change's quantiles, and each position's component VaR (its mean change in
  the scenarios next to the VaR scenario, scaled so the components sum to the VaR: Euler's allocation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DECAY = 0.94  # the standardizing volatility's EWMA decay (RiskMetrics' daily value)
NEIGHBOURS = 0.005  # component VaR: the share of scenarios either side of the VaR scenario averaged


@dataclass(frozen=True)
class Dependence:
    """A shrunk correlation of standardized returns: what the scenarios are drawn with."""

    correlation: torch.Tensor  # [N, N]
    shrinkage: float  # Ledoit-Wolf's intensity towards the identity, in [0, 1]
    days: int  # the returns it was estimated on


@dataclass(frozen=True)
class Measures:
    """One horizon's risk of a position: losses are positive numbers, in the prices' currency."""

    var: list[float]  # per level
    es: list[float]  # per level
    quantiles: list[float]  # the change's quantiles at the asked levels
    contributions: list[list[float]]  # per level, each position's component VaR (they sum to that VaR)


def standardized(closes: torch.Tensor, decay: float = DECAY) -> torch.Tensor:
    """[T + 1, N] closes of common days (oldest first) -> [T, N] each day's log return over the EWMA volatility
    of the returns before it (started from the window's mean square, so the first days are on the same scale)."""
    returns = closes.log().diff(dim=0)
    variance = returns.square().mean(0).clamp_min(1e-12)
    scaled = torch.empty_like(returns)
    for day, row in enumerate(returns):
        scaled[day] = row / variance.sqrt()
        variance = decay * variance + (1 - decay) * row.square()
    return scaled


def shrunk_correlation(scaled: torch.Tensor) -> Dependence:
    """[T, N] standardized returns -> their Ledoit-Wolf covariance (towards a scaled identity), as a correlation.

    The intensity is Ledoit and Wolf's (2004) estimate, as scikit-learn's LedoitWolf computes it: with fewer days
    than tickers the sample correlation is singular, and the shrunk one is still positive definite."""
    days, count = scaled.shape
    centred = scaled - scaled.mean(0)
    covariance = centred.T @ centred / days
    target = covariance.diagonal().mean()
    squares = centred.square()
    beta = ((squares.T @ squares).sum() / days - covariance.square().sum()) / days
    delta = (covariance - target * torch.eye(count, dtype=scaled.dtype)).square().sum()
    shrinkage = float((beta.clamp(max=delta) / delta).clamp(0, 1)) if delta > 0 else 1.0
    shrunk = (1 - shrinkage) * covariance + shrinkage * target * torch.eye(count, dtype=scaled.dtype)
    scale = shrunk.diagonal().sqrt()
    return Dependence(shrunk / scale[:, None] / scale[None, :], shrinkage, days)


def uniforms(dependence: Dependence | None, count: int, scenarios: int, seed: int) -> torch.Tensor:
    """[S, N] uniforms of a Gaussian copula with the dependence's correlation (None: independent tickers)."""
    generator = torch.Generator().manual_seed(seed)
    normals = torch.randn(scenarios, count, generator=generator, dtype=torch.float64)
    if dependence is not None and count > 1:
        jitter = 1e-10 * torch.eye(count, dtype=torch.float64)
        normals = normals @ torch.linalg.cholesky(dependence.correlation.double() + jitter).T
    return torch.special.ndtr(normals).clamp(1e-9, 1 - 1e-9)


def quantile_function(changes: torch.Tensor, levels: torch.Tensor, u: torch.Tensor, shape: float) -> torch.Tensor:
    """Each ticker's change at probabilities `u` [S, N] from its quantiles `changes` [N, Q] at `levels` [Q]
    (increasing): linear between levels; beyond them a generalized Pareto tail of `shape` (>= 0) whose slope at
    the end level is the last segment's."""
    low, high = levels[0], levels[-1]
    u = u.T.contiguous()  # [N, S]
    upper = torch.searchsorted(levels, u).clamp(1, len(levels) - 1)
    lower = upper - 1
    weight = (u - levels[lower]) / (levels[upper] - levels[lower])
    inside = torch.lerp(changes.gather(1, lower), changes.gather(1, upper), weight)  # [N, S]
    below_slope = (changes[:, 1] - changes[:, 0]) / (levels[1] - levels[0])  # [N]
    above_slope = (changes[:, -1] - changes[:, -2]) / (levels[-1] - levels[-2])
    below = changes[:, :1] - low * below_slope[:, None] * _excess(low / u, shape)
    above = changes[:, -1:] + (1 - high) * above_slope[:, None] * _excess((1 - high) / (1 - u), shape)
    return torch.where(u < low, below, torch.where(u > high, above, inside)).T  # [S, N]


def _excess(ratio: torch.Tensor, shape: float) -> torch.Tensor:
    """A generalized Pareto tail's quantile beyond its threshold, per unit of scale: (r^shape - 1) / shape."""
    ratio = ratio.clamp_min(1.0)
    return ratio.log() if shape == 0 else (ratio.pow(shape) - 1) / shape


def measures(changes: torch.Tensor, levels: list[float], quantile_levels: list[float]) -> Measures:
    """[S, N] each position's change per scenario -> VaR, ES and component VaR at `levels`, the total change's
    quantiles at `quantile_levels`."""
    total = changes.sum(1)
    order = total.argsort()
    ranked = total[order]
    count = len(total)
    var, es, contributions = [], [], []
    for level in levels:
        tail = max(1, int(round((1 - level) * count)))  # the scenarios at or beyond the VaR
        loss = -float(ranked[tail - 1])
        var.append(loss)
        es.append(-float(ranked[:tail].mean()))
        near = max(1, int(NEIGHBOURS * count))
        window = order[max(0, tail - 1 - near):tail + near]
        component = -changes[window].mean(0)
        scale = loss / float(component.sum()) if float(component.sum()) != 0 else 0.0
        contributions.append((component * scale).tolist())
    quantiles = torch.quantile(total, torch.tensor(quantile_levels, dtype=total.dtype)).tolist()
    return Measures(var, es, quantiles, contributions)
