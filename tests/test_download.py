"""Downloader: yfinance mocked at the network edge, in the exact shape yfinance returns."""

import logging

import pandas as pd
import pytest
import yfinance

from stockcast.data.download import Downloader
from stockcast.data.prices import read_price_csv
from stockcast.errors import StockcastError


def yfinance_frame(prices: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """What `yf.download(symbol, auto_adjust=False)` returns: (Price, Ticker) columns, Date index."""
    ordered = prices[["Adj Close", "Close", "High", "Low", "Open", "Volume"]]
    columns = pd.MultiIndex.from_product([ordered.columns, [symbol]], names=["Price", "Ticker"])
    frame = pd.DataFrame(ordered.to_numpy(), index=ordered.index.copy(), columns=columns)
    frame.index.name = "Date"
    return frame


@pytest.fixture
def vale3(shared_data) -> pd.DataFrame:
    return read_price_csv(shared_data / "VALE3.SA.csv")


@pytest.fixture
def fake_yf(monkeypatch, vale3):
    """Serve VALE3.SA like yfinance (end exclusive); record each call."""
    calls = []

    def download(symbol, start, end, **kwargs):
        calls.append((symbol, start, end))
        if symbol != "VALE3.SA":
            return pd.DataFrame()  # yfinance's answer to an unknown ticker: empty, no exception
        rows = vale3.loc[start:pd.Timestamp(end) - pd.Timedelta(days=1)]
        return yfinance_frame(rows, symbol)

    monkeypatch.setattr(yfinance, "download", download)
    return calls


def test_download_writes_canonical_cache_and_reuses_it(tmp_path, fake_yf, vale3):
    downloader = Downloader(tmp_path, use_sample=False)
    frame = downloader.load("vale3", "2020-01-01", "2020-12-31")
    assert fake_yf == [("VALE3.SA", "2020-01-01", "2021-01-01")]  # yfinance's end is exclusive
    pd.testing.assert_frame_equal(frame, vale3.loc["2020-01-01":"2020-12-31"], check_freq=False)
    header = (tmp_path / "VALE3.SA.csv").read_text().splitlines()[0]
    assert header == "Date,Open,High,Low,Close,Adj Close,Volume"

    again = downloader.load("VALE3.SA", "2020-03-01", "2020-06-30")  # covered: no second download
    assert len(fake_yf) == 1 and again.index[0] == pd.Timestamp("2020-03-02")

    downloader.load("VALE3", "2019-06-01", "2020-12-31")  # not covered: download, merge into cache
    assert len(fake_yf) == 2
    cached = read_price_csv(tmp_path / "VALE3.SA.csv")
    assert cached.index[0] == pd.Timestamp("2019-06-03") and cached.index[-1] == pd.Timestamp("2020-12-30")


def test_unknown_ticker_names_ticker_and_range(tmp_path, fake_yf, monkeypatch):
    monkeypatch.delenv("STOCKCAST_DATA_DIRS")
    with pytest.raises(StockcastError, match=r"cannot get prices for NOPE3\.SA 2020-01-01\.\.2020-12-31.*no rows"):
        Downloader(tmp_path, use_sample=False).load("NOPE3", "2020-01-01", "2020-12-31")


def test_offline_falls_back_to_data_dirs_with_a_warning(tmp_path, monkeypatch, shared_data, caplog):
    def offline(*args, **kwargs):
        raise ConnectionError("Could not resolve host: query2.finance.yahoo.com")

    monkeypatch.setattr(yfinance, "download", offline)
    with caplog.at_level(logging.WARNING):
        frame = Downloader(tmp_path, use_sample=False).load("PETR4", "2021-01-01", "2021-06-30")
    assert frame.index[0] == pd.Timestamp("2021-01-04") and frame.index[-1] == pd.Timestamp("2021-06-30")
    assert f"using local file {shared_data / 'PETR4.SA.csv'}" in caplog.text
    assert "Could not resolve host" in caplog.text


def test_config_dirs_come_before_env_dirs(tmp_path, monkeypatch, shared_data):
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    downloader = Downloader(tmp_path, extra_dirs=[str(shared_data / "yahoo")], use_sample=False)
    frame = downloader.load("VALE3", "2000-01-01", "2000-12-31")  # only yahoo/ has year 2000
    assert frame.index[0] == pd.Timestamp("2000-01-03")


def test_packaged_sample_is_the_last_resort(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("STOCKCAST_DATA_DIRS")
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    with caplog.at_level(logging.WARNING):
        frame = Downloader(tmp_path).load("VALE3", "2024-01-01", "2024-12-31")
    assert len(frame) > 200 and "sample/VALE3.SA.csv" in caplog.text


def test_range_without_rows_is_an_error(tmp_path, fake_yf):
    with pytest.raises(StockcastError, match="no prices for VALE3.SA between 2020-01-04 and 2020-01-05"):
        Downloader(tmp_path, use_sample=False).load("VALE3", "2020-01-04", "2020-01-05")  # a weekend


def test_bad_dates_fail_before_any_download(tmp_path, fake_yf):
    with pytest.raises(StockcastError, match="not an ISO date"):
        Downloader(tmp_path).load("VALE3", "01/02/2020", None)
    with pytest.raises(StockcastError, match="is after end"):
        Downloader(tmp_path).load("VALE3", "2021-01-01", "2020-01-01")
    assert fake_yf == []


def test_yfinance_logged_error_becomes_the_reason(tmp_path, monkeypatch, caplog):
    """yfinance logs failures (DNS, rate limits) and returns an empty frame; the reason is kept."""
    def failing(symbol, *args, **kwargs):
        logging.getLogger("yfinance").error("['%s']: YFRateLimitError('Too Many Requests')", symbol)
        return pd.DataFrame()

    monkeypatch.setattr(yfinance, "download", failing)
    with caplog.at_level(logging.WARNING):
        Downloader(tmp_path, use_sample=False).load("VALE3", "2020-01-01", "2020-12-31")
    assert "download of VALE3.SA failed (yfinance returned no rows for VALE3.SA: ['VALE3.SA']: " \
           "YFRateLimitError('Too Many Requests'))" in caplog.text
    assert not [r for r in caplog.records if r.name == "yfinance"]  # not printed twice
