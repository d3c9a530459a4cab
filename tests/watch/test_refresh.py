"""Refresh: yfinance mocked at the network edge in its real shapes (yf.download's (Price, Ticker) frames; a rate
limit as yfinance itself reports it), real prices from the shared CSVs, the real exchange calendars."""

import datetime as dt
import json
import logging

import pandas as pd
import pytest
import yfinance
from yfinance.exceptions import YFRateLimitError

from stockcast.data.download import Downloader
from stockcast.data.prices import read_price_csv
from stockcast.errors import StockcastError
from stockcast.release.lock import exclusive
from stockcast.watch.refresh import LOCK, last_closed_session, refresh
from tests.yahoo import fake_download

# Friday 2025-11-07, an hour after B3 and NYSE closed (21:00 UTC): the last session is that day.
FRIDAY_EVENING = pd.Timestamp("2025-11-07 22:00", tz="UTC")
START = dt.date(2018, 1, 1)


@pytest.fixture
def yahoo(shared_data):
    """Yahoo's current history of each ticker, as a test sets it: the shared CSVs to begin with."""
    return {symbol: read_price_csv(shared_data / f"{symbol}.csv") for symbol in ("VALE3.SA", "PETR4.SA", "AAPL")}


@pytest.fixture
def downloads(monkeypatch, yahoo):
    """yf.download serving `yahoo` (end exclusive; an unknown ticker is an empty frame); each call recorded."""
    return fake_download(monkeypatch, yahoo)


def cache(tmp_path, frame: pd.DataFrame, symbol: str, until: str) -> Downloader:
    """A cache of `frame` up to `until`, downloaded on that day, as the Downloader writes it."""
    downloader = Downloader(tmp_path, use_sample=False)
    downloader.store(symbol, frame.loc[:until], START, dt.date.fromisoformat(until))
    return downloader


def run(downloader: Downloader, symbols: list[str], now=FRIDAY_EVENING, sleep=None):
    lines = []
    results = refresh(downloader, symbols, lines.append, now=now, sleep=sleep or pytest.fail)
    return results, lines


def test_the_last_session_is_the_newest_closed_one():
    assert last_closed_session("BVMF", FRIDAY_EVENING) == pd.Timestamp("2025-11-07")
    assert last_closed_session("BVMF", pd.Timestamp("2025-11-07 20:00", tz="UTC")) == pd.Timestamp("2025-11-06")
    assert last_closed_session("XNYS", pd.Timestamp("2025-11-10 12:00", tz="UTC")) == pd.Timestamp("2025-11-07")
    assert last_closed_session("BVMF", pd.Timestamp("2025-11-21 12:00", tz="UTC")) == pd.Timestamp("2025-11-19")


def test_only_the_missing_days_are_downloaded_and_appended(tmp_path, downloads, yahoo):
    downloader = cache(tmp_path, yahoo["VALE3.SA"], "VALE3.SA", "2025-11-04")
    path = downloader.cache_path("VALE3.SA")
    before = path.read_text()
    results, lines = run(downloader, ["vale3"])
    assert downloads == [("VALE3.SA", "2025-10-29", "2025-11-08")]  # 5 cached sessions again, to see revisions
    assert lines == ["VALE3.SA  +3 days  2025-11-05..2025-11-07  ok"] and not results[0].failed
    assert path.read_text().startswith(before)  # the cached rows exactly as they were
    pd.testing.assert_frame_equal(read_price_csv(path), yahoo["VALE3.SA"], check_freq=False)
    assert downloader.covered("VALE3.SA") == (START, dt.date.today())

    results, lines = run(downloader, ["VALE3.SA"])
    assert lines == ["VALE3.SA  up to date"] and len(downloads) == 1  # nothing missing: no download at all


def test_rate_limited_twice_then_downloaded(tmp_path, monkeypatch, yahoo):
    """The real yf.download, its network call (Ticker.history) raising YFRateLimitError twice: yfinance logs it
    and returns an empty frame, which the refresh recognises and retries after 10 s, then 20 s."""
    def history(ticker, start, end, **kwargs):
        calls.append(start)
        if len(calls) <= 2:
            raise YFRateLimitError()
        rows = yahoo["VALE3.SA"].loc[start:pd.Timestamp(end) - pd.Timedelta(days=1)]
        return rows.tz_localize("America/Sao_Paulo")  # Ticker.history: flat columns, the exchange's time zone

    calls, sleeps = [], []
    monkeypatch.setattr(yfinance.Ticker, "history", history)
    downloader = cache(tmp_path, yahoo["VALE3.SA"], "VALE3.SA", "2025-11-04")
    results, lines = run(downloader, ["VALE3"], sleep=sleeps.append)
    assert sleeps == [10.0, 20.0] and len(calls) == 3
    assert lines == ["VALE3.SA  rate-limited twice, then  +3 days  2025-11-05..2025-11-07  ok"]
    pd.testing.assert_frame_equal(read_price_csv(downloader.cache_path("VALE3.SA")), yahoo["VALE3.SA"],
                                  check_freq=False)


def test_rate_limited_every_time_fails_and_keeps_the_cache(tmp_path, monkeypatch, yahoo):
    def limited(symbol, *args, **kwargs):  # what yf.download does with a YFRateLimitError: logs it, no rows
        logging.getLogger("yfinance").error("%s: %r", [symbol], YFRateLimitError())
        return pd.DataFrame()

    monkeypatch.setattr(yfinance, "download", limited)
    downloader = cache(tmp_path, yahoo["VALE3.SA"], "VALE3.SA", "2025-11-04")
    before = downloader.cache_path("VALE3.SA").read_text()
    sleeps = []
    results, lines = run(downloader, ["VALE3"], sleep=sleeps.append)
    assert sleeps == [10.0, 20.0, 40.0, 80.0] and results[0].failed
    assert lines == ["VALE3.SA  rate-limited 5 times, then  failed: yfinance returned no rows for VALE3.SA: "
                     "['VALE3.SA']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"]
    assert downloader.cache_path("VALE3.SA").read_text() == before


def test_a_revised_past_close_downloads_the_history_again_and_says_so(tmp_path, downloads, yahoo, shared_data):
    """ITUB4's 50 % bonus shares of 2018-11-21: the cache was written before it, unadjusted; Yahoo has since
    divided every earlier price by 1.5. The refresh must not append adjusted days to unadjusted ones."""
    unadjusted = read_price_csv(shared_data / "unadjusted" / "ITUB4.SA.csv")
    yahoo["ITUB4.SA"] = read_price_csv(shared_data / "ITUB4.SA.csv")
    downloader = cache(tmp_path, unadjusted, "ITUB4.SA", "2018-11-19")
    results, lines = run(downloader, ["ITUB4"], now=pd.Timestamp("2018-11-23 22:00", tz="UTC"))
    assert downloads == [("ITUB4.SA", "2018-11-12", "2018-11-24"), ("ITUB4.SA", "2018-01-01", "2018-11-24")]
    assert lines == ["ITUB4.SA  REVISED: 220 past Close changed (max 33.3 %, 2018-01-02..2018-11-19), "
                     "220 past Adj Close changed (max 33.3 %, 2018-01-02..2018-11-19): history re-downloaded, "
                     "models trained on it are stale;  +3 days  2018-11-21..2018-11-23  ok"]
    assert results[0].revised and not results[0].failed
    pd.testing.assert_frame_equal(read_price_csv(downloader.cache_path("ITUB4.SA")),
                                  yahoo["ITUB4.SA"].loc[:"2018-11-23"], check_freq=False)


def test_a_crash_mid_write_leaves_the_old_cache_readable(tmp_path, downloads, yahoo, monkeypatch):
    downloader = cache(tmp_path, yahoo["VALE3.SA"], "VALE3.SA", "2025-11-04")
    path = downloader.cache_path("VALE3.SA")
    before, record = path.read_text(), path.with_suffix(".json").read_text()

    def crash(frame, target, **kwargs):  # half the rows on disk, then the process is interrupted
        target.write_text(before[:len(before) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(KeyboardInterrupt):
        run(downloader, ["VALE3"])
    assert path.read_text() == before and path.with_suffix(".json").read_text() == record
    assert read_price_csv(path).index[-1] == pd.Timestamp("2025-11-04")


def test_a_failed_ticker_keeps_its_cache_and_the_others_refresh(tmp_path, downloads, yahoo):
    """PETR4's new day has no Close (training's checks refuse it), NOPE3 has no cache, BBAS3's is cut off,
    ZZZZ is unknown to Yahoo."""
    downloader = cache(tmp_path, yahoo["PETR4.SA"], "PETR4.SA", "2025-11-04")
    (tmp_path / "BBAS3.SA.csv").write_text("Date,Close\n2025-11-03,21.5\n2025-11")
    cache(tmp_path, yahoo["VALE3.SA"], "VALE3.SA", "2025-11-04")
    cache(tmp_path, yahoo["AAPL"], "AAPL", "2025-11-05")
    cache(tmp_path, yahoo["AAPL"], "ZZZZ", "2025-11-05")
    petr4 = downloader.cache_path("PETR4.SA").read_text()
    yahoo["PETR4.SA"].loc["2025-11-06", "Close"] = 0.0
    results, lines = run(downloader, ["PETR4", "NOPE3", "BBAS3", "VALE3", "ZZZZ", "AAPL"])
    assert lines == [
        "PETR4.SA  failed: PETR4.SA: 1 missing or non-positive Close value(s), first on 2025-11-06",
        f"NOPE3.SA  failed: no cache {tmp_path / 'NOPE3.SA.csv'} yet: refresh extends caches; "
        "train or predict NOPE3.SA once to start one",
        f"BBAS3.SA  failed: price file {tmp_path / 'BBAS3.SA.csv'}: 1 line(s) do not have the header's 2 fields "
        "(the file looks truncated), e.g. line 3 has 1: '2025-11' (a cached download: delete the file to download "
        "it again)",
        "VALE3.SA  +3 days  2025-11-05..2025-11-07  ok",
        "ZZZZ      failed: yfinance returned no rows for ZZZZ: unknown ticker or no trading in the range",
        "AAPL      +2 days  2025-11-06..2025-11-07  ok",
    ]
    assert [r.failed for r in results] == [True, True, True, False, True, False]
    assert downloader.cache_path("PETR4.SA").read_text() == petr4


def test_yahoo_without_the_last_session_yet_is_behind(tmp_path, downloads, yahoo):
    downloader = cache(tmp_path, yahoo["VALE3.SA"], "VALE3.SA", "2025-11-04")
    yahoo["VALE3.SA"] = yahoo["VALE3.SA"].loc[:"2025-11-06"]
    results, lines = run(downloader, ["VALE3"])
    assert lines == ["VALE3.SA  +2 days  2025-11-05..2025-11-06  behind: Yahoo has no rows for 2025-11-07 yet"]
    assert results[0].failed and downloader.covered("VALE3.SA") == (START, dt.date(2025, 11, 6))


def test_a_second_refresh_at_once_is_refused(tmp_path, downloads, yahoo):
    downloader = cache(tmp_path, yahoo["VALE3.SA"], "VALE3.SA", "2025-11-04")
    with exclusive(tmp_path / LOCK, 0, "refresh"), pytest.raises(StockcastError, match="another admin command"):
        run(downloader, ["VALE3"])
    assert downloads == []
    assert json.loads(downloader.cache_path("VALE3.SA").with_suffix(".json").read_text())["end"] == "2025-11-04"
