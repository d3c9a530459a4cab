"""Symbol and date normalisation shared by training, serving metadata and operations."""

from __future__ import annotations

import datetime as dt
import re

from stockcast.errors import StockcastError
from stockcast.runtime.spelling import spelled

_SYMBOL = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-=]*$")


def normalize_symbol(stock: str) -> str:
    """Return the Yahoo symbol: `vale3`, `VALE3`, `VALE3.SA` -> `VALE3.SA`; `AAPL`, `^BVSP` unchanged."""
    symbol = str(stock).strip().upper()
    if not _SYMBOL.match(symbol):
        raise StockcastError(f"invalid ticker {stock!r}: expected a Yahoo Finance symbol like VALE3 or AAPL")
    return spelled(symbol)


def parse_date(value: str | dt.date | None, name: str, default: dt.date | None = None) -> dt.date:
    """Parse an ISO 8601 calendar date (YYYY-MM-DD); `None` gives `default`."""
    if value is None:
        if default is None:
            raise StockcastError(f"{name} is required (YYYY-MM-DD)")
        return default
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise StockcastError(f"{name}={value!r} is not an ISO date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as err:
        raise StockcastError(f"{name}={value!r} is not a valid date: {err}") from None


def parse_range(start: str | dt.date | None, end: str | dt.date | None) -> tuple[dt.date, dt.date]:
    """Validate a date range; `end=None` means today. Start must not be after end."""
    end_date = parse_date(end, "end", default=dt.date.today())
    start_date = parse_date(start, "start")
    if start_date > end_date:
        raise StockcastError(f"start {start_date} is after end {end_date}")
    return start_date, end_date
