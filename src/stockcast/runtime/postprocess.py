"""TorchServe's postprocess phase: forecasts -> JSON answers, and errors in TorchServe's shape.

No answer carries a number JSON cannot hold (NaN, Infinity): a forecast that is not finite becomes its own 400.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import torch

from stockcast.runtime.body import BadRequest
from stockcast.runtime.failure import failed
from stockcast.runtime.fields import FULL_ANSWER, AnswerAsk, RiskAsk
from stockcast.runtime.preprocess import Instance, Parsed
from stockcast.runtime.risk import Model


def reply(parsed: Parsed | BadRequest, instances: Sequence[Instance], outputs: Sequence[torch.Tensor | BadRequest],
          risk: Model | None = None) -> tuple[HTTPStatus, dict[str, Any]]:
    """A request's status and JSON answer; `instances` and `outputs`: the batch's, which its items index (an output
    may be its forecast's error); `risk` answers a portfolio's `risk` (None: such a request is a 400). Anything a
    forecast or the risk raises is that forecast's or that request's own error."""
    if isinstance(parsed, BadRequest):
        return parsed.status, error(parsed)
    results = [_answered(item, instances, outputs, parsed.answer) for item in parsed.items]
    if parsed.risk is None:
        return (HTTPStatus.OK, {"predictions": [body for _, body in results]}) if parsed.many else results[0]
    try:
        return HTTPStatus.OK, {"predictions": [body for _, body in results],
                               "risk": _risk(parsed.risk, parsed.items, results, instances, outputs,
                                             risk)}
    except BadRequest as err:
        return err.status, error(err)
    except Exception as err:
        return HTTPStatus.INTERNAL_SERVER_ERROR, error(failed(err, "assessing the portfolio's risk"))


def _answered(item: int | BadRequest, instances: Sequence[Instance], outputs: Sequence[torch.Tensor | BadRequest],
              ask: AnswerAsk) -> tuple[HTTPStatus, dict[str, Any]]:
    """One forecast's status and JSON answer (or error object)."""
    if isinstance(item, BadRequest):
        return item.status, error(item)
    output = outputs[item]
    if isinstance(output, BadRequest):
        return output.status, error(output)
    try:
        return HTTPStatus.OK, answer(instances[item], output, ask)
    except BadRequest as err:
        return err.status, error(err)
    except Exception as err:
        return HTTPStatus.INTERNAL_SERVER_ERROR, error(failed(err, "answering a forecast"))


def _risk(ask: RiskAsk, items: Sequence[int | BadRequest], results: Sequence[tuple[HTTPStatus, dict[str, Any]]],
          instances: Sequence[Instance], outputs: Sequence[torch.Tensor | BadRequest],
          risk: Model | None) -> dict[str, Any]:
    """A portfolio's `risk`, once every one of its forecasts is answered; raises BadRequest otherwise."""
    if risk is None:
        raise BadRequest("this server answers no 'risk'")
    for index, (status, body) in enumerate(results):
        if status != HTTPStatus.OK:
            raise BadRequest(f"instance {index}: {body['message']} (the risk needs every position)")
    answered = [item for item in items if isinstance(item, int)]
    return risk.assess(ask, [instances[item] for item in answered],
                       [output for item in answered if isinstance(output := outputs[item], torch.Tensor)])


def answer(instance: Instance, output: torch.Tensor | Sequence[Any], ask: AnswerAsk = FULL_ANSWER) -> dict[str, Any]:
    """The JSON answer to one instance from its model output ([H], or [H, Q]), carrying what `ask` keeps; raises
    BadRequest if it is not finite, or `ask` names a level or an interval the model does not answer.

    A quantile model's answer adds `quantiles` (level -> [H] prices), `intervals` (the central 80 and
    90 % ranges) and `p_up` (per step, the probability of closing above the last close, read off the
    quantiles: linear between levels, so within [1 - highest level, 1 - lowest level]); its `forecast`
    is the median. A part `ask` keeps nothing of is left out.
    """
    meta = instance.bundle.meta
    values = output.tolist() if isinstance(output, torch.Tensor) else list(output)  # [H], or [H][Q]
    # NaN and infinities survive a sum, and no sum of float32 values overflows a float
    if not math.isfinite(sum(map(sum, values)) if meta.levels else sum(values)):
        raise BadRequest("the forecast for these prices is not a finite number: they are too far from the prices "
                         "this model was trained on")
    body: dict[str, Any] = {"stock": instance.symbol, "model_version": meta.version, "window": meta.window,
                            "horizon": meta.horizon}
    if meta.levels is None:
        body["forecast"] = values
    else:
        labels, median, intervals = _labelled(meta.levels)
        columns = list(map(list, zip(*values, strict=True)))  # [Q][H]
        body["forecast"] = columns[median]
        kept = range(len(labels)) if ask.quantiles is None else _kept_levels(ask.quantiles, labels)
        if kept:
            body["quantiles"] = {labels[index]: columns[index] for index in kept}
        shown = intervals if ask.intervals is None else _kept_intervals(ask.intervals, intervals)
        if shown:
            body["intervals"] = {coverage: {"lower": columns[lower], "upper": columns[upper]}
                                 for coverage, lower, upper in shown}
        if ask.p_up:
            last_close = float(instance.history[-1][0])
            body["p_up"] = [1 - _cdf(last_close, step, meta.levels) for step in values]
    if instance.dates is not None and ask.dates:
        body["dates"] = instance.dates
    if instance.stored is not None:  # by name: what it was forecast from
        body["last_date"], body["stale_sessions"] = instance.stored
        body["last_close"] = float(instance.history[-1][0])
    return body


def _kept_levels(asked: Sequence[float], labels: Sequence[str]) -> list[int]:
    """The indices of the levels `asked`, in the model's order; raises BadRequest for one it does not answer."""
    wanted = {f"{level:g}" for level in asked}
    missing = sorted(wanted - set(labels))
    if missing:
        raise BadRequest(f"'answer.quantiles' asks for {', '.join(missing[:5])}: this model answers the levels "
                         f"{', '.join(labels)}")
    return [index for index, label in enumerate(labels) if label in wanted]


def _kept_intervals(asked: Sequence[int], intervals: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """The central intervals `asked`, of the model's; raises BadRequest for one its levels do not hold."""
    held = {coverage for coverage, _, _ in intervals}
    missing = [coverage for coverage in asked if f"{coverage}" not in held]
    if missing:
        raise BadRequest(f"'answer.intervals' asks for the central {missing[0]} % interval: this model's levels "
                         f"hold {', '.join(sorted(held)) or 'none'}")
    return [interval for interval in intervals if int(interval[0]) in asked]


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
