"""One forecast's fields, checked: its keys, `prices` (closes) with the optional `open`, `high` and `low` of the
same days -> rows of finite float32-sized values, `last_date` -> the next trading sessions.

Each forecast's shape is read on its own (`sent_columns`: which lists, how long); its values are checked with the
batch's other forecasts of the same shape in a few tensor operations (`checked_rows`), by one set of rules:
numbers (not booleans), finite, within float32's range, prices positive and other features (volume) non-negative,
high never below low; then each day's range is widened to hold its open and close (`bars.widen`), as training's
data checks do. A forecast that breaks a rule gets the BadRequest naming its first wrong value.
"""

from __future__ import annotations

import array
import bisect
import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from stockcast.runtime.bars import BAR_FIELDS, widen
from stockcast.runtime.body import BadRequest, json_type, shown

# About 20 years of daily closes: more history than any client needs, and it bounds the work (and
# the memory) one request can cost a worker. TorchServe refuses larger bodies before they get here
# (max_request_size in config.properties).
MAX_PRICES = 5000
# `open`, `high`, `low` (BAR_FIELDS): optional lists as long as `prices`, oldest first; every model checks them,
# the models that read the day's range (features Open, High, Low) need them.
FIELDS = ("prices", "stock", "last_date", *BAR_FIELDS)
# The model computes in float32: a larger input would become infinite there.
FLOAT32_MAX = torch.finfo(torch.float32).max
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_forecast(body: Any, by_name: bool = False) -> dict[str, Any]:
    """A forecast's object: a JSON object with no field but FIELDS, and `prices` unless `by_name` (a price store
    holds the bars: then `stock` alone, or nothing for the default ticker, and no bars without `prices`)."""
    if not isinstance(body, dict):
        raise BadRequest(f'a forecast must be a JSON object like {{"prices": [...]}}, got {json_type(body)}')
    _only_known(body, FIELDS, "field(s)")
    if "prices" not in body and not by_name:
        raise BadRequest(f"'prices' is missing: send {{\"prices\": [close, ...]}}, oldest first "
                         f"(got {', '.join(shown(key) for key in sorted(body)[:10]) or 'no field'}); this server "
                         "holds no price store to forecast a ticker by name")
    if "prices" not in body and any(field in body for field in BAR_FIELDS):
        raise BadRequest("'open', 'high' and 'low' go with the closes in 'prices': send all of them, or only "
                         "'stock' to forecast from the bars the server holds")
    return body


def _only_known(body: dict[str, Any], known: Sequence[str], what: str) -> None:
    """Raises BadRequest naming the first ten keys of `body` not in `known` (`what` they are), sorted."""
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise BadRequest(f"unknown {what} {', '.join(shown(key) for key in unknown[:10])}; "
                         f"expected {', '.join(known)}")


@dataclass(frozen=True)
class Columns:
    """A forecast's columns as sent, each a list of its days' values (oldest first), how a message names a value
    (`labels[k].format(day)`) and whether the column is a price (positive) or another quantity (non-negative)."""

    names: tuple[str, ...]
    lists: tuple[list[Any], ...]
    labels: tuple[str, ...]
    positive: tuple[bool, ...]


def sent_columns(body: dict[str, Any], window: int, features: Sequence[str], is_price: Sequence[bool]) -> Columns:
    """A forecast's `prices` (the closes) and the `open`, `high`, `low` sent, each a list as long as `prices`, or
    the older form, one list of the model's feature values per day; raises BadRequest where the shape is wrong."""
    prices = body["prices"]
    if not isinstance(prices, list):
        raise BadRequest(f"'prices' must be a list, got {json_type(prices)}")
    if len(prices) > MAX_PRICES:
        raise BadRequest(f"'prices' has {len(prices)} values; at most {MAX_PRICES} are accepted")
    if len(prices) < window:
        raise BadRequest(f"'prices' has {len(prices)} values; this model needs at least {window} (its window)")
    if len(features) > 1 and prices and all(isinstance(value, list) for value in prices):
        return _per_day(prices, features, is_price)
    sent, labels = {"Close": prices}, {"Close": "prices[{}]"}
    for field, name in BAR_FIELDS.items():
        values = body.get(field)
        if values is None:
            continue
        if not isinstance(values, list) or len(values) != len(prices):
            got = f"{len(values)} values" if isinstance(values, list) else json_type(values)
            raise BadRequest(f"'{field}' must be a list as long as 'prices' ({len(prices)} values), got {got}")
        sent[name], labels[name] = values, f"{field}[{{}}]"
    missing = [name for name in features if name not in sent]
    if missing:
        wanted = [field for field, name in BAR_FIELDS.items() if name in missing]
        if len(wanted) < len(missing):
            raise BadRequest(f"prices[0] must be a list of {len(features)} values ({', '.join(features)}): this "
                             "model reads them per day")
        raise BadRequest(f"{', '.join(map(repr, wanted))} missing: this model reads each day's open, high and low; "
                         f"send them as lists as long as 'prices', oldest first")
    return Columns(tuple(sent), tuple(sent.values()), tuple(labels.values()), (True,) * len(sent))


def _per_day(prices: list[list[Any]], features: Sequence[str], is_price: Sequence[bool]) -> Columns:
    """The older form's columns: each day's list holds one value per feature of the model."""
    for day, values in enumerate(prices):
        if len(values) != len(features):
            raise BadRequest(f"prices[{day}] must be a list of {len(features)} values ({', '.join(features)})")
    return Columns(tuple(features), tuple(list(column) for column in zip(*prices, strict=True)),
                   tuple(f"prices[{{}}] {name}" for name in features), tuple(bool(flag) for flag in is_price))


def checked_rows(sent: Sequence[Columns], features: Sequence[Sequence[str]]) -> list[torch.Tensor | BadRequest]:
    """Each forecast's [L, F] float64 rows of its model's `features`, or the BadRequest naming its first wrong
    value; the forecasts of one shape are checked together."""
    results: list[torch.Tensor | BadRequest] = [BadRequest("unchecked")] * len(sent)
    groups: dict[tuple, list[int]] = {}
    for index, (columns, wanted) in enumerate(zip(sent, features, strict=True)):
        key = (columns.names, columns.positive, len(columns.lists[0]), tuple(wanted))
        groups.setdefault(key, []).append(index)
    for (_, _, _, wanted), indices in groups.items():
        values = _values([sent[index].lists for index in indices])
        if values is None and len(indices) > 1:  # a value that is no number: each forecast on its own, to find it
            for index in indices:
                results[index] = checked_rows([sent[index]], [wanted])[0]
        elif values is None:
            results[indices[0]] = _not_a_number(sent[indices[0]]) or BadRequest("a value is not a number")
        else:
            for index, checked in zip(indices, _checked(values, [sent[index] for index in indices], wanted),
                                      strict=True):
                results[index] = checked
    return results


def _values(forecasts: Sequence[Sequence[list[Any]]]) -> torch.Tensor | None:
    """[N, K, L] float64 of N forecasts' K columns of L values each (the same K and L for all); None if any value
    is no number (a boolean converts: `_checked` finds it)."""
    flat = array.array("d")
    try:  # C's conversion of each number, as float() does it
        for lists in forecasts:
            for values in lists:
                flat.fromlist(values)
    except (TypeError, OverflowError):
        return None
    return torch.frombuffer(flat, dtype=torch.float64).view(len(forecasts), len(forecasts[0]), -1)  # sharing it


def _checked(values: torch.Tensor, sent: Sequence[Columns], features: Sequence[str]) -> list[torch.Tensor | BadRequest]:
    """N forecasts' [N, K, L] columns (all of `sent[0]`'s names) -> each one's [L, F] rows of `features`, widened,
    or its BadRequest."""
    first = sent[0]
    positive = torch.tensor(first.positive)[None, :, None]  # [1, K, 1]
    wrong = {"is not finite": ~values.isfinite(),  # NaN and Infinity, which json reads
             f"is beyond float32's range ({FLOAT32_MAX:.3g})": values.abs() > FLOAT32_MAX,
             "must be positive": positive & (values <= 0), "must be non-negative": ~positive & (values < 0)}
    columns = dict(zip(first.names, values.unbind(1), strict=True))  # name -> [N, L]
    inverted = columns["High"] < columns["Low"] if "High" in columns and "Low" in columns \
        else torch.zeros(values.shape[0], values.shape[2], dtype=torch.bool)
    maybe_boolean = ((values == 0) | (values == 1)).flatten(1).any(dim=1).tolist()  # True and False read as 1, 0
    bad = (torch.stack(list(wrong.values())).flatten(2).any(dim=(0, 2)) | inverted.any(dim=1)).tolist()
    held = [columns[name] for name in ("Close", "Open") if name in columns]
    if "High" in columns and "Low" in columns:
        columns["High"], columns["Low"] = widen(columns["High"], columns["Low"], held, torch.maximum, torch.minimum)
    rows = torch.stack([columns[name] for name in features], dim=-1).unbind()  # [N] of [L, F]
    results: list[torch.Tensor | BadRequest] = []
    for index, forecast in enumerate(sent):
        problem: BadRequest | None = _not_a_number(forecast) if maybe_boolean[index] else None
        if problem is None and bad[index]:
            problem = _first_wrong(forecast, {rule: mask[index] for rule, mask in wrong.items()}, inverted[index])
        results.append(rows[index] if problem is None else problem)
    return results


def _first_wrong(forecast: Columns, wrong: dict[str, torch.Tensor], inverted: torch.Tensor) -> BadRequest:
    """The message of the first value (column by column, day by day) a rule refuses, else of the first day whose
    high is below its low. `wrong`: rule -> [K, L] values it refuses, the first rule first where several do."""
    found = [(*position, order, rule) for order, (rule, mask) in enumerate(wrong.items())
             for position in mask.nonzero().tolist()]
    if found:
        column, day, _, rule = min(found)
        value = forecast.lists[column][day]
        got = f"got {float(value):g}" if rule.startswith("must") else shown(value)
        return BadRequest(f"{forecast.labels[column].format(day)} {rule}{', ' if rule.startswith('must') else ': '}"
                          f"{got}")
    day = int(inverted.nonzero()[0])
    high, low = (forecast.lists[forecast.names.index(name)][day] for name in ("High", "Low"))
    return BadRequest(f"high[{day}] ({high:g}) is below low[{day}] ({low:g})")


def _not_a_number(forecast: Columns) -> BadRequest | None:
    """The first value that is no JSON number (a boolean, a string, null, a list...) or an integer too large for a
    float; None if there is none (the tensor rules judge the rest)."""
    for column, label in zip(forecast.lists, forecast.labels, strict=True):
        for day, value in enumerate(column):
            if type(value) not in (int, float):
                return BadRequest(f"{label.format(day)} is not a number: {shown(value)}")
            if type(value) is int and abs(value) > FLOAT32_MAX and _overflows(value):
                return BadRequest(f"{label.format(day)} is not finite: {shown(value)}")
    return None


def _overflows(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    return False


def read_dates(last_date: Any, sessions: Sequence[str], horizon: int) -> list[str]:
    """The `horizon` trading sessions after `last_date`, from the calendar stored at archive time."""
    if not isinstance(last_date, str) or not _ISO_DATE.fullmatch(last_date):
        raise BadRequest(f"last_date {shown(last_date)} is not a date in YYYY-MM-DD form")
    try:
        dt.date.fromisoformat(last_date)
    except ValueError as err:
        raise BadRequest(f"last_date {last_date!r} is not a valid date ({err})") from None
    start = bisect.bisect_right(sessions, last_date)
    dates = list(sessions[start:start + horizon])
    if not sessions or last_date < sessions[0] or len(dates) < horizon:
        span = f"{sessions[0]}..{sessions[-1]}" if sessions else "none"
        raise BadRequest(f"last_date {last_date} is outside the trading calendar stored in this archive "
                         f"(sessions {span}); archive the model again to extend it")
    return dates


RISK_LEVELS = (0.99, 0.975)
RISK_HORIZONS = (1, 10)
RISK_FIELDS = ("positions", "levels", "horizons")
MAX_SHARES = 1e12  # a position's size bound: its value and losses stay finite numbers
RISK_DAYS = 250  # the most daily returns a portfolio's dependence is estimated on: a year's (by name: the store's)


@dataclass(frozen=True)
class RiskAsk:
    """A request's `risk`, read: the shares per instance, the VaR levels and the horizons (trading days)."""

    positions: tuple[float, ...]
    levels: tuple[float, ...] = RISK_LEVELS
    horizons: tuple[int, ...] = RISK_HORIZONS


def read_risk(value: Any, count: int) -> RiskAsk:
    """A request's `risk` object for `count` instances; raises BadRequest naming the field that is wrong."""
    if not isinstance(value, dict):
        raise BadRequest(f"'risk' must be an object like {{\"positions\": [100, -50]}}, got {json_type(value)}")
    _only_known(value, RISK_FIELDS, "'risk' field(s)")
    positions = value.get("positions")
    if not isinstance(positions, list) or len(positions) != count or not all(
            _finite(item) and abs(item) <= MAX_SHARES for item in positions):
        raise BadRequest(f"'positions' must be a list of {count} finite numbers (shares per instance, in order; "
                         f"negative: short; at most {MAX_SHARES:g} in size), got {shown(positions)}")
    if not any(positions):
        raise BadRequest("'positions' are all zero: a position holds at least one share")
    levels = value.get("levels", list(RISK_LEVELS))
    if not isinstance(levels, list) or not 1 <= len(levels) <= 10 or not all(
            _finite(level) and 0.5 < level < 1 for level in levels) or len(set(levels)) < len(levels):
        raise BadRequest(f"'levels' must be 1 to 10 different numbers between 0.5 and 1 (exclusive), "
                         f"got {shown(levels)}")
    horizons = value.get("horizons", list(RISK_HORIZONS))
    if not isinstance(horizons, list) or not 1 <= len(horizons) <= 10 or not all(
            isinstance(step, int) and not isinstance(step, bool) and step >= 1 for step in horizons) \
            or len(set(horizons)) < len(horizons):
        raise BadRequest(f"'horizons' must be 1 to 10 different whole numbers of trading days from 1, "
                         f"got {shown(horizons)}")
    return RiskAsk(tuple(map(float, positions)), tuple(map(float, levels)), tuple(horizons))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


ANSWER_FIELDS = ("quantiles", "intervals", "p_up", "dates")
COVERAGES = (80, 90)  # the central intervals an answer may carry, where the model's levels hold their ends


@dataclass(frozen=True)
class AnswerAsk:
    """What a request asks each forecast's answer to carry beside its median `forecast` (and the labels: `stock`,
    `model_version`, ..., a by-name forecast's `last_date`): None, or True, keeps all of a part."""

    quantiles: tuple[float, ...] | None = None  # the levels kept, of the model's (none: an empty tuple)
    intervals: tuple[int, ...] | None = None  # the central intervals kept, of COVERAGES
    p_up: bool = True
    dates: bool = True


FULL_ANSWER = AnswerAsk()


def read_answer(value: Any) -> AnswerAsk:
    """A request's `answer` object; raises BadRequest naming the field that is wrong."""
    if not isinstance(value, dict):
        raise BadRequest("'answer' must be an object like {\"quantiles\": [], \"intervals\": [80], \"p_up\": false}, "
                         f"got {json_type(value)}")
    _only_known(value, ANSWER_FIELDS, "'answer' field(s)")
    quantiles, intervals = value.get("quantiles"), value.get("intervals")
    if quantiles is not None and (not isinstance(quantiles, list) or len(quantiles) > 100 or not all(
            _finite(level) and 0 < level < 1 for level in quantiles)):
        raise BadRequest(f"'answer.quantiles' must be a list of the model's quantile levels (between 0 and 1; [] for "
                         f"none), got {shown(quantiles)}")
    if intervals is not None and (not isinstance(intervals, list) or not all(
            isinstance(coverage, int) and not isinstance(coverage, bool) and coverage in COVERAGES
            for coverage in intervals)):
        raise BadRequest(f"'answer.intervals' must be a list of central intervals' coverages, of "
                         f"{', '.join(map(str, COVERAGES))} ([] for none), got {shown(intervals)}")
    for flag in ("p_up", "dates"):
        if not isinstance(value.get(flag, True), bool):
            raise BadRequest(f"'answer.{flag}' must be true or false, got {shown(value[flag])}")
    return AnswerAsk(None if quantiles is None else tuple(map(float, quantiles)),
                     None if intervals is None else tuple(intervals), value.get("p_up", True), value.get("dates", True))
