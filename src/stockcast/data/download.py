"""Downloader: yfinance daily history -> one canonical CSV per ticker in `data/`, with offline fallbacks."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from stockcast import ROOT
from stockcast.data.prices import canonicalize, read_price_csv, write_price_csv
from stockcast.errors import StockcastError
from stockcast.files import replacing
from stockcast.symbols import normalize_symbol, parse_range

log = logging.getLogger(__name__)

DATA_DIRS_ENV = "STOCKCAST_DATA_DIRS"
# The price files committed with the repository (prices/SOURCES.md): a checkout's offline source, so a fresh
# clone trains and tests any of its tickers with no network and no variable set.
PRICES_DIR = ROOT / "prices"
# The one price file the package ships: the last resort, which the container image trains on (it has no prices/).
SAMPLE_DIR = Path(__file__).parent / "sample"


class RateLimited(StockcastError):
    """Yahoo refused the download for now (yfinance's YFRateLimitError): worth retrying later, unlike a bad ticker."""


@contextmanager
def _captured_log(name: str) -> Iterator[list[str]]:
    """Collect the messages of logger `name` (warnings and up) instead of printing them."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = " ".join(record.getMessage().split())
            if text:
                messages.append(text)

    logger = logging.getLogger(name)
    handler, propagate = Collect(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _shown(folder: Path) -> str:
    """A folder as a user would type it: relative to the checkout where it lies inside it."""
    return str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder)


class Downloader:
    """Fetch a ticker's daily OHLCV for an ISO date range, caching it as `<data_dir>/<SYMBOL>.csv`.

    The cache is reused when the range it was downloaded for covers the request. When the download
    fails (no network, Yahoo rate limits, unknown ticker) the cache or `<SYMBOL>.csv` from, in this order,
    `extra_dirs`, `$STOCKCAST_DATA_DIRS`, `repo_dirs` (None: the repository's `prices/`) and the packaged
    sample (`use_sample`) is used instead, with a warning naming the file. The first
    file found is the one used: a broken one is an error naming it, never silently replaced by the
    next folder's copy, which may hold other dates or another adjustment. `online=False` never asks
    Yahoo: a build that must not depend on the network (the container image) reads local files only.
    """

    def __init__(self, data_dir: str | Path = "data", extra_dirs: list[str] | None = None,
                 use_sample: bool = True, timeout: float = 20.0, online: bool = True,
                 repo_dirs: list[str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        env_dirs = [d for d in os.environ.get(DATA_DIRS_ENV, "").split(os.pathsep) if d]
        repo = [PRICES_DIR] if repo_dirs is None else repo_dirs
        self.extra_dirs = [Path(d) for d in [*(extra_dirs or []), *env_dirs, *repo]]
        if use_sample:
            self.extra_dirs.append(SAMPLE_DIR)
        self.timeout = timeout
        self.online = online
        self.read_from: dict[str, Path] = {}  # symbol -> the file its prices came from (cache, download, copy)

    def cache_path(self, symbol: str) -> Path:
        return self.data_dir / f"{symbol}.csv"

    def cached_symbols(self) -> list[str]:
        """The symbols that have a cache in `data_dir`."""
        return sorted(path.stem for path in self.data_dir.glob("*.csv"))

    def covered(self, symbol: str) -> tuple[dt.date, dt.date] | None:
        """The date range the cache was downloaded for; None without a readable record (then nothing is assumed)."""
        meta_path = self.cache_path(symbol).with_suffix(".json")
        if not meta_path.exists():
            return None
        try:
            covered = json.loads(meta_path.read_text())
            return dt.date.fromisoformat(covered["start"]), dt.date.fromisoformat(covered["end"])
        except (ValueError, KeyError, TypeError) as err:  # JSON and decoding errors are ValueErrors
            log.warning("ignoring unreadable cache record %s (%s)", meta_path, err)
            return None

    def read_cache(self, symbol: str) -> pd.DataFrame:
        """The cached prices of `symbol`, checked like any price file."""
        return self._read(self.cache_path(symbol))

    def store(self, symbol: str, frame: pd.DataFrame, start: dt.date, end: dt.date) -> None:
        """Write the cache, then its record of the range downloaded, each in one step: a crash between the two
        leaves a record that claims too little (a download again), never rows the cache lacks."""
        path = self.cache_path(symbol)
        write_price_csv(frame, path)
        covered = {"start": start.isoformat(), "end": min(end, dt.date.today()).isoformat()}
        with replacing(path.with_suffix(".json")) as partial:
            partial.write_text(json.dumps(covered))

    def load(self, stock: str, start: str | dt.date | None, end: str | dt.date | None) -> pd.DataFrame:
        """Canonical OHLCV rows of `stock` (VALE3, vale3.sa, AAPL) with start <= Date <= end (end=None: today)."""
        symbol = normalize_symbol(stock)
        start_date, end_date = parse_range(start, end)
        frame = self._cached(symbol, start_date, end_date)
        if frame is None:
            frame = self._download_or_fallback(symbol, start_date, end_date)
        rows = frame.loc[pd.Timestamp(start_date):pd.Timestamp(end_date)]
        if rows.empty:
            raise StockcastError(f"no prices for {symbol} between {start_date} and {end_date}")
        return rows

    def _cached(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame | None:
        covered = self.covered(symbol) if self.cache_path(symbol).exists() else None
        if covered is None:
            return None
        first, last = covered
        if first <= start and end <= last:
            log.debug("using cached %s for %s..%s", self.cache_path(symbol), start, end)
            return self._read(self.cache_path(symbol))
        return None

    def summary(self) -> str:
        """Where the prices read so far came from, in one line: "494 tickers read from prices/universe/us (458),
        ..., downloads off"."""
        folders = Counter(_shown(path.parent) for path in self.read_from.values())
        where = ", ".join(f"{folder} ({count})" if len(folders) > 1 else folder for folder, count in folders.items())
        count = len(self.read_from)
        return (f"{count} ticker{'s' if count != 1 else ''} read from {where}, "
                f"downloads {'on' if self.online else 'off'}")

    def _read(self, path: Path) -> pd.DataFrame:
        """A local price file; when a broken one is the cache, the error says how to get a fresh copy."""
        self.read_from[path.stem] = path
        try:
            return read_price_csv(path)
        except StockcastError as err:
            if path.parent != self.data_dir:
                raise
            raise StockcastError(f"{err} (a cached download: delete the file to download it again)") from None

    def _download_or_fallback(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        if not self.online:
            return self._fallback(symbol, start, end, "downloads are off")
        try:
            frame = self.download(symbol, start, end)
        except Exception as err:  # network, rate limit, yfinance internals: all mean "use a copy"
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            return self._fallback(symbol, start, end, reason)
        path = self.cache_path(symbol)
        if path.exists():  # keep rows outside this request that an earlier download fetched
            cached = self._read(path)
            frame = pd.concat([cached[~cached.index.isin(frame.index)], frame]).sort_index()
        self.store(symbol, frame, start, end)
        self.read_from[symbol] = path
        log.info("downloaded %d rows of %s into %s", len(frame), symbol, path)
        return frame

    def download(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Daily history from yfinance (its `end` is exclusive); raises when nothing comes back, `RateLimited`
        when Yahoo refused it for now (yf.download catches its YFRateLimitError per ticker and logs it)."""
        import yfinance as yf
        from yfinance.exceptions import YFRateLimitError

        with _captured_log("yfinance") as messages:  # yfinance logs its errors instead of raising them
            raw = yf.download(symbol, start=start.isoformat(), end=(end + dt.timedelta(days=1)).isoformat(),
                              interval="1d", auto_adjust=False, actions=False, progress=False,
                              threads=False, timeout=self.timeout)
        if raw is None or raw.empty:
            detail = messages[-1] if messages else "unknown ticker or no trading in the range"
            error = RateLimited if any(YFRateLimitError.__name__ in m for m in messages) else StockcastError
            raise error(f"yfinance returned no rows for {symbol}: {detail}")
        return canonicalize(raw, f"yfinance download of {symbol}")

    def _fallback(self, symbol: str, start: dt.date, end: dt.date, reason: str) -> pd.DataFrame:
        for folder in [self.data_dir, *self.extra_dirs]:
            path = folder / f"{symbol}.csv"
            if path.exists():
                if self.online:
                    log.warning("download of %s failed (%s); using local file %s", symbol, reason, path)
                else:  # asked for: no warning (a universe run reads 494 files; `summary` says it once)
                    log.debug("%s from local file %s (downloads are off)", symbol, path)
                return self._read(path)
        searched = ", ".join(str(d) for d in [self.data_dir, *self.extra_dirs])
        raise StockcastError(
            f"cannot get prices for {symbol} {start}..{end}: download failed ({reason}) and no "
            f"{symbol}.csv in {searched} (set {DATA_DIRS_ENV} to a folder of CSVs)"
        )
