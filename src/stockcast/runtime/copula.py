"""A position's joint profit and loss from per-ticker forecast quantiles: tails, dependence, scenarios, measures.

Torch only (it ships in the archive) and shared with the backtest (`stockcast.eval.risk_methods`) and the monitor
(`stockcast.watch.portfolio_risk`), which build their `Sampler` from the same settings mapping as the server
(`Sampler.configured`), so the served numbers are the backtested and watched ones. The steps:
- marginals: each ticker's quantiles as log changes, linear between the served levels and, beyond the lowest and
  highest, a generalized Pareto tail in units of a scale that continues the quantile function's slope at the last
  level: the bundle's own, fitted to the net's standardized errors on its training and validation days
  (`Tails`, `stockcast.eval.risk_tail`), or one fixed shape (0: exponential) for a bundle without one;
- volatility: each ticker's spread around its median scaled by (today's EWMA volatility over the marginal's own)
  to the power `reaction` (0: the served marginal as it is), so a shock widens the next day's scenarios;
- dependence: daily log returns over an EWMA volatility (RiskMetrics' 0.94), their correlation (the days equally
  weighted, or the recent ones more: `correlation_decay`) shrunk towards the identity or the constant-correlation
  matrix by Ledoit and Wolf's (2004) optimal intensity, a Gaussian or Student-t copula;
- scenarios: correlated normals -> uniforms -> each marginal's quantile function -> the position's change;
- measures: VaR and ES per level, the change's quantiles, and each position's component VaR (its mean change in
  the scenarios next to the VaR scenario, scaled so the components sum to the VaR: Euler's allocation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

DECAY = 0.94  # the standardizing volatility's EWMA decay (RiskMetrics' daily value)
NEIGHBOURS = 0.005  # component VaR: the share of scenarios either side of the VaR scenario averaged
SPREAD_LEVELS = (0.05, 0.95)  # the 1-day marginal's spread the volatility reaction compares with today's EWMA one


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


def shrunk_correlation(scaled: torch.Tensor, target: str = "identity", decay: float | None = None) -> Dependence:
    """[T, N] standardized returns -> their covariance shrunk by Ledoit and Wolf's optimal intensity, as a
    correlation. `target` "identity": towards a scaled identity (Ledoit and Wolf 2004, "A well-conditioned
    estimator", as scikit-learn's LedoitWolf computes it); "constant": towards the constant-correlation matrix,
    every pair at the mean sample correlation (Ledoit and Wolf 2004, "Honey, I shrunk the sample covariance
    matrix"), which keeps the level of the tickers' co-movement and shrinks only its dispersion. With fewer days
    than tickers the sample correlation is singular, and the shrunk one is still positive definite. `decay`: day
    t of T weighs decay^(T - 1 - t) (the rows scaled by its square root, mean weight 1), so a stress's days raise
    the correlation at once; None: every day alike."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    days, count = scaled.shape
    if decay is not None:
        weights = decay ** torch.arange(days - 1, -1, -1, dtype=scaled.dtype)
        scaled = scaled * (weights / weights.mean()).sqrt()[:, None]
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
class Tails:
    """Each ticker's generalized Pareto tails beyond its lowest and highest served level, per horizon: [N, H, 2
    sides (lower, upper), 3] of (shape, scale, rate). The excess beyond the last level, in units of the scale that
    continues the last segment's slope, at a probability u deeper than `rate` is scale * ((rate / u)^shape - 1) /
    shape (scale * log(rate / u) for shape 0); `rate`: how often the net's outcomes fell beyond that level (the
    level itself where it is right). (0, 1, level) on both sides is the exponential tail."""

    parameters: torch.Tensor  # [N, H, 2, 3]

    @classmethod
    def of(cls, fitted: Sequence[Mapping[str, Any] | None], horizon: int, levels: torch.Tensor,
           shape: float = 0.0) -> Tails:
        """From each ticker's bundle's `risk_tail` (metadata.json: {"lower"|"upper": {"shape", "scale", "rate":
        [H]}}), or None: a tail of `shape`, scale 1, at the served level's own rate (a bundle fitted none, or the
        settings ask for the fixed shape)."""
        fixed = torch.tensor([[shape, 1.0, float(levels[0])], [shape, 1.0, 1 - float(levels[-1])]],
                             dtype=torch.float64)
        rows = []
        for found in fitted:
            if found is None:
                rows.append(fixed.expand(horizon, 2, 3))
                continue
            sides = [torch.tensor([found[side][key][:horizon] for key in ("shape", "scale", "rate")],
                                  dtype=torch.float64).T for side in ("lower", "upper")]
            rows.append(torch.stack(sides, dim=1))
        return cls(torch.stack(rows))


@dataclass(frozen=True)
class Located:
    """Where probabilities [N, S] fall among the levels, worked out once for every horizon's quantiles: the
    segment and the weight within it, and which of them lie beyond the lowest or highest level (a tenth of the
    scenarios, or less: only they are carried into the tails)."""

    lower: torch.Tensor  # [N, S] the segment's lower level index
    weight: torch.Tensor  # [N, S] in [0, 1]: where in the segment (0 or 1 in the tails)
    below: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # the lower tail's (ticker, scenario, u)
    above: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # the upper tail's (ticker, scenario, 1 - u)
    levels: torch.Tensor  # [Q]

    @classmethod
    def of(cls, levels: torch.Tensor, u: torch.Tensor) -> Located:
        """`levels` [Q] increasing; `u` [N, S]."""
        levels = levels.to(u.dtype)
        steps, last = levels.diff(), len(levels) - 1
        if torch.allclose(steps, steps[0]):  # even levels (every served model's): the segment by arithmetic
            position = ((u - levels[0]) / steps[0]).clamp(0, last)
            lower = position.floor().long().clamp(max=last - 1)
            weight = position - lower
        else:
            lower = torch.searchsorted(levels, u).clamp(1, last) - 1
            weight = ((u - levels[lower]) / steps[lower]).clamp(0, 1)
        (low_ticker, low_scenario), (high_ticker, high_scenario) = ((u < levels[0]).nonzero(as_tuple=True),
                                                                    (u > levels[-1]).nonzero(as_tuple=True))
        return cls(lower, weight, (low_ticker, low_scenario, u[low_ticker, low_scenario]),
                   (high_ticker, high_scenario, 1 - u[high_ticker, high_scenario]), levels)

    def changes(self, grid: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        """Each ticker's value at the located probabilities from its quantiles `grid` [N, Q] at the levels: linear
        between levels; beyond them its tails [N, 2, 3] (one horizon of `Tails.parameters`) -> [N, S]."""
        grid = grid.to(self.weight.dtype)
        tails = tails.to(grid.dtype)
        levels = self.levels
        values = torch.lerp(grid.gather(1, self.lower), grid.gather(1, self.lower + 1), self.weight)
        below = levels[0] * (grid[:, 1] - grid[:, 0]) / (levels[1] - levels[0])  # [N] the tails' units
        above = (1 - levels[-1]) * (grid[:, -1] - grid[:, -2]) / (levels[-1] - levels[-2])
        for (ticker, scenario, probability), unit, side, sign in ((self.below, below, 0, -1.0),
                                                                  (self.above, above, 1, 1.0)):
            shape, scale, rate = tails[ticker, side].unbind(-1)
            values[ticker, scenario] += sign * unit[ticker] * scale * _excess(rate / probability, shape)
        return values


def _excess(ratio: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """A generalized Pareto tail's quantile beyond its threshold per unit of scale, (r^shape - 1) / shape (log r
    for shape 0), where r = the threshold's tail probability over u's; 0 where r <= 1 (not beyond it)."""
    logs = ratio.clamp_min(1).log()
    safe = torch.where(shape == 0, torch.ones_like(shape), shape)
    return torch.where(shape == 0, logs, torch.expm1(shape * logs) / safe)


@dataclass(frozen=True)
class Sampler:
    """How a position's scenarios are drawn, every setting chosen on validation by `make risk`
    (docs/risk.md): model-config.yaml's `handler.risk`, read by the server, the monitor and the backtest alike
    through `configured`."""

    scenarios: int = 5_000
    fitted_tail: bool = True  # the bundle's fitted tails where it has them (Tails.of); else `tail_shape`'s
    tail_shape: float = 0.0  # the generalized Pareto shape beyond the served levels of a bundle without its own
    reaction: float = 0.0  # the spread's power of today's EWMA volatility over the marginal's (0: as served)
    copula_df: int | None = None  # None: a Gaussian copula; 2 or 4: a Student-t copula
    shrink_to: str = "identity"  # the correlation's shrinkage target (TARGETS)
    correlation_decay: float | None = None  # the correlation's weight decay per day back (None: equal weights)
    min_days: int = 20  # the fewest common returns the dependence is estimated on (the most: fields.RISK_DAYS)

    @classmethod
    def configured(cls, settings: Mapping[str, Any] | None) -> Sampler:
        """From a settings mapping, model-config.yaml's `handler.risk` (each key optional; unknown keys are
        refused: a misspelt setting would silently keep its default)."""
        settings = dict(settings or {})
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise ValueError(f"unknown risk setting(s) {unknown}; known: {sorted(names)}")
        return cls(**settings)

    def draw(self, closes: torch.Tensor, last_closes: torch.Tensor, quantiles: torch.Tensor, levels: torch.Tensor,
             horizons: Sequence[int], seed: int, fitted: Sequence[Mapping[str, Any] | None] | None = None,
             independent: bool = False) -> tuple[Dependence, list[torch.Tensor]]:
        """The dependence of `closes` [T + 1, N] (common days, oldest first) and, per horizon, [S, N] each
        ticker's price change per share in each scenario (float32), from its forecast `quantiles` [N, H, Q] at
        `levels`, its `last_closes` [N] and its bundle's fitted tails (`fitted`, per ticker: metadata.json's
        `risk_tail` or None; None: none has one); `independent`: the same marginals, drawn independently (a
        backtest's peer)."""
        scaled, today = standardized(closes)
        dependence = shrunk_correlation(scaled, self.shrink_to, self.correlation_decay)
        u = uniforms(None if independent else dependence, len(last_closes), self.scenarios, seed,
                     None if independent else self.copula_df)
        located = Located.of(levels, u)
        horizon = quantiles.shape[1]
        own = fitted if fitted is not None and self.fitted_tail else [None] * len(last_closes)
        tails = Tails.of(own, horizon, levels, self.tail_shape).parameters
        log_changes = (quantiles / last_closes[:, None, None]).log()
        if self.reaction:
            log_changes = self.reacted(log_changes, levels, today)
        closes = last_closes.float()[:, None]
        return dependence, [(closes * located.changes(log_changes[:, step - 1], tails[:, step - 1]).expm1()).T
                            for step in horizons]

    def reacted(self, log_changes: torch.Tensor, levels: torch.Tensor, today: torch.Tensor) -> torch.Tensor:
        """[N, H, Q] log-change quantiles spread around each median by (today's EWMA volatility `today` [N] over
        the 1-day marginal's, read off its 5 and 95 % quantiles as a normal's) ** reaction."""
        low, high = (int(torch.argmin((levels - level).abs())) for level in SPREAD_LEVELS)
        middle = int(torch.argmin((levels - 0.5).abs()))
        z = 2 * torch.special.ndtri(levels[high].to(log_changes.dtype))
        served = (log_changes[:, 0, high] - log_changes[:, 0, low]) / z  # [N]
        ratio = torch.where(served > 0, today.to(served.dtype) / served.clamp_min(1e-12), torch.ones_like(served))
        factor = ratio.clamp(0.2, 5.0).pow(self.reaction)[:, None, None]
        median = log_changes[:, :, middle:middle + 1]
        return median + factor * (log_changes - median)


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
