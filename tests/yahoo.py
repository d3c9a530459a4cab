"""yfinance mocked at the network edge, in the exact shapes it returns: `yf.download`'s (Price, Ticker) frames."""

from __future__ import annotations

import pandas as pd
import pytest
import yfinance


def yfinance_frame(prices: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """What `yf.download(symbol, auto_adjust=False)` returns: (Price, Ticker) columns, Date index."""
    ordered = prices[["Adj Close", "Close", "High", "Low", "Open", "Volume"]]
    columns = pd.MultiIndex.from_product([ordered.columns, [symbol]], names=["Price", "Ticker"])
    frame = pd.DataFrame(ordered.to_numpy(), index=ordered.index.copy(), columns=columns)
    frame.index.name = "Date"
    return frame


def fake_download(monkeypatch: pytest.MonkeyPatch, yahoo: dict[str, pd.DataFrame]) -> list[tuple[str, str, str]]:
    """`yf.download` serving `yahoo` (symbol -> its history, read at each call: a test may change it) with
    yfinance's exclusive end, and an unknown ticker as yfinance answers it: an empty frame, no exception.
    Returns the list each call's (symbol, start, end) is appended to."""
    calls = []

    def download(symbol, start, end, **kwargs):
        calls.append((symbol, start, end))
        if symbol not in yahoo:
            return pd.DataFrame()
        return yfinance_frame(yahoo[symbol].loc[start:pd.Timestamp(end) - pd.Timedelta(days=1)], symbol)

    monkeypatch.setattr(yfinance, "download", download)
    return calls
