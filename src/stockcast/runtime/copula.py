"""A position's joint profit and loss from per-ticker forecast quantiles: tails, dependence, scenarios, measures.

Torch only (it ships in the archive) and shared with the backtest (`stockcast.eval.risk_methods`) and the monitor
(`stockcast.watch.portfolio_risk`), so the served numbers are the backtested and watched ones. The steps:
- marginals: each ticker's quantiles as log changes, linear between the served levels and, beyond the lowest and
  highest, a generalized Pareto tail whose scale continues the quantile function's slope at the last level and
  whose `shape` (0: exponential) was chosen on validation (docs/risk.md);
- dependence: daily log returns over an EWMA volatility (RiskMetrics' 0.94), their correlation shrunk towards
  the identity or the constant-correlation matrix by Ledoit and Wolf's (2004) optimal intensity, a Gaussian or
  Student-t copula;
- scenarios: correlated normals -> uniforms -> each marginal's quantile function -> the position's change;
- measures: VaR and ES per level, the change's quantiles, and each position's component VaR (its mean change in
  the scenarios next to the VaR scenario, scaled so the components sum to the VaR: Euler's allocation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def standardized(closes: torch.Tensor, decay: float = DECAY) -> tuple[torch.Tensor, torch.Tensor]:
    """[T + 1, N] closes of common days (oldest first) -> [T, N] each day's log return over the EWMA volatility
    of the returns before it (started from the window's mean square, so the first days are on the same scale),
    and [N] the volatility after the last day: v_t = decay^t v_0 + (1 - decay) sum_{k < t} decay^(t - 1 - k) r_k^2,
    one matrix product for all days."""
    returns = closes.log().diff(dim=0)
    days = torch.arange(len(returns) + 1, dtype=returns.dtype)
    lags = days[:, None] - 1 - days[None, :-1]  # t - 1 - k
    weights = torch.where(lags >= 0, decay ** lags.clamp_min(0), torch.zeros((), dtype=returns.dtype))
    start = returns.square().mean(0).clamp_min(1e-12)
    volatility = (decay ** days[:, None] * start + (1 - decay) * weights @ returns.square()).sqrt()  # [T + 1, N]
    return returns / volatility[:-1], volatility[-1]


TARGETS = ("identity", "constant")  # what the correlation is shrunk towards


def shrunk_correlation(scaled: torch.Tensor, target: str = "identity") -> Dependence:
    """[T, N] standardized returns -> their covariance shrunk by Ledoit and Wolf's optimal intensity, as a
    correlation. `target` "identity": towards a scaled identity (Ledoit and Wolf 2004, "A well-conditioned
    estimator", as scikit-learn's LedoitWolf computes it); "constant": towards the constant-correlation matrix,
    every pair at the mean sample correlation (Ledoit and Wolf 2004, "Honey, I shrunk the sample covariance
    matrix"), which keeps the level of the tickers' co-movement and shrinks only its dispersion. With fewer days
    than tickers the sample correlation is singular, and the shrunk one is still positive definite."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    days, count = scaled.shape
    identity = torch.eye(count, dtype=scaled.dtype)
    centred = scaled - scaled.mean(0)
    covariance = centred.T @ centred / days
    squares = centred.square()
    pi = (squares.T @ squares) / days - covariance.square()  # the sample covariances' asymptotic variances
    variance = covariance.diagonal()
    if target == "identity":
        goal = variance.mean() * identity
        error = pi.sum() / days
    else:
        spread = variance.clamp_min(1e-300).sqrt()
        correlation = covariance / spread[:, None] / spread[None, :]
        off = ~identity.bool()
        mean = correlation[off].mean() if count > 1 else torch.zeros((), dtype=scaled.dtype)
        goal = torch.where(off, mean * spread[:, None] * spread[None, :], covariance)
        theta = (centred.pow(3).T @ centred) / days - variance[:, None] * covariance  # theta[i, j] = theta_ii,ij
        rho = pi.diagonal().sum() + mean * (spread[None, :] / spread[:, None] * theta)[off].sum()
        error = (pi.sum() - rho) / days
    distance = (covariance - goal).square().sum()
    shrinkage = float((error.clamp(max=distance) / distance).clamp(0, 1)) if distance > 0 else 1.0
    shrunk = (1 - shrinkage) * covariance + shrinkage * goal
    scale = shrunk.diagonal().sqrt()
    moving = scale > 0  # a ticker whose closes never moved: independent of the others
    scale = torch.where(moving, scale, torch.ones((), dtype=scaled.dtype))
    correlation = torch.where(moving[:, None] & moving[None, :], shrunk / scale[:, None] / scale[None, :], identity)
    return Dependence(correlation.fill_diagonal_(1.0), shrinkage, days)


def uniforms(dependence: Dependence | None, count: int, scenarios: int, seed: int,
             df: int | None = None) -> torch.Tensor:
    """[N, S] uniforms (float32: the scenarios' arithmetic needs no more, and runs twice as fast) of a Gaussian
    copula (`df` None) or a Student-t copula of `df` degrees of freedom (2 or 4: their distribution functions have
    closed forms) with the dependence's correlation (None: independent tickers). A t copula's common chi-squared
    draw makes the tickers' extremes come together (tail dependence)."""
    if df is not None and df not in T_CDF:
        raise ValueError(f"a t copula here has 2 or 4 degrees of freedom, got {df}")
    generator = torch.Generator().manual_seed(seed)
    normals = torch.randn(count, scenarios, generator=generator)
    if dependence is not None and count > 1:
        jitter = 1e-10 * torch.eye(count, dtype=torch.float64)
        normals = torch.linalg.cholesky(dependence.correlation.double() + jitter).float() @ normals
    if df is not None:
        mixing = torch.empty(1, scenarios).exponential_(generator=generator) * 2  # chi-squared(2)
        if df == 4:
            mixing = mixing + torch.empty(1, scenarios).exponential_(generator=generator) * 2
        return T_CDF[df](normals / (mixing / df).sqrt()).clamp(1e-7, 1 - 1e-7)
    return torch.special.ndtr(normals).clamp(1e-7, 1 - 1e-7)


T_CDF = {  # Student's t distribution functions in closed form
    2: lambda t: 0.5 + t / (2 * (2 + t.square()).sqrt()),
    4: lambda t: 0.5 + t * (t.square() + 6) / (2 * (t.square() + 4).pow(1.5)),
}


@dataclass(frozen=True)
class Located:
    """Where probabilities [N, S] fall among the levels, worked out once for every horizon's quantiles: the
    segment and the weight within it, and how far into either tail (per unit of the tail's scale; 0 inside)."""

    lower: torch.Tensor  # [N, S] the segment's lower level index
    weight: torch.Tensor  # [N, S] in [0, 1]: where in the segment (0 or 1 in the tails)
    below: torch.Tensor  # [N, S] the lower tail's excess beyond the lowest level, 0 above it
    above: torch.Tensor  # [N, S] the upper tail's excess beyond the highest level, 0 below it
    levels: torch.Tensor  # [Q]

    @classmethod
    def of(cls, levels: torch.Tensor, u: torch.Tensor, shape: float) -> Located:
        """`levels` [Q] increasing; `u` [N, S]; beyond the levels a generalized Pareto tail of `shape` (>= 0)."""
        levels = levels.to(u.dtype)
        steps, last = levels.diff(), len(levels) - 1
        if torch.allclose(steps, steps[0]):  # even levels (every served model's): the segment by arithmetic
            position = ((u - levels[0]) / steps[0]).clamp(0, last)
            lower = position.floor().long().clamp(max=last - 1)
            weight = position - lower
        else:
            lower = torch.searchsorted(levels, u).clamp(1, last) - 1
            weight = ((u - levels[lower]) / steps[lower]).clamp(0, 1)
        return cls(lower, weight, _excess(levels[0] / u, shape), _excess((1 - levels[-1]) / (1 - u), shape), levels)

    def changes(self, grid: torch.Tensor) -> torch.Tensor:
        """Each ticker's value at the located probabilities from its quantiles `grid` [N, Q] at the levels: linear
        between levels; beyond them the tail, its scale continuing the last segment's slope -> [N, S]."""
        grid = grid.to(self.weight.dtype)
        levels = self.levels
        inside = torch.lerp(grid.gather(1, self.lower), grid.gather(1, self.lower + 1), self.weight)
        below = levels[0] * (grid[:, 1] - grid[:, 0]) / (levels[1] - levels[0])  # [N] the tails' scales
        above = (1 - levels[-1]) * (grid[:, -1] - grid[:, -2]) / (levels[-1] - levels[-2])
        return inside - below[:, None] * self.below + above[:, None] * self.above


def _excess(ratio: torch.Tensor, shape: float) -> torch.Tensor:
    """A generalized Pareto tail's quantile beyond its threshold per unit of scale, (r^shape - 1) / shape (log r
    for shape 0), where r = the threshold's tail probability over u's is above 1; 0 where it is not (not in it)."""
    excess = torch.zeros_like(ratio)
    inside = ratio > 1  # a tenth of the scenarios, or less: only they are computed
    tail = ratio[inside]
    excess[inside] = tail.log() if shape == 0 else (tail.pow(shape) - 1) / shape
    return excess


@dataclass(frozen=True)
class Sampler:
    """How a position's scenarios are drawn: how many, and the marginals' tail shape (model-config.yaml's
    `handler.risk`)."""

    scenarios: int = 5_000
    tail_shape: float = 0.0  # the generalized Pareto shape beyond the served levels, chosen on validation
    copula_df: int | None = None  # None: a Gaussian copula; 2 or 4: a Student-t copula, chosen on validation
    shrink_to: str = "identity"  # the correlation's shrinkage target (TARGETS), chosen on validation

    @classmethod
    def configured(cls, settings: Mapping[str, Any]) -> Sampler:
        """From model-config.yaml's `handler.risk` (its other keys are the request's, not the draws')."""
        return cls(**{key: settings[key] for key in ("scenarios", "tail_shape", "copula_df", "shrink_to")
                      if key in settings})

    def draw(self, closes: torch.Tensor, last_closes: torch.Tensor, quantiles: torch.Tensor, levels: torch.Tensor,
             horizons: Sequence[int], seed: int, independent: bool = False) -> tuple[Dependence, list[torch.Tensor]]:
        """The dependence of `closes` [T + 1, N] (common days, oldest first) and, per horizon, [S, N] each
        ticker's price change per share in each scenario (float32), from its forecast `quantiles` [N, H, Q] at
        `levels` and its `last_closes` [N]; `independent`: the same marginals, drawn independently (a backtest's
        peer)."""
        dependence = shrunk_correlation(standardized(closes)[0], self.shrink_to)
        u = uniforms(None if independent else dependence, len(last_closes), self.scenarios, seed,
                     None if independent else self.copula_df)
        located = Located.of(levels, u, self.tail_shape)
        log_changes = (quantiles / last_closes[:, None, None]).log()
        closes = last_closes.float()[:, None]
        return dependence, [(closes * located.changes(log_changes[:, step - 1]).expm1()).T for step in horizons]


def measures(changes: torch.Tensor, shares: torch.Tensor, levels: list[float],
             quantile_levels: list[float]) -> Measures:
    """[S, N] each ticker's change per share and scenario, [N] the shares held -> VaR, ES and component VaR at
    `levels`, the position's change's quantiles at `quantile_levels` (in the changes' precision)."""
    changes = changes * shares.to(changes.dtype)
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
