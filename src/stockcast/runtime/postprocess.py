"""Forecasts -> JSON answers, errors in TorchServe's shape, and the management API's description.

Shipped in the archive beside `forecast_handler.py` (torch, the standard library, and the archive's `bundle.py`
for the description's schema). No answer carries a number JSON cannot hold (NaN, Infinity): a forecast that is
not finite becomes its request's own 400.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Any

import torch
from body import BadRequest
from bundle import Described, Description
from fields import MAX_PRICES
from routing import MAX_INSTANCES, Instance, Parsed, Portfolio, Spec

RANGE_METRICS = ("crps", "coverage_80", "coverage_90", "width_80")


def reply(parsed: Parsed | BadRequest, outputs: Iterator[Any]) -> tuple[HTTPStatus, dict[str, Any]]:
    """A request's status and JSON answer; `outputs` yields the model outputs of its Instances in order."""
    if isinstance(parsed, BadRequest):
        return parsed.status, error(parsed)
    results: list[tuple[HTTPStatus, dict[str, Any]]] = []
    for item in parsed.items:
        try:
            if isinstance(item, BadRequest):
                raise item
            results.append((HTTPStatus.OK, answer(item, next(outputs))))
        except BadRequest as err:
            results.append((err.status, error(err)))
    if parsed.many:
        return HTTPStatus.OK, {"predictions": [body for _, body in results]}
    return results[0]


def answer(instance: Instance, output: torch.Tensor | Sequence[Any]) -> dict[str, Any]:
    """The JSON answer to one instance from its model output ([H], or [H, Q]); raises BadRequest if it is not
    finite.

    A quantile model's answer adds `quantiles` (level -> [H] prices), `intervals` (the central 80 and
    90 % ranges) and `p_up` (per step, the probability of closing above the last close, read off the
    quantiles: linear between levels, so within [1 - highest level, 1 - lowest level]); its `forecast`
    is the median.
    """
    meta = instance.spec.meta
    values = output.tolist() if isinstance(output, torch.Tensor) else list(output)  # [H], or [H][Q]
    # NaN and infinities survive a sum, and no sum of float32 values overflows a float
    if not math.isfinite(sum(map(sum, values)) if meta.levels else sum(values)):
        raise BadRequest("the forecast for these prices is not a finite number: they are too far from the prices "
                         "this model was trained on")
    body = {"stock": instance.symbol, "model_version": meta.version, "window": meta.window, "horizon": meta.horizon}
    if meta.levels is None:
        body["forecast"] = values
    else:
        labels, median, intervals = _labelled(meta.levels)
        columns = [list(column) for column in zip(*values, strict=True)]  # [Q][H]
        body["forecast"] = columns[median]
        body["quantiles"] = dict(zip(labels, columns, strict=True))
        body["intervals"] = {coverage: {"lower": columns[lower], "upper": columns[upper]}
                             for coverage, lower, upper in intervals}
        last_close = float(instance.history[-1][0])
        body["p_up"] = [1 - _cdf(last_close, step, meta.levels) for step in values]
    if instance.dates is not None:
        body["dates"] = instance.dates
    return body


@functools.lru_cache(maxsize=64)
def _labelled(levels: tuple[float, ...]) -> tuple[list[str], int, list[tuple[str, int, int]]]:
    """A bundle's constants, computed once: each level's label, the median's index, and the central 80 and 90 %
    intervals (name, lower index, upper index) its levels hold."""
    labels = [f"{level:g}" for level in levels]
    intervals = []
    for coverage in (80, 90):
        lower, upper = (f"{(100 + sign * coverage) / 200:g}" for sign in (-1, 1))  # 80 -> "0.1", "0.9"
        if lower in labels and upper in labels:
            intervals.append((f"{coverage}", labels.index(lower), labels.index(upper)))
    return labels, levels.index(0.5), intervals


def _cdf(value: float, quantiles: Sequence[float], levels: Sequence[float]) -> float:
    """P(close <= value) from increasing quantiles: linear between them, held at the end levels outside."""
    above = bisect.bisect_right(quantiles, value)
    if above == 0:
        return levels[0]
    if above == len(quantiles):
        return levels[-1]
    low, high = quantiles[above - 1], quantiles[above]
    return levels[above - 1] + (levels[above] - levels[above - 1]) * (value - low) / (high - low)


def error(err: BadRequest) -> dict[str, Any]:
    """The JSON answer to a bad request, in TorchServe's own error shape."""
    return {"code": err.status.value, "type": "PredictionException", "message": err.message}


def describe(portfolio: Portfolio) -> Description:
    """`GET /models/<name>?customized=true`: every served ticker, the model answering it, how it was trained
    and how it scored; the default ticker and the request shapes."""
    calendar = portfolio.calendar
    exchanges = {name: {key: value for key, value in exchange.items() if key != "sessions"}
                 for name, exchange in calendar.get("exchanges", {}).items()}
    return Description(
        served_version=portfolio.version,
        default_stock=portfolio.default,
        stocks={symbol: _described(portfolio.specs[name]) for symbol, name in portfolio.members.items()},
        any_ticker=None if portfolio.any_ticker is None else _described(portfolio.specs[portfolio.any_ticker]),
        calendar={**calendar, "exchanges": exchanges},
        request={"stock": f"optional: a served ticker (default {portfolio.default or 'none: name one'}), "
                          "with or without .SA, any case",
                 "prices": f"window to {MAX_PRICES} closes, oldest first; the last `context` are used (the last "
                           "`window` by the network, up to `context` by its volatility estimate: send them all "
                           "for the full estimate)",
                 "open": "optional (required where `features` hold Open, High, Low): the same days' opens, as "
                         "many as `prices`; likewise `high` and `low`",
                 "last_date": "optional YYYY-MM-DD: adds the next trading sessions as 'dates'",
                 "instances": f"a portfolio: up to {MAX_INSTANCES} such objects, answered as 'predictions' in "
                              "order (a bad one gets its own error object)"},
    )


def _described(spec: Spec) -> Described:
    """One bundle as `describe` shows it for each ticker it answers."""
    meta, metrics = spec.meta, spec.meta.metrics
    return Described(
        model_version=meta.version,
        model=meta.symbol,
        answered_by=spec.name,
        pooled_over=list(meta.stocks) if meta.pooled else None,
        window=meta.window,
        context=meta.context,
        horizon=meta.horizon,
        features=list(meta.features),
        quantiles=None if meta.levels is None else list(meta.levels),
        training_data={key: value for key, value in meta.data.items() if key not in ("warnings", "rows")},
        trained=meta.created,
        test_metrics={
            "model": {name: metrics.get(f"test_{name}") for name in ("rmse", "mae", "mape")},
            "naive_last_value": {name: metrics.get(f"naive_{name}") for name in ("rmse", "mae", "mape")},
            "skill_mape": metrics.get("skill_mape"),
        },
        # CRPS (% of the origin's close) and coverage, beside the naive-empirical and EWMA baselines.
        range_metrics={period: {name: metrics.get(f"{prefix}{name}") for name in RANGE_METRICS}
                       | {"skill_crps": metrics.get(skill), "ewma_skill_crps": metrics.get(f"{ewma}skill_crps"),
                          "ewma_coverage_80": metrics.get(f"{ewma}coverage_80")}
                       for period, prefix, skill, ewma in (("validation", "val_", "val_skill_crps", "val_ewma_"),
                                                           ("test", "test_", "skill_crps", "ewma_"))},
        mlflow_run_id=meta.run_id,
    )
