"""Trading sessions of the tickers' exchanges, computed at archive time so the handler needs no calendar library."""

from __future__ import annotations

import datetime as dt
import functools

import pandas as pd

# Enough sessions for the forecast dates of any window ending within two years of archiving.
YEARS_AHEAD = 2


# The exchange_calendars code of a ticker by its Yahoo suffix: B3 (BVMF, B3 holidays excluded) for `.SA`, the NYSE
# otherwise. Written into the archive's calendar too, so a global model dates the forecasts of tickers it does not list.
SUFFIXES = {".SA": "BVMF"}
OTHERWISE = "XNYS"


def exchange_for(symbol: str) -> str:
    """The exchange a ticker trades on, by SUFFIXES."""
    return next((code for suffix, code in SUFFIXES.items() if symbol.upper().endswith(suffix)), OTHERWISE)


def trading_calendar(stocks: list[str], first: dt.date, today: dt.date | None = None) -> dict:
    """Each exchange's sessions from `first` (the training data's first day) to `YEARS_AHEAD` years after
    `today`, as ISO dates, and which exchange each stock trades on."""
    import exchange_calendars

    today = today or dt.date.today()
    end = today + dt.timedelta(days=366 * YEARS_AHEAD)
    by_stock = {stock: exchange_for(stock) for stock in stocks}
    exchanges = {}
    for exchange in sorted({*by_stock.values(), *SUFFIXES.values(), OTHERWISE}):
        calendar = exchange_calendars.get_calendar(exchange, start=first, end=end)
        sessions = [f"{day:%Y-%m-%d}" for day in calendar.sessions]
        exchanges[exchange] = {"first_session": sessions[0], "last_session": sessions[-1], "sessions": sessions}
    return {"source": f"exchange_calendars {exchange_calendars.__version__}", "computed": today.isoformat(),
            "stocks": by_stock, "suffixes": SUFFIXES, "otherwise": OTHERWISE, "exchanges": exchanges}


@functools.lru_cache(maxsize=32)
def session_closes(exchange: str, year: int) -> pd.Series:
    """Session date -> its close (UTC) of `exchange` from January of the year before `year` through `year`.

    Cached by year: a calendar costs about 0.3 s to build, and a replay asks for every simulated day."""
    import exchange_calendars

    return exchange_calendars.get_calendar(exchange, start=f"{year - 1}-01-01", end=f"{year}-12-31").closes


def session_close(exchange: str, day: pd.Timestamp) -> pd.Timestamp:
    """When `day`'s session of `exchange` closed (UTC); the end of the day (UTC) where the calendar has no
    session that day (a row Yahoo has anyway)."""
    return session_closes(exchange, day.year).get(day, day.tz_localize("UTC") + pd.Timedelta(days=1))
