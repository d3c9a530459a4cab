"""The price store: a read-only folder of `<SYMBOL>.csv` in the project's CSV shape (Date, Open, High, Low, Close,
Volume, as the daily refresh writes its cache), from which a by-name request is forecast.

A ticker's file is read when first asked for and again once a stat shows its size or modification time changed
(a request costs that stat), through the descriptor whose fstat keys what was read: the refresh replaces a file in
one step (os.replace), so a request gets the old bars or the new ones, never half a file. A file name is built
only from a ticker the folder lists, never from what a client sent, and the store never writes. A broken file is
its ticker's error alone; the values it holds then pass the same checks as bars a client sends
(`fields.checked_rows`).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from stockcast.runtime.body import BadRequest

SUFFIX = ".csv"
STORE_ENV, ROOT_ENV = "STOCKCAST_PRICE_STORE", "STOCKCAST_ROOT"
REQUIRED = ("Date", "Open", "High", "Low", "Close")  # Volume may be missing (the project's files have it)


class Unavailable(BadRequest):
    """A ticker the store holds no usable bars of: its file missing, broken, or too far behind."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


@dataclass(frozen=True)
class Stored:
    """One ticker's bars as its file holds them, oldest first."""

    dates: tuple[str, ...]
    columns: dict[str, list[float]]  # Close, Open, High, Low, and Volume where the file has it


class PriceStore:
    """The folder's files, each parsed once per version of it (size, modification time), and how far behind
    today their last bar may be (`max_stale_sessions`; None: any)."""

    def __init__(self, folder: Path, max_stale_sessions: int | None = 5) -> None:
        self.folder, self.max_stale_sessions = folder, max_stale_sessions
        self._read: dict[str, tuple[tuple[int, int], Stored | str]] = {}
        self._listing: tuple[int, dict[str, str]] = (-1, {})
        self._lock = threading.Lock()

    def listed(self, name: str) -> str | None:
        """The ticker whose file `name` names, in the folder's spelling (any case, with or without .SA); None if the
        folder has no such file."""
        return self._names().get(name.strip().upper())

    def tickers(self) -> list[str]:
        """Every ticker the folder holds a file of."""
        return sorted(set(self._names().values()))

    def _names(self) -> dict[str, str]:
        """Spellings -> the file's ticker, listed again when the folder changed (a file added or removed)."""
        try:
            version = os.stat(self.folder).st_mtime_ns
            if version != self._listing[0]:
                stems = sorted(entry.name.removesuffix(SUFFIX) for entry in os.scandir(self.folder)
                               if entry.name.endswith(SUFFIX) and entry.is_file())
                names = {stem.upper().removesuffix(".SA"): stem for stem in stems}
                self._listing = (version, names | {stem.upper(): stem for stem in stems})
        except OSError:  # no folder (yet): nothing listed
            return {}
        return self._listing[1]

    @classmethod
    def configured(cls, settings: Mapping[str, Any], environ: Mapping[str, str]) -> PriceStore | None:
        """The store model-config.yaml's `handler` settings name (`price_store`, `max_stale_sessions`): $STOCKCAST_
        PRICE_STORE overrides the folder, a relative one is the project's ($STOCKCAST_ROOT, else the worker's
        folder); None where neither names one."""
        folder = environ.get(STORE_ENV) or settings.get("price_store")
        if not folder:
            return None
        path = Path(environ.get(ROOT_ENV, "."), folder)  # an absolute `folder` stays itself
        return cls(path, settings.get("max_stale_sessions", 5))

    def recent(self, symbol: str, sessions: Sequence[str], today: dt.date) -> tuple[Stored, int]:
        """The bars of the ticker the store lists as `symbol`, and how many sessions they are behind `today`;
        raises Unavailable where it lists none, its file is broken, or the bars are too far behind."""
        name = self.listed(symbol)
        if name is None:
            raise Unavailable(f"the price store holds no bars of {symbol}: send them as 'prices' (with 'open', 'high' "
                              "and 'low')")
        stored = self.bars(name)
        behind = stale_sessions(stored.dates[-1], sessions, today)
        if self.max_stale_sessions is not None and behind > self.max_stale_sessions:
            raise Unavailable(f"the price store's last bar of {symbol} is {stored.dates[-1]}, {behind} trading "
                              f"sessions ago (at most {self.max_stale_sessions} are served): refresh it (make "
                              "refresh), or send the bars")
        return stored, behind

    def bars(self, symbol: str) -> Stored:
        """The bars of a listed ticker (`listed`); raises Unavailable naming the file where it cannot be read."""
        path = self.folder / f"{symbol}{SUFFIX}"
        try:
            status = os.stat(path)
            with self._lock:
                known = self._read.get(symbol)
            if known is None or known[0] != (status.st_size, status.st_mtime_ns):
                with open(path, "rb") as file:  # the version of the file read, not of the one stat saw
                    status = os.fstat(file.fileno())
                    known = ((status.st_size, status.st_mtime_ns), _parsed(file.read(), path.name))
                with self._lock:
                    self._read[symbol] = known
        except OSError as err:
            raise Unavailable(f"the price store has no readable {path.name} ({err.strerror})") from None
        if isinstance(known[1], str):
            raise Unavailable(known[1])
        return known[1]


def _parsed(data: bytes, name: str) -> Stored | str:
    """A file's rows: ISO dates, increasing; finite numbers; a row of empty prices skipped (a holiday Yahoo lists).
    Else what is wrong with it: the message, not an exception, is what is kept (a kept exception raised again
    grows its traceback on each request)."""
    try:
        rows = csv.reader(io.StringIO(data.decode("utf-8-sig")))
        header = [column.strip() for column in next(rows, [])]
        missing = [column for column in REQUIRED if column not in header]
        if missing:
            return f"the price store's {name} has no column {', '.join(missing)} (header {header[:8]})"
        wanted = [column for column in ("Close", "Open", "High", "Low", "Volume") if column in header]
        at, date = [header.index(column) for column in wanted], header.index("Date")
        dates: list[str] = []
        columns: dict[str, list[float]] = {column: [] for column in wanted}
        for line, row in enumerate(rows, start=2):
            if not row or all(not row[index].strip() for index in at[:4]):
                continue
            day = row[date].strip()[:10]
            dt.date.fromisoformat(day)
            if dates and day <= dates[-1]:
                return f"the price store's {name}: line {line} ({day}) is not after {dates[-1]}"
            values = [float(row[index]) if row[index].strip() else math.nan for index in at]
            if not all(math.isfinite(value) for value in values[:4]):
                return f"the price store's {name}: line {line} ({day}) has a missing or infinite price"
            dates.append(day)
            for column, value in zip(wanted, values, strict=True):
                columns[column].append(value)
    except (ValueError, IndexError, UnicodeDecodeError, csv.Error) as err:
        return f"the price store's {name} cannot be read ({str(err)[:80]})"
    if not dates:
        return f"the price store's {name} holds no rows"
    return Stored(tuple(dates), columns)


def stale_sessions(last_date: str, sessions: Sequence[str], today: dt.date) -> int:
    """The trading sessions after the last bar's day and before today: closes the bars miss (today's own session
    may still be trading)."""
    return max(0, bisect.bisect_left(sessions, today.isoformat()) - bisect.bisect_right(sessions, last_date))
