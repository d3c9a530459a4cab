"""One forecast's fields, checked: its keys, `prices` (closes) with the optional `open`, `high` and `low` of the
same days -> rows of finite float32-sized values, `last_date` -> the next trading sessions. Everything wrong
raises `BadRequest` naming the first thing wrong. Valid columns are checked with a few tensor operations, a whole
batch's forecasts at once (`sent_columns`, then `rows_at_once`); anything else value by value (`checked_rows`), for
the message.

Shipped in the archive beside `forecast_handler.py` (torch and the standard library only). The rows'
shape comes from the bundle answering the forecast (`routing.Spec`), handed over as plain values.
"""

from __future__ import annotations

import array
import bisect
import datetime as dt
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from body import BadRequest, json_type, shown
from bundle import BAR_FIELDS

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


def check_forecast(body: Any) -> dict[str, Any]:
    """A forecast's object: a JSON object with `prices` and no field but FIELDS."""
    if not isinstance(body, dict):
        raise BadRequest(f'a forecast must be a JSON object like {{"prices": [...]}}, got {json_type(body)}')
    if "prices" not in body:
        raise BadRequest(f"'prices' is missing: send {{\"prices\": [close, ...]}}, oldest first "
                         f"(got {', '.join(shown(key) for key in sorted(body)[:10]) or 'no field'})")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(shown(key) for key in unknown[:10])}; "
                         f"expected {', '.join(FIELDS)}")
    return body


@dataclass(frozen=True)
class Columns:
    """A forecast's columns as sent (Close, then the bars sent), each a list as long as `prices`: checked with the
    batch's other forecasts at once (`rows_at_once`)."""

    names: tuple[str, ...]
    lists: tuple[list[Any], ...]


def sent_columns(body: dict[str, Any], window: int, features: Sequence[str]) -> Columns | None:
    """A forecast's `prices` (the closes) and `open`, `high`, `low`, once their count is checked (raises BadRequest):
    its Columns where every column the model reads is sent and every column sent is a list as long as `prices`; None
    for anything else (the older form, one list of the model's feature values per day, or a column amiss), which
    `checked_rows` reads value by value."""
    prices = body["prices"]
    if not isinstance(prices, list):
        raise BadRequest(f"'prices' must be a list, got {json_type(prices)}")
    if len(prices) > MAX_PRICES:
        raise BadRequest(f"'prices' has {len(prices)} values; at most {MAX_PRICES} are accepted")
    if len(prices) < window:
        raise BadRequest(f"'prices' has {len(prices)} values; this model needs at least {window} (its window)")
    sent = {"Close": prices} | {name: body[field] for field, name in BAR_FIELDS.items() if body.get(field) is not None}
    if any(name not in sent for name in features) or not all(
            isinstance(values, list) and len(values) == len(prices) for values in sent.values()):
        return None
    return Columns(tuple(sent), tuple(sent.values()))


def rows_at_once(sent: Sequence[Columns], features: Sequence[Sequence[str]]) -> list[torch.Tensor | None]:
    """Each forecast's [L, F] float64 rows of its model's `features`, its columns checked with those of every other
    forecast of the same shape in a few tensor operations: numbers, positive, within float32's range, high never
    below low; the day's range widened to its open and close, as training's data checks do. None where a value is
    wrong: `checked_rows` then names the first."""
    rows: list[torch.Tensor | None] = [None] * len(sent)
    groups: dict[tuple, list[int]] = {}
    for index, (columns, wanted) in enumerate(zip(sent, features, strict=True)):
        groups.setdefault((columns.names, len(columns.lists[0]), tuple(wanted)), []).append(index)
    for (names, _, wanted), indices in groups.items():
        lists = [sent[index].lists for index in indices]
        values = _values(lists)
        if values is None and len(indices) > 1:  # some forecast sent a value that is no number: each on its own
            for index in indices:
                rows[index] = rows_at_once([sent[index]], [wanted])[0]
        elif values is not None:
            for index, checked in zip(indices, _checked(values, names, wanted, lists), strict=True):
                rows[index] = checked
    return rows


def _checked(values: torch.Tensor, names: Sequence[str], features: Sequence[str],
             lists: Sequence[Sequence[list[Any]]]) -> list[torch.Tensor | None]:
    """N forecasts' [N, K, L] columns `names` -> each one's [L, F] rows of `features`, or None where one of its values
    is not positive, beyond float32's range (NaN fails both) or sent as true (which the conversion reads as 1), or
    its high is below its low."""
    lowest, highest = values.flatten(1).aminmax(dim=1)
    good = (lowest > 0) & (highest <= FLOAT32_MAX)
    columns = dict(zip(names, values.unbind(1), strict=True))  # name -> [N, L]
    if "High" in columns and "Low" in columns:
        good &= (columns["High"] >= columns["Low"]).all(dim=1)
    known = [columns[name] for name in ("Close", "Open") if name in columns]
    if "High" in columns:  # the range holds the day's open and close, as `checked_rows` widens it
        columns["High"] = functools.reduce(torch.maximum, known, columns["High"])
    if "Low" in columns:
        columns["Low"] = functools.reduce(torch.minimum, known, columns["Low"])
    rows = torch.stack([columns[name] for name in features], dim=-1).unbind()  # [N] of [L, F]
    ones = (values == 1).flatten(1).any(dim=1).tolist()
    return [checked if ok and not (one and any(value is True for column in sent for value in column)) else None
            for checked, ok, one, sent in zip(rows, good.tolist(), ones, lists, strict=True)]


def _values(forecasts: Sequence[Sequence[list[Any]]]) -> torch.Tensor | None:
    """[N, K, L] float64 of N forecasts' K columns of L values each (the same K and L for all); None if any value
    is no number."""
    flat = array.array("d")
    try:  # C's conversion of each number, as float() does it; anything but a number fails (a boolean passes)
        for lists in forecasts:
            for values in lists:
                flat.fromlist(values)
    except (TypeError, OverflowError):
        return None
    return torch.frombuffer(flat, dtype=torch.float64).view(len(forecasts), len(forecasts[0]), -1)  # sharing it


def checked_rows(body: dict[str, Any], features: Sequence[str], is_price: Sequence[bool]) -> torch.Tensor:
    """[L, F] float64 rows as `rows_at_once` makes them, checked value by value: raises BadRequest naming the first
    thing wrong. `is_price`: per feature, whether it must be positive (a price) or only non-negative (volume)."""
    prices = body["prices"]
    bars = _bars(body, len(prices))
    if len(features) > 1 and prices and all(isinstance(value, list) for value in prices):
        return torch.tensor(_rows(prices, features, is_price), dtype=torch.float64)
    columns = {"Close": [_positive(value, f"prices[{day}]") for day, value in enumerate(prices)]} | bars
    missing = [name for name in features if name not in columns]
    if missing:
        wanted = [field for field, name in BAR_FIELDS.items() if name in missing]
        if len(wanted) < len(missing):
            raise BadRequest(f"prices[0] must be a list of {len(features)} values ({', '.join(features)}): this "
                             "model reads them per day")
        raise BadRequest(f"{', '.join(map(repr, wanted))} missing: this model reads each day's open, high and low; "
                         f"send them as lists as long as 'prices', oldest first")
    if bars:  # the range holds the day's open and close, as in training (data.prices.consistent_bars)
        known = [columns[name] for name in ("Close", "Open") if name in columns]
        if "High" in columns:
            columns["High"] = [max(values) for values in zip(columns["High"], *known, strict=True)]
        if "Low" in columns:
            columns["Low"] = [min(values) for values in zip(columns["Low"], *known, strict=True)]
    return torch.tensor([list(row) for row in zip(*(columns[name] for name in features), strict=True)],
                        dtype=torch.float64)


def _bars(body: dict[str, Any], count: int) -> dict[str, list[float]]:
    """The `open`, `high` and `low` sent: lists of `count` positive numbers, high never below low."""
    bars = {}
    for field, name in BAR_FIELDS.items():
        if body.get(field) is None:
            continue
        values = body[field]
        if not isinstance(values, list) or len(values) != count:
            got = f"{len(values)} values" if isinstance(values, list) else json_type(values)
            raise BadRequest(f"'{field}' must be a list as long as 'prices' ({count} values), got {got}")
        bars[name] = [_positive(value, f"{field}[{day}]") for day, value in enumerate(values)]
    if "High" in bars and "Low" in bars:
        for day, (high, low) in enumerate(zip(bars["High"], bars["Low"], strict=True)):
            if high < low:
                raise BadRequest(f"high[{day}] ({high:g}) is below low[{day}] ({low:g})")
    return bars


def _rows(prices: list[Any], features: Sequence[str], is_price: Sequence[bool]) -> list[list[float]]:
    """The older form: one list of the model's features per day."""
    rows = []
    for day, values in enumerate(prices):
        if len(values) != len(features):
            raise BadRequest(f"prices[{day}] must be a list of {len(features)} values ({', '.join(features)})")
        row = []
        for number, name, price in zip(values, features, is_price, strict=True):
            where = f"prices[{day}] {name}"
            number = _number(number, where)
            if number < 0 or (price and number == 0):
                raise BadRequest(f"{where} must be {'positive' if price else 'non-negative'}, got {number:g}")
            row.append(number)
        rows.append(row)
    return rows


def _positive(value: Any, where: str) -> float:
    number = _number(value, where)
    if number <= 0:
        raise BadRequest(f"{where} must be positive, got {number:g}")
    return number


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


def _number(value: Any, where: str) -> float:
    """A finite float32-sized number from a JSON number; booleans, strings and overflowing numbers are refused."""
    if type(value) not in (int, float):
        raise BadRequest(f"{where} is not a number: {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadRequest(f"{where} is not finite: {shown(value)}")
    if abs(number) > FLOAT32_MAX:
        raise BadRequest(f"{where} is beyond float32's range ({FLOAT32_MAX:.3g}): {shown(value)}")
    return number
