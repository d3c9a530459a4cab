"""The price stores `make bench`'s by-name requests (`{"stock": X}`, no bars) are answered from, and the refresh of
every file under load.

A store is a temp folder (never the project's data/) of `<SYMBOL>.csv` holding each ticker's real bars relabelled
to the latest sessions its exchange closed (the archive's calendar), since a server refuses bars more than 5
sessions behind; each file is written as the daily refresh writes its cache, replaced in one step. A bench store
starts one session behind, so that its refresh adds the last closed session to every file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stockcast.data.download import Downloader
from stockcast.data.prices import write_price_csv
from stockcast.errors import StockcastError
from stockcast.runtime.bundle import PORTFOLIO
from stockcast.runtime.routing import Portfolio
from stockcast.runtime.store import STORE_ENV
from stockcast.serving.client import post_json
from stockcast.serving.client_loop import ClientLoop

ROWS = 300  # bars per file: a year of returns for a portfolio's risk (251 bars read), the model's context in it


@dataclass(frozen=True)
class BenchStore:
    """A store folder and what its files are made of: each ticker's real bars and its exchange's closed sessions."""

    folder: Path
    bars: Mapping[str, pd.DataFrame]  # ticker -> its real bars (Open, High, Low, Close, Volume), oldest first
    closed: Mapping[str, list[str]]  # ticker -> its exchange's sessions before today (UTC), ISO dates

    @classmethod
    def written(cls, folder: Path, archive: Path, bars: Mapping[str, pd.DataFrame], behind: int = 1) -> BenchStore:
        """A store of `bars` (tickers the archive serves) in `folder`, `behind` sessions behind the last closed."""
        with zipfile.ZipFile(archive) as mar:
            served = Portfolio.from_manifest(json.loads(mar.read(PORTFOLIO)), {}, None, "")
        today = dt.datetime.now(dt.UTC).date().isoformat()  # the handler's today
        closed = {symbol: [day for day in served.sessions(symbol) if day < today] for symbol in bars}
        store = cls(folder, bars, closed)
        store.write(behind)
        return store

    def write(self, behind: int) -> dict[str, str]:
        """Every file: the ticker's last ROWS real bars up to `behind` before its last, dated the sessions closed up
        to `behind` sessions ago, each file replaced in one step; -> each ticker's last date."""
        last = {}
        for symbol, real in self.bars.items():
            closed = self.closed[symbol]
            frame = real.iloc[len(real) - behind - ROWS:len(real) - behind].copy()
            frame.index = pd.DatetimeIndex(closed[len(closed) - behind - ROWS:len(closed) - behind], name="Date")
            write_price_csv(frame, self.folder / f"{symbol}.csv")
            last[symbol] = closed[len(closed) - 1 - behind]
        return last


def local_bars(downloader: Downloader, starts: Mapping[str, str | None]) -> dict[str, pd.DataFrame]:
    """Each ticker's bars in local files (`downloader` offline), from its start (None: the files' first day); a
    ticker with none is left out, with a line saying so."""
    found = {}
    for stock, start in starts.items():
        try:
            found[stock] = downloader.load(stock, start or "1900-01-01", None)
        except StockcastError as err:
            print(f"  {stock} left out of the price store: {err}")
    return found


@contextmanager
def served_from(folder: Path) -> Iterator[None]:
    """$STOCKCAST_PRICE_STORE names `folder` for the block: a TorchServe started in it (its workers inherit it) or a
    handler initialized in it reads that store."""
    before = os.environ.get(STORE_ENV)
    os.environ[STORE_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STORE_ENV, None)
        else:
            os.environ[STORE_ENV] = before


@dataclass(frozen=True)
class Refreshed:
    """A refresh of every file of a store while clients sent by-name requests."""

    files: int
    seconds: float  # to write them all
    requests: int  # answered during the load
    failed: int  # of them, not 200
    dates_seen: frozenset[str]  # the last_date values the load's answers carried
    new_dates: frozenset[str]  # the refreshed files' last dates
    next_new: int  # of the files' tickers, how many the next by-name request answered from the new bar

    @property
    def met(self) -> bool:
        return self.failed == 0 and self.next_new == self.files

    def line(self) -> str:
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        seen = "the old bar and the new" if len(self.dates_seen) > 1 else f"only {', '.join(sorted(self.dates_seen))}"
        return (f"{files} given one more bar in {self.seconds:.2f} s: {self.failed} failed of {self.requests:,} "
                f"requests, answered from {seen}; the next request read the new bar "
                f"({', '.join(sorted(self.new_dates))}) for {self.next_new} of {files}")


def refresh_under_load(url: str, key: str | None, store: BenchStore, payload: Any, clients: int = 4) -> Refreshed:
    """Clients post `payload` (by name) in a loop while every file of `store`, one session behind, gets the last
    closed session's bar; then one by-name request per ticker."""
    with ClientLoop(url, key, payload, clients) as loop:
        time.sleep(1)
        started = time.monotonic()
        new = store.write(behind=0)
        seconds = time.monotonic() - started
        time.sleep(1)
    seen = frozenset(_last_dates(json.loads(body) for body in loop.bodies))
    answers = {symbol: post_json(url, {"stock": symbol}, key) for symbol in new}
    fresh = sum(answer.status == 200 and answer.json().get("last_date") == new[symbol]
                for symbol, answer in answers.items())
    return Refreshed(len(new), seconds, loop.requests, loop.errors, seen, frozenset(new.values()), fresh)


def _last_dates(answers: Iterable[dict]) -> Iterator[str]:
    for answer in answers:
        for item in answer.get("predictions", [answer]):
            if "last_date" in item:
                yield item["last_date"]
