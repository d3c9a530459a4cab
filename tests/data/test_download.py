"""Downloader: yfinance mocked at the network edge, in the exact shape yfinance returns."""

import logging
from pathlib import Path

import pandas as pd
import pytest
import yfinance

from stockcast import ROOT
from stockcast.data.download import PRICES_DIR, SAMPLE_DIR, Downloader
from stockcast.data.prices import read_price_csv, write_price_csv
from stockcast.errors import StockcastError
from tests.yahoo import fake_download, yfinance_frame


@pytest.fixture
def vale3(shared_data) -> pd.DataFrame:
    return read_price_csv(shared_data / "VALE3.SA.csv")


@pytest.fixture
def fake_yf(monkeypatch, vale3):
    """Serve VALE3.SA like yfinance (end exclusive); record each call."""
    return fake_download(monkeypatch, {"VALE3.SA": vale3})


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
    monkeypatch.delenv("STOCKCAST_DATA_DIRS", raising=False)
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


def test_the_repositorys_prices_come_after_env_dirs(tmp_path, monkeypatch, shared_data, caplog):
    """prices/ is the default offline source of a checkout; $STOCKCAST_DATA_DIRS overrides it."""
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    monkeypatch.delenv("STOCKCAST_DATA_DIRS", raising=False)
    with caplog.at_level(logging.WARNING):
        frame = Downloader(tmp_path).load("VALE3", "2018-01-01", "2018-12-31")  # before the sample's first day
    assert frame.index[0] == pd.Timestamp("2018-01-02")
    assert f"using local file {PRICES_DIR / 'VALE3.SA.csv'}" in caplog.text
    monkeypatch.setenv("STOCKCAST_DATA_DIRS", str(shared_data / "yahoo"))
    frame = Downloader(tmp_path).load("VALE3", "2000-01-01", "2000-12-31")  # only yahoo/ has year 2000
    assert frame.index[0] == pd.Timestamp("2000-01-03")


def test_packaged_sample_is_the_last_resort(tmp_path, monkeypatch, caplog):
    """As in the container image's build, which has no prices/ folder."""
    monkeypatch.delenv("STOCKCAST_DATA_DIRS", raising=False)
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    with caplog.at_level(logging.WARNING):
        frame = Downloader(tmp_path, repo_dirs=[]).load("VALE3", "2024-01-01", "2024-12-31")
    assert len(frame) > 200 and "sample/VALE3.SA.csv" in caplog.text


def test_offline_never_asks_yahoo_and_reads_the_sample(tmp_path, monkeypatch, fake_yf, caplog):
    """The container image's build: downloads off, no prices/ folder, the committed sample, nothing cached; what
    was asked for is said at INFO, not warned about."""
    monkeypatch.delenv("STOCKCAST_DATA_DIRS", raising=False)
    downloader = Downloader(tmp_path, online=False, repo_dirs=[])
    with caplog.at_level(logging.DEBUG):
        frame = downloader.load("VALE3", "2024-01-01", "2025-11-07")
    assert fake_yf == [] and "downloads are off" in caplog.text and "sample/VALE3.SA.csv" in caplog.text
    assert caplog.records[-1].levelno == logging.DEBUG  # each file read: the summary says it at INFO, once
    assert downloader.summary() == f"1 ticker read from {SAMPLE_DIR.relative_to(ROOT)}, downloads off"
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert frame.index[-1] == pd.Timestamp("2025-11-07") and not list(tmp_path.iterdir())


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


def offline(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise ConnectionError("Could not resolve host: query2.finance.yahoo.com")

    monkeypatch.setattr(yfinance, "download", fail)


def test_broken_cache_is_an_error_not_replaced_by_another_copy(tmp_path, monkeypatch, shared_data):
    """Offline, the shared PETR4 copy exists, but the cache was found first: it is named, not skipped."""
    offline(monkeypatch)
    (tmp_path / "PETR4.SA.csv").write_text("Date,Close\n2021-01-04,28.9\n2021-01")
    with pytest.raises(StockcastError, match=r"PETR4\.SA\.csv: 1 line.*truncated.*delete the file to download it"):
        Downloader(tmp_path, use_sample=False).load("PETR4", "2021-01-01", "2021-06-30")


def test_broken_cache_is_not_overwritten_by_a_download(tmp_path, fake_yf):
    path = tmp_path / "VALE3.SA.csv"
    path.write_bytes(b"Date,Close\n2019-01-02,50\xe9\n")
    with pytest.raises(StockcastError, match="is not UTF-8 .*a cached download"):
        Downloader(tmp_path, use_sample=False).load("VALE3", "2020-01-01", "2020-12-31")
    assert len(fake_yf) == 1 and path.read_bytes() == b"Date,Close\n2019-01-02,50\xe9\n"


def test_broken_local_file_is_an_error_not_replaced_by_the_sample(tmp_path, monkeypatch):
    offline(monkeypatch)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "VALE3.SA.csv").write_text("Date,Close\n2024-01-02,60\n2024-01-02,61\n")
    with pytest.raises(StockcastError, match=r"local/VALE3\.SA\.csv: 1 date\(s\) appear in several rows") as caught:
        Downloader(tmp_path / "data", extra_dirs=[str(tmp_path / "local")]).load("VALE3", "2024-01-01", "2024-12-31")
    assert "cached download" not in str(caught.value)


def test_unreadable_cache_record_means_download_again(tmp_path, fake_yf, caplog):
    downloader = Downloader(tmp_path, use_sample=False)
    downloader.load("VALE3", "2020-01-01", "2020-12-31")
    (tmp_path / "VALE3.SA.json").write_text('{"start": "2020-01-01", "end": "2020-')  # cut off mid-write
    with caplog.at_level(logging.WARNING):
        downloader.load("VALE3", "2020-03-01", "2020-06-30")
    assert len(fake_yf) == 2 and "ignoring unreadable cache record" in caplog.text


def test_a_revised_download_replaces_the_cached_rows_it_overlaps(tmp_path, fake_yf, vale3):
    """Merging cache and download is not a user file with duplicate dates: the fresh rows win."""
    path = tmp_path / "VALE3.SA.csv"
    stale = vale3.loc["2020-06-01":"2020-12-31"].copy()
    stale["Adj Close"] = stale["Close"] * 0.9  # Yahoo re-adjusts past closes after each dividend
    stale.to_csv(path, index_label="Date")
    frame = Downloader(tmp_path, use_sample=False).load("VALE3", "2020-01-01", "2020-12-31")
    pd.testing.assert_frame_equal(frame, vale3.loc["2020-01-01":"2020-12-31"], check_freq=False)


def test_a_download_with_conflicting_rows_falls_back_with_the_reason(tmp_path, monkeypatch, shared_data, caplog):
    def twice(symbol, start, end, **kwargs):
        rows = read_price_csv(shared_data / "VALE3.SA.csv").loc["2020-01-02":"2020-01-10"]
        doubled = pd.concat([rows, rows.iloc[-1:] * 1.01])  # the last day again, other prices
        return yfinance_frame(doubled, symbol)

    monkeypatch.setattr(yfinance, "download", twice)
    with caplog.at_level(logging.WARNING):
        Downloader(tmp_path, use_sample=False).load("VALE3", "2020-01-01", "2020-12-31")
    assert ("download of VALE3.SA failed (yfinance download of VALE3.SA: 1 date(s) appear in several rows"
            in caplog.text)
    assert not (tmp_path / "VALE3.SA.csv").exists()


def test_a_crash_while_writing_keeps_the_previous_cache(tmp_path, monkeypatch, vale3):
    path = tmp_path / "VALE3.SA.csv"
    write_price_csv(vale3.loc["2020"], path)
    before = path.read_text()

    def crash(frame, target, **kwargs):
        Path(target).write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2021-01-04,9")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(KeyboardInterrupt):
        write_price_csv(vale3.loc["2021"], path)
    assert path.read_text() == before
