"""Read, clean and check daily OHLCV tables in the shapes Yahoo and yfinance really produce."""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.errors import StockcastError
from stockcast.files import replacing
from stockcast.runtime.bars import widen

log = logging.getLogger(__name__)

COLUMNS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
REPAIRS = "repairs"  # frame.attrs key: what reading the file repaired, with a warning each
PRICE_COLUMNS = ["Open", "High", "Low", "Close", "Adj Close"]
# Split and bonus-share ratios, and the reverse splits'; a one-day close jump this close to one is examined
# (find_split_jumps). Smaller ratios (10-25 % bonus issues) are left alone: too close to ordinary big days.
SPLIT_RATIOS = tuple(ratio for split in (1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 20.0) for ratio in (split, 1 / split))
SPLIT_TOLERANCE = 0.03
# What tells a split from a market move near its ratio: the day's volume against the VOLUME_SESSIONS before
# (VOLUME_SPIKE times what a split would trade), the share of the move undone REVERSION_SESSIONS later, and the
# index's own move that day. On the universe, real moves trade 2.2x..33x a split day's volume.
VOLUME_SESSIONS = 60
VOLUME_SPIKE = 2.0
REVERSION_SESSIONS = 20
REVERSION_SHARE = 0.5
MARKET_MOVE = 0.03
# Rows whose Open or Close lies outside [Low, High] (or High below Low): isolated ones are repaired, a file
# with more than this share of them is refused (its columns are probably not what their names say).
MAX_INCONSISTENT = 0.01
# A placeholder stretch: days repeating the previous close where at least half of some STALE_SESSIONS sessions
# around them do (a quote nobody traded: AMCR's years before its listing, a B3 unit frozen for months).
STALE_SESSIONS = 20
ROUNDING = 1e-6  # relative
# An ISO date, optionally with the time and UTC offset that yfinance writes for tz-aware indexes.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def canonicalize(frame: pd.DataFrame, source: str = "price table") -> pd.DataFrame:
    """Turn a yfinance/Yahoo frame (flat or (Price, Ticker) columns) into canonical OHLCV, or refuse it.

    The one check of a parsed table (a CSV read by `read_price_csv`, a fresh download): `source`
    names it in every message. Result: a `Date` index (ascending, unique, tz-naive) and exactly
    `COLUMNS`; `Adj Close` falls back to `Close` for auto-adjusted downloads. Yahoo's all-null rows are
    dropped silently (they are its normal shape); exact duplicate rows are dropped and unsorted dates
    sorted, with a warning; so are the few days whose open or close lies outside their range
    (`consistent_bars`). Unparseable dates, non-numeric or infinite values and one date with two
    different rows are errors: training on a guess would hide a broken file.
    """
    frame = frame.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        symbols = frame.columns.get_level_values(-1).unique()
        if len(symbols) > 1:
            raise StockcastError(f"{source}: expected one ticker's prices, got columns for {list(symbols)}")
        frame.columns = frame.columns.get_level_values(0)
    frame.columns = [str(c).strip() for c in frame.columns]
    if "Date" in frame.columns:
        frame = frame.set_index("Date")
    if "Close" not in frame.columns:
        raise StockcastError(f"{source} has no Close column (columns: {list(frame.columns)})")
    if "Adj Close" not in frame.columns:
        frame["Adj Close"] = frame["Close"]
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = np.nan
    frame = frame[COLUMNS]
    if frame.empty:
        raise StockcastError(f"{source} has no price rows")
    frame.index = _parse_dates(frame, source)
    frame = _to_numbers(frame[frame.index.notna()], source)
    frame = frame.dropna(how="all", subset=PRICE_COLUMNS)
    if frame.empty:
        raise StockcastError(f"{source} has only empty (null) price rows")
    return consistent_bars(_sorted_unique(frame, source), source)


def consistent_bars(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Each day's [Low, High] widened to hold its Open and Close, with one warning giving the count and the first
    date; more than MAX_INCONSISTENT of the rows (and more than one) inconsistent is an error. A day with
    High = Low (no trade moved the price) is real data and kept. Rows missing one of the four, or with one not
    positive, are left to `check_prices`, which refuses them where a model reads them."""
    bars = frame[["Open", "High", "Low", "Close"]]
    high, low = frame["High"], frame["Low"]
    top, bottom = widen(high, low, [frame["Open"], frame["Close"]], np.fmax, np.fmin)  # fmax: NaN left to check_prices
    # A float's last digits (an auto-adjusted close a hair above its high) are not an inconsistency, and the
    # estimators clamp them anyway (models.net).
    bad = ((top > high * (1 + ROUNDING)) | (bottom < low * (1 - ROUNDING))) & (bars > 0).all(axis=1)
    if not bad.any():
        return frame
    dates = frame.index[bad]
    if bad.sum() > max(MAX_INCONSISTENT * len(frame), 1):
        raise StockcastError(f"{source}: {int(bad.sum())} of {len(frame)} rows have an Open or Close outside their "
                             f"day's [Low, High] or High below Low, first on {dates[0]:%Y-%m-%d}: more than "
                             f"{MAX_INCONSISTENT:.0%}, so the columns are probably not Open/High/Low/Close")
    message = (f"{source}: {int(bad.sum())} row(s) had an Open or Close outside their day's [Low, High] (or High "
               f"below Low), first on {dates[0]:%Y-%m-%d}; widened each day's range to hold them")
    log.warning(message)
    repaired = frame.copy()
    repaired.loc[bad, "High"], repaired.loc[bad, "Low"] = top[bad], bottom[bad]
    repaired.attrs[REPAIRS] = [*frame.attrs.get(REPAIRS, []), message]
    return repaired


def _parse_dates(frame: pd.DataFrame, source: str) -> pd.DatetimeIndex:
    """Calendar dates of the rows; NaT only for blank rows (no date, no values), which are dropped.

    Only ISO dates (`2024-01-02`, optionally with the time and offset yfinance writes) are read:
    `01/02/2024` is January or February depending on who wrote it, and guessing per row is how
    half a file silently turned into NaT.
    """
    index = frame.index
    if pd.api.types.is_datetime64_any_dtype(index):
        dates = pd.DatetimeIndex(index)
        if dates.tz is not None:
            dates = dates.tz_localize(None)  # the exchange's local calendar day
        bad = dates.isna()
        text = pd.Series(index.astype(str), index=range(len(index)))
    else:
        text = pd.Series(index, index=range(len(index)), dtype="object")
        text = text.where(text.notna(), "").astype(str).str.strip()
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")  # the usual shape, fast
        retry = parsed.isna()
        if retry.any():  # a time and offset after the date, or not a date at all
            day = text[retry].str.slice(0, 10).where(text[retry].str.fullmatch(ISO_DATE))
            parsed[retry] = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce")
        dates = pd.DatetimeIndex(parsed)
        bad = dates.isna() & ~(text.eq("") & frame.isna().all(axis=1).to_numpy())
    if bad.any():
        raise StockcastError(
            f"{source}: {int(bad.sum())} of {len(index)} rows have no valid ISO date (YYYY-MM-DD), "
            f"e.g. {', '.join(repr(v) for v in text[bad][:3])}; fix or delete those rows"
        )
    dates = dates.normalize()
    dates.name = "Date"
    return dates


def _to_numbers(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Every column as floats; text that is not a number or a missing marker, and infinities, are refused."""
    numbers = {}
    for column in COLUMNS:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            values = values.map(lambda v: (v.strip() or np.nan) if isinstance(v, str) else v)
            converted = pd.to_numeric(values, errors="coerce")
            bad = converted.isna() & values.notna()
            if bad.any():
                raise StockcastError(
                    f"{source}: {int(bad.sum())} non-numeric {column} value(s), e.g. "
                    + ", ".join(f"{v!r} on {d:%Y-%m-%d}" for d, v in values[bad].head(3).items())
                )
            values = converted
        infinite = np.isinf(values)
        if infinite.any():
            raise StockcastError(f"{source}: {int(infinite.sum())} infinite {column} value(s), first on "
                                 + ", ".join(f"{d:%Y-%m-%d}" for d in values.index[infinite][:3]))
        numbers[column] = values
    return pd.DataFrame(numbers, index=frame.index)


def _sorted_unique(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per date, ascending: exact repeats dropped, a date with two different rows refused."""
    if frame.index.is_unique and frame.index.is_monotonic_increasing:
        return frame
    rows = frame.reset_index()
    distinct = rows.drop_duplicates()
    conflicting = distinct["Date"][distinct["Date"].duplicated(keep=False)].unique()
    if len(conflicting):
        examples = []
        for date in conflicting[:3]:
            same_day = distinct.loc[distinct["Date"] == date, COLUMNS]
            column = next(c for c in COLUMNS if same_day[c].nunique(dropna=False) > 1)
            examples.append(f"{date:%Y-%m-%d} ({column} " + " vs ".join(f"{v:g}" for v in same_day[column]) + ")")
        raise StockcastError(f"{source}: {len(conflicting)} date(s) appear in several rows with different values, "
                             f"e.g. {'; '.join(examples)}; keep one row per date")
    repairs = []
    if len(distinct) < len(rows):
        repeated = rows["Date"][rows.duplicated()]
        repairs.append(f"{source}: dropped {len(repeated)} exact duplicate row(s), e.g. "
                       + ", ".join(f"{d:%Y-%m-%d}" for d in repeated[:3]))
    frame = distinct.set_index("Date")
    if not frame.index.is_monotonic_increasing:
        repairs.append(f"{source}: dates were not in ascending order; sorted {len(frame)} rows by date")
        frame = frame.sort_index()
    for message in repairs:
        log.warning(message)
    frame.attrs[REPAIRS] = repairs  # pandas carries attrs through slicing: the run tags them (datamodule)
    return frame


def check_price_file(path: str | Path) -> str:
    """The text of a price CSV, refused before parsing when it cannot be one.

    Missing, empty, binary (an Excel workbook, UTF-16) or non-UTF-8 files, a header without rows,
    and rows with another number of fields than the header (a truncated last line) are errors that
    name the file and the line; pandas would fail with a traceback or pad the row with NaN.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StockcastError(f"cannot read price file {path}: {err.strerror}") from None
    if b"\0" in data:
        kind = "UTF-16 text" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "a binary file (an Excel workbook?)"
        raise StockcastError(f"price file {path} is {kind}, not a CSV: save it as CSV UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise StockcastError(f"price file {path} is not UTF-8 (byte 0x{data[err.start]:02x} on line {line}): "
                             "save it as CSV UTF-8") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [(reader.line_num, row) for row in reader if len(row) > 1 or (row and row[0].strip())]
    except csv.Error as err:
        raise StockcastError(f"price file {path} is not a readable CSV (line {reader.line_num}: {err})") from None
    if not rows:
        raise StockcastError(f"price file {path} is empty")
    header, body = rows[0][1], rows[1:]
    if len(header) == 1:
        raise StockcastError(f"price file {path} has a single column ({header[0]!r}): "
                             "separate the columns with commas")
    ragged = [(line, row) for line, row in body if len(row) != len(header)]
    if ragged:
        line, row = ragged[0]
        truncated = " (the file looks truncated)" if ragged == body[-1:] else ""
        raise StockcastError(
            f"price file {path}: {len(ragged)} line(s) do not have the header's {len(header)} fields{truncated}, "
            f"e.g. line {line} has {len(row)}: {','.join(row)!r}"
        )
    if not body:
        raise StockcastError(f"price file {path} has a header but no rows")
    return text


def read_price_csv(path: str | Path) -> pd.DataFrame:
    """Read a plain, Yahoo (`null` rows) or yfinance multi-level CSV into canonical form, or refuse it."""
    text = check_price_file(path)
    source = io.StringIO(text)
    try:
        if text.split(",", 1)[0].strip() == "Price":  # yfinance: Price/Ticker header rows, then an empty `Date` row
            raw = pd.read_csv(source, header=[0, 1], index_col=0, skiprows=[2], na_values=["null"])
        else:
            raw = pd.read_csv(source, index_col=0, na_values=["null"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise StockcastError(f"cannot read price file {path}: {err}") from None
    return canonicalize(raw, f"price file {path}")


def write_price_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the canonical CSV (ISO dates) through a temporary file, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as partial:
        frame[COLUMNS].to_csv(partial, date_format="%Y-%m-%d", index_label="Date")


def check_prices(frame: pd.DataFrame, columns: list[str], symbol: str) -> None:
    """Refuse missing or non-positive values in the columns a model will read."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise StockcastError(f"unknown feature column(s) {unknown}; choose from {COLUMNS}")
    for column in columns:
        values = frame[column]
        bad = values.isna() | ((values <= 0) if column in PRICE_COLUMNS else (values < 0))
        if bad.any():
            dates = [d.strftime("%Y-%m-%d") for d in frame.index[bad][:3]]
            kind = "missing or non-positive" if column in PRICE_COLUMNS else "missing or negative"
            raise StockcastError(
                f"{symbol}: {int(bad.sum())} {kind} {column} value(s), first on {', '.join(dates)}"
            )


def cut_placeholders(frame: pd.DataFrame, symbol: str) -> tuple[pd.DataFrame, list[str]]:
    """The rows after `frame`'s last placeholder day (see STALE_SESSIONS; the newest clean stretch, the one a
    forecast reads), and a warning naming the ticker and the dates cut; a file ending in placeholders is refused.
    A repeated close here and there (a quiet day) is real data and kept."""
    stale = frame["Close"].diff().eq(0)
    crowded = stale.rolling(STALE_SESSIONS).mean().ge(0.5)  # at a window's last day
    # A day inside any crowded window: the reversed rolling max carries a window's flag back over its days.
    inside = crowded[::-1].rolling(STALE_SESSIONS, min_periods=1).max()[::-1].astype(bool)
    placeholder = stale & inside
    if not placeholder.any():
        return frame, []
    last = placeholder[placeholder].index[-1]
    kept = frame[frame.index > last]
    span = f"{frame.index[0]:%Y-%m-%d}..{last:%Y-%m-%d}"
    if kept.empty:
        raise StockcastError(f"{symbol}: its last sessions ({span}) are placeholder quotes (at least half of "
                             f"{STALE_SESSIONS} sessions repeat the previous close): no trading to learn from")
    message = (f"{symbol}: cut {len(frame) - len(kept)} of {len(frame)} rows ({span}) ending in placeholder "
               f"quotes (at least half of {STALE_SESSIONS} sessions repeat the previous close: no trading); "
               f"kept {kept.index[0]:%Y-%m-%d}..{kept.index[-1]:%Y-%m-%d}")
    log.warning(message)
    return kept, [message]


@dataclass(frozen=True)
class Jump:
    """A one-day close move near a split ratio, and what the days around it say it was."""

    date: pd.Timestamp
    ratio: float  # previous close / this close
    split: bool  # True: suspected unadjusted split or bonus issue; False: a market move
    evidence: str  # why, in words


def _volume_evidence(volume: pd.Series, at: int, ratio: float) -> tuple[bool, str] | None:
    """A split day trades as usual at its new level: volume at most `max(1, ratio)` times the level before (raw
    volume moves by the ratio, adjusted volume not at all); news that moves a price a third trades several times
    that. None without volume to read."""
    before = volume.iloc[max(0, at - VOLUME_SESSIONS):at].median()
    day = volume.iloc[at]
    if not (day > 0) or not np.isfinite(before):
        return None
    if before == 0:
        return False, f"the first trades after {VOLUME_SESSIONS} sessions without any: a stale quote ended"
    after = volume.iloc[at + 1:at + 1 + VOLUME_SESSIONS].median()
    level = f"x{after / before:.2f} the {VOLUME_SESSIONS} sessions after" if np.isfinite(after) else "none after"
    if day / before / max(1.0, ratio) >= VOLUME_SPIKE:
        return False, f"traded news: volume {day / before:.1f}x its level that day, {level}"
    return True, f"the day's volume ordinary: {day / before:.2f}x its level, {level}"


def _reversion_evidence(close: pd.Series, at: int, ratio: float) -> tuple[bool, str] | None:
    """A split moves the level for good; a market move this large often gives half of it back within weeks."""
    if at + REVERSION_SESSIONS >= len(close):
        return None
    back = math.log(close.iloc[at + REVERSION_SESSIONS] / close.iloc[at]) / math.log(ratio)
    if back >= REVERSION_SHARE:
        return False, f"{back:.0%} of the move undone {REVERSION_SESSIONS} sessions later"
    return True, f"the new level held: {abs(back):.0%} of the move undone {REVERSION_SESSIONS} sessions later"


def _market_evidence(market: pd.Series | None, date: pd.Timestamp, ratio: float) -> tuple[bool, str] | None:
    """A split owes nothing to the market; a day the index itself moved several percent the same way is a market
    day."""
    if market is None or date not in market.index:
        return None
    at = market.index.get_loc(date)
    if not isinstance(at, int) or at == 0:
        return None
    move = market.iloc[at] / market.iloc[at - 1] - 1
    if abs(move) >= MARKET_MOVE and (move < 0) == (ratio > 1):
        return False, f"the index moved {move:+.1%} that day"
    return True, f"the index moved {move:+.1%} that day"


def find_split_jumps(frame: pd.DataFrame, market: pd.Series | None = None) -> list[Jump]:
    """Days whose close moved by a ratio near a split ratio, each judged a split or a market move on the volume
    that day, whether the price reverted, and the market index's move (`market`: its closes, where known). Any
    sign of a market move clears the day; a day with no evidence either way stays suspect."""
    close = frame["Close"]
    volume = frame["Volume"].astype(float) if "Volume" in frame else None
    ratio = close.shift(1) / close
    jumps = []
    for date, value in ratio.dropna().items():
        if not any(abs(math.log(value) - math.log(split)) < SPLIT_TOLERANCE for split in SPLIT_RATIOS):
            continue
        at = close.index.get_loc(date)
        found = [_volume_evidence(volume, at, value) if volume is not None else None,
                 _reversion_evidence(close, at, value), _market_evidence(market, date, value)]
        said = [item for item in found if item is not None]
        split = all(verdict for verdict, _ in said)
        reasons = [reason for verdict, reason in said if verdict == split] or ["no volume, later prices or index"]
        jumps.append(Jump(date, float(value), split, "; ".join(reasons)))
    return jumps


def warn_split_jumps(frame: pd.DataFrame, symbol: str, market: pd.Series | None = None) -> list[str]:
    """One warning per suspected split, returned so runs can record them; the market moves near a split ratio
    at DEBUG, with why they are not splits."""
    warnings = []
    for jump in find_split_jumps(frame, market):
        head = f"{symbol}: close jumped by ratio {jump.ratio:.3f} (previous/current) on {jump.date:%Y-%m-%d}"
        if not jump.split:
            log.debug("%s: a market move, not a split: %s", head, jump.evidence)
            continue
        message = f"{head}: suspect an unadjusted split or bonus issue; {jump.evidence}. Use split-adjusted prices."
        log.warning(message)
        warnings.append(message)
    return warnings
