"""A portfolio's risk: its VaR, ES, profit-and-loss quantiles and component VaR.

`{"instances": [...], "risk": {"positions": [...], "levels": [0.99, 0.975], "horizons": [1, 10]}}`: the shares
held per instance (negative: short). The marginals are the instances' own forecasts; the dependence is estimated
from their bars, aligned by date through each ticker's exchange sessions from `last_date` backwards
(`stockcast.runtime.copula` does the arithmetic). Any field wrong is the whole request's 400 naming it: the risk
needs every position.
"""

from __future__ import annotations

import bisect
import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from stockcast.runtime import copula
from stockcast.runtime.body import BadRequest
from stockcast.runtime.fields import RISK_DAYS, RiskAsk
from stockcast.runtime.preprocess import Batch, Instance, Parsed
from stockcast.runtime.routing import Portfolio

PNL_LEVELS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99)


@dataclass(frozen=True)
class Model:
    """The served risk model: the archive's calendar and how the scenarios are drawn (model-config's
    `handler.risk`, through `copula.Sampler.configured` as the monitor and the backtest read it)."""

    portfolio: Portfolio
    sampler: copula.Sampler = copula.Sampler()

    @classmethod
    def configured(cls, portfolio: Portfolio, settings: Mapping[str, Any] | None) -> Model:
        """From model-config.yaml's `handler.risk` (copula.Sampler's fields, each optional)."""
        return cls(portfolio, copula.Sampler.configured(settings))

    def described(self) -> dict[str, Any]:
        """What the management description says of it."""
        df = self.sampler.copula_df
        return {"scenarios": self.sampler.scenarios, "tail_shape": self.sampler.tail_shape,
                "fitted_tail": self.sampler.fitted_tail, "reaction": self.sampler.reaction,
                "copula": "gaussian" if df is None else f"student-t, {df} degrees of freedom",
                "shrink_to": self.sampler.shrink_to, "correlation_decay": self.sampler.correlation_decay,
                "min_days": self.sampler.min_days, "max_days": RISK_DAYS}

    def check(self, ask: RiskAsk, instances: Sequence[Instance]) -> None:
        """What a portfolio's `risk` needs of its forecasts before any is computed: quantile forecasts at the
        same levels, the horizons they reach, a `last_date` on each; raises BadRequest naming what is wrong."""
        _levels(instances)
        horizon = min(instance.bundle.meta.horizon for instance in instances)
        if max(ask.horizons) > horizon:
            raise BadRequest(f"'horizons' reach {max(ask.horizons)} trading days; these models forecast 1 to "
                             f"{horizon}")
        for index, instance in enumerate(instances):
            if instance.last_date is None:
                raise BadRequest(f"instance {index} ({instance.symbol}) has no 'last_date': the risk aligns the "
                                 "tickers' bars by date")

    def assess(self, ask: RiskAsk, instances: Sequence[Instance], outputs: Sequence[torch.Tensor]) -> dict[str, Any]:
        """The answer's `risk` for a portfolio's forecasts (every one valid and `check`ed), in the contract's
        keys."""
        levels = _levels(instances)
        closes, first, last = self.common_closes(instances)
        last_closes = torch.tensor([float(instance.history[-1, 0]) for instance in instances], dtype=torch.float64)
        quantiles = torch.stack([output.double() for output in outputs])  # [N, H, Q] prices
        seed = _seed(ask, last_closes, quantiles)
        fitted = [instance.bundle.meta.risk_tail for instance in instances]
        dependence, changes = self.sampler.draw(closes, last_closes, quantiles, levels, ask.horizons, seed, fitted)
        shares = torch.tensor(ask.positions, dtype=torch.float64)
        per_horizon = [copula.measures(step, shares, list(ask.levels), list(PNL_LEVELS)) for step in changes]
        exchanges = sorted({instance.ticker.exchange or "unknown" for instance in instances})
        described = self.described()
        own = self.sampler.fitted_tail and any(tail is not None for tail in fitted)
        decay = self.sampler.correlation_decay
        method = {"copula": described["copula"], "scenarios": self.sampler.scenarios, "seed": seed,
                  "dependence": {"estimator": f"Ledoit-Wolf shrunk correlation (towards the {self.sampler.shrink_to} "
                                              "target) of daily log returns over their EWMA volatility (decay "
                                              f"{copula.DECAY}), "
                                              + ("the days equally weighted" if decay is None else
                                                 f"the days weighted by {decay} per day back"),
                                 "days": dependence.days, "first_day": first, "last_day": last,
                                 "shrinkage": round(dependence.shrinkage, 4)},
                  "marginals": {"served_levels": [float(levels[0]), float(levels[-1])],
                                "tail": "generalized Pareto, fitted to the model's errors" if own else
                                        "generalized Pareto", "tail_shape": self.sampler.tail_shape,
                                "volatility_reaction": self.sampler.reaction},
                  "exchanges": exchanges}
        if len(exchanges) > 1:
            method["currencies"] = ("tickers of several exchanges: each position's value is in its own currency "
                                    "and they are added as they are (no conversion: out of scope)")
        if not all(math.isfinite(number) for step in per_horizon for number in (*step.var, *step.es, *step.quantiles)):
            raise BadRequest("the risk of these forecasts is not a finite number: their prices are too far from the "
                             "prices these models were trained on")
        return {"value": float((shares * last_closes).sum()), "horizons": list(ask.horizons),
                "levels": list(ask.levels),
                "var": {f"{level:g}": [step.var[k] for step in per_horizon] for k, level in enumerate(ask.levels)},
                "es": {f"{level:g}": [step.es[k] for step in per_horizon] for k, level in enumerate(ask.levels)},
                "pnl_quantiles": {f"{level:g}": [step.quantiles[k] for step in per_horizon]
                                  for k, level in enumerate(PNL_LEVELS)},
                "contributions": {f"{level:g}": [step.contributions[k] for step in per_horizon]
                                  for k, level in enumerate(ask.levels)},
                "method": method}

    def common_closes(self, instances: Sequence[Instance]) -> tuple[torch.Tensor, str, str]:
        """[T + 1, N] the instances' closes on the last days all of them traded (by their exchanges' sessions, from
        each one's `last_date` backwards, every row sent: at most RISK_DAYS returns), the first and last day."""
        spans: list[tuple[list[float], Sequence[str]]] = []  # each instance's closes and their days
        for instance in instances:
            assert instance.last_date is not None  # `check`ed
            sessions = instance.ticker.sessions
            end = bisect.bisect_right(sessions, instance.last_date)
            closes = (instance.history if instance.rows is None else instance.rows)[:, 0].tolist()
            days = sessions[max(0, end - len(closes)):end]
            spans.append((closes[len(closes) - len(days):], days))
        count = min(len(days) for _, days in spans)
        shortest = list(spans[0][1][-count:])
        # One calendar and one last date (the usual portfolio): the common days are the last `count`, no lookup
        common = shortest if count and all(list(days[-count:]) == shortest for _, days in spans) else []
        if common:
            table = [closes[-len(common):] for closes, _ in spans]
        else:
            dated = [dict(zip(days, closes, strict=True)) for closes, days in spans]
            common = sorted(set.intersection(*(set(days) for days in dated)))
            table = [[days[day] for day in common] for days in dated]
        keep = min(len(common), RISK_DAYS + 1)
        if keep < self.sampler.min_days + 1:
            raise BadRequest(f"the instances' bars share {keep} trading days; the risk needs at least "
                             f"{self.sampler.min_days + 1} common days (send more bars, with matching 'last_date's)")
        return torch.tensor([row[-keep:] for row in table], dtype=torch.float64).T, common[-keep], common[-1]


def checked(batch: Batch, model: Model | None) -> Batch:
    """`batch` with each portfolio whose `risk` fails `Model.check` (or that no model answers) turned into its 400
    before any forecast is computed; a portfolio with a forecast of its own in error keeps that error."""
    requests: list[Parsed | BadRequest] = []
    for request in batch.requests:
        answered = [] if isinstance(request, BadRequest) else [item for item in request.items if isinstance(item, int)]
        if isinstance(request, Parsed) and request.risk is not None and len(answered) == len(request.items):
            try:
                if model is None:
                    raise BadRequest("this server answers no 'risk'")
                model.check(request.risk, [batch.instances[item] for item in answered])
            except BadRequest as err:
                requests.append(err)
                continue
        requests.append(request)
    return Batch(requests, batch.instances)


def _levels(instances: Sequence[Instance]) -> torch.Tensor:
    """The quantile levels every instance is answered with: the risk reads them all alike."""
    levels = {instance.bundle.meta.levels for instance in instances}
    if None in levels:
        raise BadRequest("the risk needs quantile forecasts: a model here answers a point forecast only")
    if len(levels) > 1:
        raise BadRequest("the risk needs every instance answered with the same quantile levels; these models differ")
    return torch.tensor(levels.pop(), dtype=torch.float64)


def _seed(ask: RiskAsk, last_closes: torch.Tensor, quantiles: torch.Tensor) -> int:
    """The same request draws the same scenarios: a checksum of what it asks and of its forecasts."""
    numbers = [*ask.positions, *ask.levels, *ask.horizons, *last_closes.tolist(), *quantiles.sum((1, 2)).tolist()]
    return zlib.crc32(struct.pack(f"{len(numbers)}d", *numbers))
