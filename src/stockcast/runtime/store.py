"""The price store: a read-only folder of `<SYMBOL>.csv` in the project's CSV shape (Date, Open, High, Low, Close,
Volume, as the daily refresh writes its cache), from which a by-name request is forecast.

What a by-name forecast derives from a ticker's file (its checked rows, last date, the answer's dates: `stored`)
is kept per version of the file, its identity and version being its inode, size and modification time, and per
what the caller reads from it (its `key`: the bundle, the rows); a repeat request costs one stat and a lookup.
The versions of any other stored file the caller reads (`extra`) are part of what is kept's key too. The refresh
replaces a file in one step (os.replace), so the next request's stat sees the new version, and a request reads
the old bars or the new ones, never half a file: a file is read through the descriptor whose fstat keys what was
read. At most `capacity` derivations are kept, the least recently used dropped first. A file name is built only
from a ticker the folder lists, never from what a client sent, and the store never writes. A broken file is its
ticker's error alone, kept as its message (an exception object kept and raised again would grow its traceback on
each request); the values a file holds pass the same checks as bars a client sends (`fields.checked_rows`).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

from stockcast.runtime.body import BadRequest
from stockcast.runtime.spelling import spelled

SUFFIX = ".csv"
STORE_ENV, ROOT_ENV = "STOCKCAST_PRICE_STORE", "STOCKCAST_ROOT"
REQUIRED = ("Date", "Open", "High", "Low", "Close")  # Volume may be missing (the project's files have it)
# Derivations kept: a by-name forecast and a portfolio's risk read two per ticker and bundle (the model's context,
# a year for the risk), so this holds the whole universe's (494 files) twice over: those 988 measured 6.5 MiB
# for a model of 4 features and 100 days (docs/serving.md, "By name").
CAPACITY = 2048

Derived = TypeVar("Derived")
Version = tuple[int, int, int]  # a file's inode, size and modification time (ns)


class Unavailable(BadRequest):
    """A ticker the store holds no usable bars of: its file missing, broken, or too far behind."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


@dataclass(frozen=True)
class Stored:
    """One ticker's bars as its file holds them, oldest first."""

    dates: tuple[str, ...]
    columns: dict[str, list[float]]  # Close, Open, High, Low, and Volume where the file has it


@dataclass(frozen=True)
class _Refused:
    """A derivation's error, kept as its kind and message."""

    kind: type[BadRequest]
    message: str


class PriceStore:
    """The folder's files, what callers derive from each kept once per version of it, and how far behind today
    their last bar may be (`max_stale_sessions`; None: any)."""

    def __init__(self, folder: Path, max_stale_sessions: int | None = 5, capacity: int = CAPACITY) -> None:
        self.folder, self.max_stale_sessions, self.capacity = folder, max_stale_sessions, capacity
        self._kept: OrderedDict[tuple[str, Any], tuple[tuple[Version, ...], Any]] = OrderedDict()
        self._listing: tuple[int, dict[str, str]] = (-1, {})
        self._lock = threading.Lock()

    def listed(self, name: str) -> str | None:
        """The file stem of the ticker `name` spells (`spelled`: any case, with or without .SA); None if the folder
        has no such file."""
        return self._names().get(spelled(name))

    def tickers(self) -> list[str]:
        """Every ticker the folder holds a file of."""
        return sorted(set(self._names().values()))

    def _names(self) -> dict[str, str]:
        """Tickers (`spelled`) -> their file's stem, listed again when the folder changed (a file added or
        removed)."""
        try:
            version = os.stat(self.folder).st_mtime_ns
            if version != self._listing[0]:
                stems = sorted(entry.name.removesuffix(SUFFIX) for entry in os.scandir(self.folder)
                               if entry.name.endswith(SUFFIX) and entry.is_file())
                self._listing = (version, {spelled(stem): stem for stem in stems})
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

    def version(self, symbol: str) -> tuple[str, Version]:
        """The stem of the file of `symbol` (as `spelled`) and its version: one stat where the folder was listed
        with it; raises Unavailable where the folder holds no such file."""
        stem = self._listing[1].get(symbol) or self.listed(symbol)
        if stem is None:
            raise Unavailable(f"the price store holds no bars of {symbol}: send them as 'prices' (with 'open', 'high' "
                              "and 'low')")
        try:
            return stem, _version(os.stat(os.path.join(self.folder, stem + SUFFIX)))  # no Path: a request's cost
        except FileNotFoundError:
            if self.listed(symbol) is None:  # removed since listed
                return self.version(symbol)
            raise Unavailable(f"the price store has no readable {stem}{SUFFIX} (it was just replaced)") from None
        except OSError as err:
            raise Unavailable(f"the price store has no readable {stem}{SUFFIX} ({err.strerror})") from None

    def stored(self, symbol: str, key: Any, derive: Callable[[Stored], Derived], extra: Sequence[str] = ()) -> Derived:
        """What `derive` makes of the bars of `symbol`, kept per version of its file and of the `extra` tickers'
        files (other stored files the caller reads) and per `key` (what else it depends on, such as the bundle);
        raises Unavailable where a file is missing or broken, and what `derive` raised (a BadRequest) again."""
        stem, version = self.version(symbol)
        versions = (version, *(self.version(name)[1] for name in extra))
        with self._lock:
            kept = self._kept.get((stem, key))
            if kept is not None:
                self._kept.move_to_end((stem, key))
        if kept is None or kept[0] != versions:
            read, bars = self._read(stem)
            try:
                derived: Any = _Refused(Unavailable, bars) if isinstance(bars, str) else derive(bars)
            except BadRequest as err:
                derived = _Refused(type(err), err.message)
            kept = ((read, *versions[1:]), derived)
            with self._lock:
                self._kept[(stem, key)] = kept
                while len(self._kept) > self.capacity:
                    self._kept.popitem(last=False)
        if isinstance(kept[1], _Refused):
            raise kept[1].kind(kept[1].message)
        return kept[1]

    def bars(self, symbol: str) -> Stored:
        """The bars of a listed ticker, read now (not kept); raises Unavailable where it cannot be read."""
        bars = self._read(self.version(symbol)[0])[1]
        if isinstance(bars, str):
            raise Unavailable(bars)
        return bars

    def _read(self, stem: str) -> tuple[Version, Stored | str]:
        """The file's version read and its bars, or what is wrong with it."""
        path = self.folder / f"{stem}{SUFFIX}"
        try:
            with open(path, "rb") as file:  # the version of the file read, not of the one stat saw
                return _version(os.fstat(file.fileno())), _parsed(file.read(), path.name)
        except OSError as err:
            raise Unavailable(f"the price store has no readable {path.name} ({err.strerror})") from None

    def behind(self, symbol: str, last_date: str, sessions: Sequence[str], today: dt.date) -> int:
        """The sessions the bars of `symbol` ending on `last_date` are behind `today`; raises Unavailable where they
        are more than `max_stale_sessions`."""
        behind = stale_sessions(last_date, sessions, today)
        if self.max_stale_sessions is not None and behind > self.max_stale_sessions:
            raise Unavailable(f"the price store's last bar of {symbol} is {last_date}, {behind} trading sessions ago "
                              f"(at most {self.max_stale_sessions} are served): refresh it (make refresh), or send "
                              "the bars")
        return behind


def _version(status: os.stat_result) -> Version:
    return status.st_ino, status.st_size, status.st_mtime_ns


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
