"""Which bundle answers each forecast, and one forward pass per bundle for a batch's forecasts.

Shipped in the archive beside `forecast_handler.py` (torch and the standard library only). A request is a
single forecast, `{"stock": "PETR4", "prices": [...]}`, or a portfolio in the KServe v1 shape,
`{"instances": [{...}, ...]}`, answered `{"predictions": [...]}` in order. `parse_batch` reads each body
(`body.read_body`) and each forecast on its own, then checks the columns of the whole batch's forecasts at once: a
bad instance of a portfolio gets its own error, never failing the rest. `forecast` batches the valid forecasts of
a whole TorchServe batch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import fields
import torch
from body import BadRequest, read_body, shown
from bundle import BundleMeta

# Forecasts one portfolio request may ask for: 500 instances of 100 closes take about 0.5 MB, inside the
# frontend's 1 MiB body limit, and a worker answers them in well under a second.
MAX_INSTANCES = 500
# A ticker a global model answers without listing it: a Yahoo symbol's characters (BRK-B, ^GSPC, VALE3.SA, EURUSD=X).
TICKER = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.\-^=]{0,19}")


@dataclass(frozen=True)
class Spec:
    """One bundle of the archive: its folder, its metadata (read as the training side reads it) and which of its
    net's features are prices."""

    name: str  # its folder in the archive
    meta: BundleMeta
    is_price: tuple[bool, ...]  # per feature: prices must be positive, other features (volume) non-negative

    @classmethod
    def from_metadata(cls, name: str, metadata: Mapping[str, Any], is_price: Sequence[bool]) -> Spec:
        """is_price: per feature, whether it is a price (the net's `is_price` buffer)."""
        return cls(name, BundleMeta.from_dict(metadata), tuple(bool(flag) for flag in is_price))


@dataclass(frozen=True)
class Portfolio:
    """The tickers one archive answers, which bundle answers each, and the requests' default ticker."""

    specs: Mapping[str, Spec]  # bundle name -> its spec
    members: Mapping[str, str]  # ticker -> the bundle answering it
    default: str | None  # the ticker answering requests that name none; None: they must name one
    version: str  # the archive's version: the served set's
    calendar: Mapping[str, Any]  # {"exchanges": {code: {"sessions": [...], ...}}, "stocks": {ticker: code}, ...}
    any_ticker: str | None = None  # the global bundle answering tickers no member names; None: members only

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], specs: Mapping[str, Spec], default_stock: str | None,
                      version: str) -> Portfolio:
        """`manifest`: the archive's portfolio.json; `default_stock`: the serving config's default ticker, which
        answers when it is served (else the only ticker, if there is one)."""
        members = dict(manifest["members"])
        portfolio = cls(specs, members, None, version, manifest.get("calendar", {}), manifest.get("any_ticker"))
        named = portfolio.symbol_named(default_stock) if isinstance(default_stock, str) else None
        return replace(portfolio, default=named or (next(iter(members)) if len(members) == 1 else None))

    def symbol_named(self, name: str) -> str | None:
        """The served ticker that `name` spells: VALE3.SA and VALE3, in any case; None if none."""
        return self._names.get(name.strip().upper())

    @functools.cached_property
    def _names(self) -> dict[str, str]:
        names = {symbol.upper().removesuffix(".SA"): symbol for symbol in self.members}
        return names | {symbol.upper(): symbol for symbol in self.members}

    def sessions(self, symbol: str) -> Sequence[str]:
        """The trading sessions of the ticker's exchange stored at archive time (empty: none stored); a ticker the
        archive does not list trades where its suffix says (the calendar's `suffixes`, else `otherwise`)."""
        calendar = self.calendar
        exchange = calendar.get("stocks", {}).get(symbol) or next(
            (code for suffix, code in calendar.get("suffixes", {}).items() if symbol.endswith(suffix)),
            calendar.get("otherwise"))
        return self.calendar.get("exchanges", {}).get(exchange, {}).get("sessions", [])

    def member(self, stock: Any) -> tuple[str, Spec]:
        """The ticker a request's `stock` names (None: the default) and the spec of the bundle answering it."""
        if stock is None:
            if self.default is None:
                raise BadRequest(f"name the 'stock' to forecast: this model serves {self._served()}")
            symbol = self.default
        else:
            symbol = self.symbol_named(stock) if isinstance(stock, str) else None
            if symbol is None and self.any_ticker is not None and isinstance(stock, str) and \
                    TICKER.fullmatch(stock.strip()):  # spelled as freely as a listed ticker: any case, spaces around
                return stock.strip().upper(), self.specs[self.any_ticker]
            if symbol is None:
                raise BadRequest(f"stock {shown(stock)} has no deployed model: this model serves {self._served()}")
        return symbol, self.specs[self.members[symbol]]

    def _served(self) -> str:
        listed = f"{len(self.members)} ticker(s): {', '.join(list(self.members)[:20])}"
        more = "" if len(self.members) <= 20 else f" and {len(self.members) - 20} more"
        anyone = "; any other Yahoo ticker (letters, digits, '.', '-', '^', '=') from the bars sent" \
            if self.any_ticker else ""
        return listed + more + anyone


@dataclass(frozen=True)
class Instance:
    """One forecast to make: the rows the model reads and what its answer is labelled with."""

    history: torch.Tensor  # [L, F] raw values (float64), oldest first: the last `context` rows sent (window <= L)
    symbol: str
    spec: Spec  # the bundle answering it
    dates: list[str] | None  # the forecast's trading dates, when the request gave last_date


@dataclass(frozen=True)
class Parsed:
    """One request's forecasts: a single one, or a portfolio's in order (each an Instance or its own error)."""

    items: list[Instance | BadRequest]  # (while `parse_batch` reads them, also what was Sent)
    many: bool  # the portfolio shape: answered {"predictions": [...]}


@dataclass(frozen=True)
class Sent:
    """A forecast whose fields are read, its columns to be checked with the rest of the batch's."""

    body: dict[str, Any]
    columns: fields.Columns
    symbol: str
    spec: Spec


def parse(row: Mapping[str, Any], headers: Mapping[str, Any], portfolio: Portfolio) -> Parsed:
    """One request (see `parse_batch`); raises its BadRequest."""
    [parsed] = parse_batch([(row, headers)], portfolio)
    if isinstance(parsed, BadRequest):
        raise parsed
    return parsed


def parse_batch(requests: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
                portfolio: Portfolio) -> list[Parsed | BadRequest]:
    """A batch's requests (TorchServe's row and headers each) -> each one's forecasts, or its BadRequest. Each body
    and each forecast's fields are read on their own, then the columns of every forecast of the batch are checked
    at once (`fields.rows_at_once`): a wrong value is found again value by value, for its own message."""
    parsed: list[Parsed | BadRequest] = []
    for row, headers in requests:
        try:
            parsed.append(_read_request(row, headers, portfolio))
        except BadRequest as err:
            parsed.append(err)
    waiting = [(request.items, index) for request in parsed if isinstance(request, Parsed)
               for index, item in enumerate(request.items) if isinstance(item, Sent)]
    sent: list[Sent] = [items[index] for items, index in waiting]
    checked = fields.rows_at_once([item.columns for item in sent], [item.spec.meta.features for item in sent])
    for (items, index), item, rows in zip(waiting, sent, checked, strict=True):
        try:
            if rows is None:
                rows = fields.checked_rows(item.body, item.spec.meta.features, item.spec.is_price)
            items[index] = _instance(item.body, rows, item.symbol, item.spec, portfolio)
        except BadRequest as err:
            items[index] = err
    return parsed


def _read_request(row: Mapping[str, Any], headers: Mapping[str, Any], portfolio: Portfolio) -> Parsed:
    """One request: {"prices": [...], "stock": ..., "last_date": ...}, or {"instances": [such objects]}."""
    body = read_body(row, headers)
    if "instances" not in body:
        return Parsed([_read_forecast(body, portfolio)], many=False)
    instances = body["instances"]
    if set(body) != {"instances"}:
        raise BadRequest(f"a portfolio request has only 'instances', got {', '.join(map(shown, sorted(body)[:10]))}")
    if not isinstance(instances, list) or not 1 <= len(instances) <= MAX_INSTANCES:
        raise BadRequest(f"'instances' must be a list of 1 to {MAX_INSTANCES} forecasts like "
                         f'{{"stock": "VALE3", "prices": [...]}}, got {shown(instances)}')
    items: list[Instance | Sent | BadRequest] = []
    for instance in instances:
        try:
            items.append(_read_forecast(instance, portfolio))
        except BadRequest as err:
            items.append(err)
    return Parsed(items, many=True)


def _read_forecast(body: Any, portfolio: Portfolio) -> Instance | Sent:
    """One forecast's fields -> its Instance, or where its columns can be checked at once, what was Sent; raises
    BadRequest naming the first thing wrong."""
    body = fields.check_forecast(body)
    symbol, spec = portfolio.member(body.get("stock"))
    columns = fields.sent_columns(body, spec.meta.window, spec.meta.features)
    if columns is not None:
        return Sent(body, columns, symbol, spec)
    return _instance(body, fields.checked_rows(body, spec.meta.features, spec.is_price), symbol, spec, portfolio)


def _instance(body: dict[str, Any], rows: torch.Tensor, symbol: str, spec: Spec, portfolio: Portfolio) -> Instance:
    """The forecast of checked `rows`, with its dates where it gave `last_date` (raises BadRequest if it is wrong)."""
    meta = spec.meta
    dates = None if body.get("last_date") is None else fields.read_dates(body["last_date"],
                                                                         portfolio.sessions(symbol), meta.horizon)
    return Instance(rows[-meta.context:], symbol, spec, dates)


def forecast(models: Mapping[str, torch.nn.Module], instances: Sequence[Instance]) -> list[torch.Tensor]:
    """Each instance's model output ([H], or [H, Q] for a quantile model), in order: one forward pass per bundle
    and distinct number of rows (requests send between `window` and `context` of them)."""
    outputs: list[torch.Tensor] = [torch.empty(0)] * len(instances)
    groups: dict[tuple[str, int], list[int]] = {}
    for index, instance in enumerate(instances):
        groups.setdefault((instance.spec.name, len(instance.history)), []).append(index)
    with torch.inference_mode():
        for (name, _), indices in groups.items():
            batch = torch.stack([torch.as_tensor(instances[index].history, dtype=torch.float64)
                                 for index in indices]).float()  # [B, L, F]
            for index, output in zip(indices, models[name](batch).unbind(), strict=True):
                outputs[index] = output
    return outputs
