"""Read, clean and check daily OHLCV tables in the shapes Yahoo and yfinance really produce."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.errors import StockcastError

log = logging.getLogger(__name__)

COLUMNS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
PRICE_COLUMNS = ["Open", "High", "Low", "Close", "Adj Close"]
# Split and bonus-share ratios; a one-day close jump this close to one is suspect. Smaller ratios
# (10-25 % bonus issues) are indistinguishable from real crashes such as March 2020, so not flagged.
SPLIT_RATIOS = (1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 20.0)
SPLIT_TOLERANCE = 0.03


def canonicalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn a yfinance/Yahoo frame (flat or (Price, Ticker) columns) into canonical OHLCV.

    Result: a `Date` index (ascending, unique, tz-naive) and exactly `COLUMNS`; Yahoo's all-null
    rows are dropped. `Adj Close` falls back to `Close` for auto-adjusted downloads.
    """
    frame = frame.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        tickers = frame.columns.get_level_values(-1).unique()
        if len(tickers) > 1:
            raise StockcastError(f"expected one ticker's prices, got columns for {list(tickers)}")
        frame.columns = frame.columns.get_level_values(0)
    frame.columns = [str(c).strip() for c in frame.columns]
    if "Date" in frame.columns:
        frame = frame.set_index("Date")
    if "Close" not in frame.columns:
        raise StockcastError(f"price table has no Close column (columns: {list(frame.columns)})")
    if "Adj Close" not in frame.columns:
        frame["Adj Close"] = frame["Close"]
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = np.nan
    frame = frame[COLUMNS].apply(pd.to_numeric, errors="coerce")
    index = pd.to_datetime(frame.index, errors="coerce")
    if getattr(index, "tz", None) is not None:
        index = index.tz_localize(None)
    frame.index = index.normalize()
    frame.index.name = "Date"
    frame = frame[frame.index.notna()]
    frame = frame.dropna(how="all", subset=PRICE_COLUMNS)
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame


def read_price_csv(path: str | Path) -> pd.DataFrame:
    """Read a plain, Yahoo (`null` rows) or yfinance multi-level CSV into canonical form."""
    path = Path(path)
    with path.open() as handle:
        first = handle.readline().split(",")[0].strip()
    try:
        if first == "Price":  # yfinance: Price/Ticker header rows, then an empty `Date` row
            raw = pd.read_csv(path, header=[0, 1], index_col=0, skiprows=[2], na_values=["null"])
        else:
            raw = pd.read_csv(path, index_col=0, na_values=["null"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise StockcastError(f"cannot read price file {path}: {err}") from None
    return canonicalize(raw)


def write_price_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the canonical CSV: Date,Open,High,Low,Close,Adj Close,Volume (ISO dates)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame[COLUMNS].to_csv(path, date_format="%Y-%m-%d", index_label="Date")


def check_prices(frame: pd.DataFrame, columns: list[str], ticker: str) -> None:
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
                f"{ticker}: {int(bad.sum())} {kind} {column} value(s), first on {', '.join(dates)}"
            )


def find_split_jumps(close: pd.Series) -> list[tuple[pd.Timestamp, float]]:
    """Days whose close moved by a ratio near a split ratio: likely unadjusted for that split."""
    ratio = close.shift(1) / close
    suspects = []
    for date, value in ratio.dropna().items():
        for split in SPLIT_RATIOS:
            for candidate in (split, 1 / split):
                if abs(math.log(value / candidate)) < SPLIT_TOLERANCE:
                    suspects.append((date, float(value)))
    return suspects


def warn_split_jumps(frame: pd.DataFrame, ticker: str) -> list[str]:
    """Log one warning per suspect day and return the warnings, so runs can record them."""
    warnings = []
    for date, ratio in find_split_jumps(frame["Close"]):
        message = (
            f"{ticker}: close jumped by ratio {ratio:.3f} (previous/current) on {date:%Y-%m-%d}; "
            "this looks like an unadjusted split or bonus issue. Use split-adjusted prices."
        )
        log.warning(message)
        warnings.append(message)
    return warnings
