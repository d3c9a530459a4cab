"""TorchServe's preprocess phase: a batch's requests -> the forecasts to make, and each request's in order.

A request is a single forecast, `{"stock": "PETR4", "prices": [...]}`, or a portfolio in the KServe v1 shape,
`{"instances": [{...}, ...]}`, answered `{"predictions": [...]}` in order, with the position's `risk` where it
asks (`stockcast.runtime.risk`). `parse_batch` reads each body and each
forecast's fields on its own, then checks the values of the whole batch's forecasts at once
(`fields.checked_rows`): a bad instance of a portfolio gets its own error, never failing the rest.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from stockcast.runtime import fields
from stockcast.runtime.bars import BAR_FIELDS
from stockcast.runtime.body import BadRequest, read_body, shown
from stockcast.runtime.bundle import Bundle
from stockcast.runtime.failure import failed, shared
from stockcast.runtime.routing import Portfolio, Ticker
from stockcast.runtime.store import PriceStore, Stored, Unavailable

# Forecasts one portfolio request may ask for: 500 instances of 100 closes take about 0.5 MB, inside the
# frontend's 1 MiB body limit, and a worker answers them in well under a second.
MAX_INSTANCES = 500


@dataclass(frozen=True)
class Instance:
    """One forecast to make: the rows the model reads and what its answer is labelled with."""

    history: torch.Tensor  # [L, F] raw values (float64), oldest first: the last `context` rows sent (window <= L)
    ticker: Ticker  # the ticker, the bundle answering it and its exchange's sessions
    dates: list[str] | None  # the forecast's trading dates, when the request gave last_date
    stored: tuple[str, int] | None = None  # by name: the store's last bar's date, and the sessions since
    last_date: str | None = None  # the date of the last row, where the request gave it (or the store did)
    rows: torch.Tensor | None = None  # [R, F] every row sent (checked), of which `history` is the tail: a portfolio's
    # risk estimates the tickers' dependence from their closes

    @property
    def symbol(self) -> str:
        return self.ticker.symbol

    @property
    def bundle(self) -> Bundle:
        return self.ticker.bundle


@dataclass(frozen=True)
class Parsed:
    """One request's forecasts, a single one or a portfolio's in order: each its index in `Batch.instances`, or
    its own error."""

    items: tuple[int | BadRequest, ...]
    many: bool  # the portfolio shape: answered {"predictions": [...]}
    risk: fields.RiskAsk | None = None  # a portfolio's `risk`: its position's measures are asked too
    answer: fields.AnswerAsk = fields.FULL_ANSWER  # what each forecast's answer carries


@dataclass(frozen=True)
class Batch:
    """A TorchServe batch's requests, parsed, and every valid forecast among them, in order."""

    requests: list[Parsed | BadRequest]
    instances: list[Instance]


@dataclass(frozen=True)
class _Read:
    """A forecast whose fields are read, its values to be checked with the rest of the batch's."""

    body: dict[str, Any]
    columns: fields.Columns
    ticker: Ticker


def parse_batch(requests: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], portfolio: Portfolio,
                store: PriceStore | None = None) -> Batch:
    """A batch's requests (TorchServe's row and headers each) -> each one's forecasts, or its BadRequest. A
    forecast without `prices` is read from `store`'s bars of its ticker."""
    today = dt.datetime.now(dt.UTC).date()
    outcomes: list[list[_Read | Instance | BadRequest] | BadRequest] = []
    shapes: list[tuple[bool, fields.RiskAsk | None, fields.AnswerAsk]] = []
    for row, headers in requests:
        try:
            forecasts, many, risk, answer = _read_request(row, headers, portfolio, store, today)
            outcomes.append(forecasts)
            shapes.append((many, risk, answer))
        except BadRequest as err:
            outcomes.append(err)
            shapes.append((False, None, fields.FULL_ANSWER))
        except Exception as err:
            outcomes.append(failed(err, "reading the request"))
            shapes.append((False, None, fields.FULL_ANSWER))
    readable = {request: forecasts for request, forecasts in enumerate(outcomes) if isinstance(forecasts, list)}
    pending = [(request, item, forecast) for request, forecasts in readable.items()
               for item, forecast in enumerate(forecasts) if isinstance(forecast, _Read)]
    checked = shared(_checked, [forecast for *_, forecast in pending], "checking the bars")
    for (request, item, forecast), rows in zip(pending, checked, strict=True):
        readable[request][item] = rows if isinstance(rows, BadRequest) else _instance(forecast, rows)
    instances: list[Instance] = []
    parsed: list[Parsed | BadRequest] = []
    for outcome, (many, risk, answer) in zip(outcomes, shapes, strict=True):
        if isinstance(outcome, BadRequest):
            parsed.append(outcome)
            continue
        items: list[int | BadRequest] = []
        for done in outcome:
            if isinstance(done, Instance):
                items.append(len(instances))
                instances.append(done)
            elif isinstance(done, BadRequest):
                items.append(done)
        parsed.append(Parsed(tuple(items), many, risk, answer))
    return Batch(parsed, instances)


def _read_request(row: Mapping[str, Any], headers: Mapping[str, Any], portfolio: Portfolio, store: PriceStore | None,
                  today: dt.date) -> tuple[list[_Read | Instance | BadRequest], bool, fields.RiskAsk | None,
                                           fields.AnswerAsk]:
    """One request's forecasts, read but not checked, whether it is a portfolio, its `risk` and its `answer`, read:
    {"prices": [...], "stock": ..., "last_date": ..., "answer": {...}}, or {"instances": [such objects without
    `answer`], "risk": {...}, "answer": {...}}."""
    body = read_body(row, headers)
    answer = fields.read_answer(body["answer"]) if "answer" in body else fields.FULL_ANSWER
    if "instances" not in body:
        if "risk" in body:
            raise BadRequest("'risk' is a portfolio's: send {\"instances\": [{\"stock\": ...}, ...], \"risk\": "
                             "{\"positions\": [...]}}, even for one ticker")
        forecast = {key: value for key, value in body.items() if key != "answer"}
        return [_read_forecast(forecast, portfolio, store, today)], False, None, answer
    instances = body["instances"]
    if not set(body) <= {"instances", "risk", "answer"}:
        raise BadRequest(f"a portfolio request has only 'instances', 'risk' and 'answer', got "
                         f"{', '.join(map(shown, sorted(body)[:10]))}")
    if not isinstance(instances, list) or not 1 <= len(instances) <= MAX_INSTANCES:
        raise BadRequest(f"'instances' must be a list of 1 to {MAX_INSTANCES} forecasts like "
                         f'{{"stock": "VALE3", "prices": [...]}}, got {shown(instances)}')
    risk = fields.read_risk(body["risk"], len(instances)) if "risk" in body else None
    forecasts: list[_Read | Instance | BadRequest] = []
    for instance in instances:
        try:
            forecasts.append(_read_forecast(instance, portfolio, store, today, risk is not None))
        except BadRequest as err:
            forecasts.append(err)
        except Exception as err:
            forecasts.append(failed(err, "reading a forecast"))
    return forecasts, True, risk, answer


def _read_forecast(body: Any, portfolio: Portfolio, store: PriceStore | None, today: dt.date,
                   risk: bool = False) -> _Read | Instance:
    """One forecast's fields, read; raises BadRequest naming the first thing wrong with their shape. By name: the
    forecast of the store's bars, ready (in a portfolio asking for its `risk`, a year of them, which the dependence
    reads)."""
    body = fields.check_forecast(body, by_name=store is not None)
    ticker = portfolio.ticker(body.get("stock"))
    meta = ticker.bundle.meta
    if "prices" not in body and store is not None:
        days = max(meta.context, fields.RISK_DAYS + 1) if risk else meta.context
        ready = store.stored(ticker.symbol, (ticker.bundle.name, days), functools.partial(_from_store, ticker, days))
        last_date = str(ready.last_date)  # always the last stored bar's
        behind = store.behind(ticker.symbol, last_date, ticker.sessions, today)
        return Instance(ready.history, ticker, ready.dates, (last_date, behind), last_date, ready.rows)
    return _Read(body, fields.sent_columns(body, meta.window, meta.features, ticker.bundle.is_price), ticker)


def _from_store(ticker: Ticker, days: int, stored: Stored) -> Instance:
    """A by-name forecast of the ticker's last `days` stored bars, checked as if they were sent (closes and bars,
    or the older per-day rows of a model reading other features), dated from the last bar's date; raises the
    BadRequest a wrong bar would be."""
    symbol, meta = ticker.symbol, ticker.bundle.meta
    if len(stored.dates) < meta.window:
        raise Unavailable(f"the price store holds {len(stored.dates)} bars of {symbol}; this model needs at least "
                          f"{meta.window}")
    missing = [name for name in meta.features if name not in stored.columns]
    if missing:
        raise Unavailable(f"the price store's bars of {symbol} have no {', '.join(missing)}, which this model reads")
    rows = slice(-days, None)
    sent: dict[str, Any]
    if set(meta.features) <= {"Close", *BAR_FIELDS.values()}:
        sent = {"prices": stored.columns["Close"][rows]} | {
            field: stored.columns[name][rows] for field, name in BAR_FIELDS.items() if name in stored.columns}
    else:
        sent = {"prices": [list(day) for day in zip(*(stored.columns[name][rows] for name in meta.features),
                                                    strict=True)]}
    read = _Read({**sent, "last_date": stored.dates[-1]},
                 fields.sent_columns(sent, meta.window, meta.features, ticker.bundle.is_price), ticker)
    [checked] = _checked([read])
    if isinstance(checked, BadRequest):
        raise checked
    return _dated(read, checked)


def _checked(forecasts: Sequence[_Read]) -> list[torch.Tensor | BadRequest]:
    """The forecasts' rows, checked together (`fields.checked_rows`)."""
    return fields.checked_rows([forecast.columns for forecast in forecasts],
                               [forecast.ticker.bundle.meta.features for forecast in forecasts])


def _instance(forecast: _Read, rows: torch.Tensor) -> Instance | BadRequest:
    """The forecast of checked `rows`, with its dates where it gave `last_date`, or the error of a wrong one."""
    try:
        return _dated(forecast, rows)
    except BadRequest as err:
        return err
    except Exception as err:
        return failed(err, "dating a forecast")


def _dated(forecast: _Read, rows: torch.Tensor) -> Instance:
    """The forecast of checked `rows`, with its dates where it gave `last_date`; raises BadRequest for a wrong
    one."""
    meta, last_date = forecast.ticker.bundle.meta, forecast.body.get("last_date")
    dates = None if last_date is None else fields.read_dates(last_date, forecast.ticker.sessions, meta.horizon)
    return Instance(rows[-meta.context:], forecast.ticker, dates, None, last_date, rows)
