"""`scripts/admin.py refresh`: bring each ticker's price cache up to its exchange's last closed session.

An operation, not part of the data layer: it is run on a schedule beside the served model, retries while
Yahoo rate-limits and decides what a revised history means, using the Downloader's one yfinance call and
cache writes and the price checks training applies. Per ticker: download from a few cached sessions back
(`OVERLAP`) to the last closed session; when a cached close changed (a new split or dividend adjustment)
download the whole history again and say so loudly, since models trained on the old prices are stale;
else append the new days. A ticker that fails keeps its cache as it was; the others go on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from stockcast.cli import Say
from stockcast.data.download import Downloader, RateLimited
from stockcast.data.prices import COLUMNS, REPAIRS, check_prices, warn_split_jumps
from stockcast.errors import StockcastError
from stockcast.release.lock import exclusive
from stockcast.serving.sessions import exchange_for, session_closes
from stockcast.symbols import normalize_symbol

LOCK = "refresh.lock"  # in the data folder: two refreshes at once would download twice and race on the caches
OVERLAP = 5  # cached sessions downloaded again, to see whether Yahoo revised them
CLOSES = ["Close", "Adj Close"]  # a change in these is a revision; Adj Close moves with each dividend
TOLERANCE = 1e-5  # relative change of a close counted as a revision: above float noise, below a cent on 1,000
TRIES = 5  # downloads of one range while Yahoo rate-limits: waits of 10, 20, 40, 80 s between them
FIRST_WAIT = 10.0


@dataclass
class Refreshed:
    """What refreshing one ticker did, for its line of output."""

    symbol: str
    added: list[pd.Timestamp] = field(default_factory=list)  # sessions new to the cache
    rate_limited: int = 0
    revised: str = ""  # which past closes changed, when the history was downloaded again
    behind: pd.Timestamp | None = None  # the last closed session, when Yahoo had no rows up to it yet
    warnings: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def failed(self) -> bool:
        """Not brought up to date: the cron job's exit status says so."""
        return bool(self.error) or self.behind is not None

    def line(self, width: int) -> str:
        parts = [self.symbol.ljust(width)]
        if self.rate_limited:
            parts.append(f"rate-limited {_times(self.rate_limited)}, then")
        if self.error:
            parts.append(f"failed: {self.error}")
        else:
            if self.revised:
                parts.append(f"REVISED: {self.revised}: history re-downloaded, models trained on it are stale;")
            if self.added:
                days = "day" if len(self.added) == 1 else "days"
                parts.append(f"+{len(self.added)} {days}  {self.added[0]:%Y-%m-%d}..{self.added[-1]:%Y-%m-%d}")
            if self.behind is not None:
                parts.append(f"behind: Yahoo has no rows for {self.behind:%Y-%m-%d} yet")
            else:
                parts.append("ok" if self.added or self.revised else "up to date")
        return "  ".join([*parts, *(f"warning: {w}" for w in self.warnings)])


def refresh(downloader: Downloader, symbols: list[str], say: Say = print, wait: float = 0.0,
            now: pd.Timestamp | None = None, sleep: Callable[[float], None] = time.sleep) -> list[Refreshed]:
    """Refresh each cache in turn, saying one line per ticker as it is done; `now` (tz-aware) and `sleep`
    are the clock and the wait between rate-limited tries."""
    symbols = [normalize_symbol(s) for s in symbols]
    now = now or pd.Timestamp.now(tz="UTC")
    sessions = {exchange: last_closed_session(exchange, now) for exchange in {exchange_for(s) for s in symbols}}
    width = max(map(len, symbols), default=0)
    results = []
    with exclusive(downloader.data_dir / LOCK, wait, "refresh"):
        for symbol in symbols:
            result = Refreshed(symbol)
            try:
                _refresh(downloader, result, sessions[exchange_for(symbol)], sleep)
            except Exception as err:  # one ticker's download, data or disk; the others still refresh
                result.error = str(err).splitlines()[0] if str(err) else type(err).__name__
            say(result.line(width))
            results.append(result)
    return results


def last_closed_session(exchange: str, now: pd.Timestamp) -> pd.Timestamp:
    """The newest session of `exchange` (an exchange_calendars code) closed by `now`: Yahoo can have its row."""
    closes = session_closes(exchange, now.year)
    return closes[closes <= now].index[-1]


def _refresh(downloader: Downloader, result: Refreshed, session: pd.Timestamp,
             sleep: Callable[[float], None]) -> None:
    """Download what the cache lacks up to `session`, check it and write the cache, or raise leaving it as it was."""
    symbol = result.symbol
    if not downloader.cache_path(symbol).exists():
        raise StockcastError(f"no cache {downloader.cache_path(symbol)} yet: refresh extends caches; "
                             f"train or predict {symbol} once to start one")
    cached = downloader.read_cache(symbol)
    last = cached.index[-1]
    if last >= session:
        return
    overlap = cached.iloc[-OVERLAP:]
    fresh = _download(downloader, result, overlap.index[0], session, sleep)
    revised = _revisions(overlap, fresh)
    first = _record_start(downloader, symbol, cached)
    if revised:
        first = min(first, cached.index[0].date())
        fresh = _download(downloader, result, pd.Timestamp(first), session, sleep)
        frame = fresh
        check_prices(frame, ["Close"], symbol)  # the history replaced: the column every model reads
    else:
        frame = pd.concat([cached, fresh.loc[fresh.index > last]])  # cached rows kept exactly as they were
    new = frame.loc[frame.index > last]
    check_prices(new, COLUMNS, symbol)  # the sessions added: every column a model may read
    result.warnings = fresh.attrs.get(REPAIRS, []) + warn_split_jumps(frame.loc[last:], symbol)
    if frame.index[-1] < session:
        result.behind = session
    if new.empty and not revised:
        return
    # The record claims today, as a download's does, unless Yahoo still lacks a closed session.
    downloader.store(symbol, frame, first, frame.index[-1].date() if result.behind else dt.date.today())
    result.added = list(new.index)
    if revised:
        result.revised = _revisions(cached, frame) or revised  # counted over the whole history, for the report


def _download(downloader: Downloader, result: Refreshed, start: pd.Timestamp, end: pd.Timestamp,
              sleep: Callable[[float], None]) -> pd.DataFrame:
    """The Downloader's download, tried again after a doubling wait while Yahoo rate-limits, at most `TRIES` times."""
    for attempt in range(1, TRIES + 1):
        try:
            return downloader.download(result.symbol, start.date(), end.date())
        except RateLimited:
            result.rate_limited += 1
            if attempt == TRIES:
                raise
            sleep(FIRST_WAIT * 2 ** (attempt - 1))


def _revisions(old: pd.DataFrame, new: pd.DataFrame) -> str:
    """Which of `old`'s closes `new` changed beyond `TOLERANCE`, and which of its sessions `new` lacks; '' if none."""
    both = old.index.intersection(new.index)
    changes = []
    for column in CLOSES:
        change = (new.loc[both, column] / old.loc[both, column] - 1).abs()
        moved = change[change > TOLERANCE]
        if len(moved):
            changes.append(f"{len(moved):,} past {column} changed (max {100 * moved.max():.1f} %, "
                           f"{moved.index[0]:%Y-%m-%d}..{moved.index[-1]:%Y-%m-%d})")
    gone = old.index.difference(new.index)
    if len(gone):
        changes.append(f"{len(gone):,} past session(s) gone (first {gone[0]:%Y-%m-%d})")
    return ", ".join(changes)


def _record_start(downloader: Downloader, symbol: str, cached: pd.DataFrame) -> dt.date:
    """Where the cache's history starts: its record's start, else its first row."""
    covered = downloader.covered(symbol)
    return covered[0] if covered else cached.index[0].date()


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")
