"""Which bundle answers each forecast: the archive's tickers, its default ticker, and its trading calendar.

A request's `stock` is resolved once (`Portfolio.ticker`) into its one spelling, the bundle answering it and its
exchange's sessions; the store's file, the answer's `stock` and dates and the risk's alignment all read that.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stockcast.runtime.body import BadRequest, shown
from stockcast.runtime.bundle import Bundle
from stockcast.runtime.spelling import TICKER, spelled

MAX_RESOLVED = 10_000  # tickers kept resolved (`Portfolio.ticker`)


@dataclass(frozen=True)
class Ticker:
    """A request's `stock`, resolved: its symbol (`spelled`), the bundle answering it, its exchange and that
    exchange's trading sessions (empty: the archive stores none)."""

    symbol: str
    bundle: Bundle
    exchange: str | None
    sessions: Sequence[str]


@dataclass(frozen=True)
class Portfolio:
    """The tickers one archive answers, which bundle answers each, and the requests' default ticker."""

    bundles: Mapping[str, Bundle]  # bundle name -> the bundle
    members: Mapping[str, str]  # ticker -> the bundle answering it
    default: str | None  # the ticker answering requests that name none; None: they must name one
    version: str  # the archive's version: the served set's
    calendar: Mapping[str, Any]  # {"exchanges": {code: {"sessions": [...], ...}}, "stocks": {ticker: code}, ...}
    any_ticker: str | None = None  # the global bundle answering tickers no member names; None: members only

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], bundles: Mapping[str, Bundle], default_stock: str | None,
                      version: str) -> Portfolio:
        """`manifest`: the archive's portfolio.json; `default_stock`: the serving config's default ticker, which
        answers when it is served (else the only ticker, if there is one)."""
        members = dict(manifest["members"])
        portfolio = cls(bundles, members, None, version, manifest.get("calendar", {}), manifest.get("any_ticker"))
        named = portfolio.symbol_named(default_stock) if isinstance(default_stock, str) else None
        return replace(portfolio, default=named or (next(iter(members)) if len(members) == 1 else None))

    def symbol_named(self, name: str) -> str | None:
        """The served ticker that `name` spells (`spelled`: VALE3.SA and VALE3, in any case); None if none."""
        symbol = spelled(name)
        return symbol if symbol in self.members else None

    def exchange(self, symbol: str) -> str | None:
        """The ticker's exchange in the archive's calendar; a ticker the archive does not list trades where its
        suffix says (the calendar's `suffixes`, else `otherwise`). None: the calendar names none."""
        calendar = self.calendar
        return calendar.get("stocks", {}).get(symbol) or next(
            (code for suffix, code in calendar.get("suffixes", {}).items() if symbol.endswith(suffix)),
            calendar.get("otherwise"))

    def sessions(self, symbol: str) -> Sequence[str]:
        """The trading sessions of the ticker's exchange stored at archive time (empty: none stored)."""
        return self.calendar.get("exchanges", {}).get(self.exchange(symbol), {}).get("sessions", [])

    def ticker(self, stock: Any) -> Ticker:
        """The ticker a request's `stock` names (None: the default), resolved; raises BadRequest where no bundle
        answers it. A name the members do not list is the global bundle's (where there is one) if it is spelled
        as freely as a listed ticker."""
        if stock is None:
            if self.default is None:
                raise BadRequest(f"name the 'stock' to forecast: this model serves {self._served()}")
            symbol = self.default
        elif isinstance(stock, str) and TICKER.fullmatch(stock.strip()):
            symbol = spelled(stock)
        else:
            symbol = None
        found = self._resolved.get(symbol) if symbol is not None else None
        if found is None:
            bundle = self.members.get(symbol, self.any_ticker) if symbol is not None else None
            if symbol is None or bundle is None:
                raise BadRequest(f"stock {shown(stock)} has no deployed model: this model serves {self._served()}")
            if len(self._resolved) >= MAX_RESOLVED:  # tickers no member names are many: the memory stays bounded
                self._resolved.clear()
            found = self._resolved[symbol] = Ticker(symbol, self.bundles[bundle], self.exchange(symbol),
                                                    self.sessions(symbol))
        return found

    @functools.cached_property
    def _resolved(self) -> dict[str, Ticker]:
        """Tickers resolved so far, by symbol: what resolving one costs is paid once."""
        return {}

    def _served(self) -> str:
        listed = f"{len(self.members)} ticker(s): {', '.join(list(self.members)[:20])}"
        more = "" if len(self.members) <= 20 else f" and {len(self.members) - 20} more"
        anyone = "; any other Yahoo ticker (letters, digits, '.', '-', '^', '=') from the bars sent" \
            if self.any_ticker else ""
        return listed + more + anyone
