"""The price store the handler forecasts by-name requests from: its files read once per version, broken ones
their ticker's error alone, file names only from its own listing, staleness counted in trading sessions, and a
by-name forecast the same as sending the same bars."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest
import torch

from stockcast.runtime import store as store_module
from stockcast.runtime.body import BadRequest
from stockcast.runtime.description import describe
from stockcast.runtime.preprocess import Parsed, parse_batch
from stockcast.runtime.store import PriceStore, Unavailable, stale_sessions
from tests.bad_bodies import HOSTILE_STOCKS
from tests.bundles import portfolio_of, tiny_bundle

TODAY = dt.datetime.now(dt.UTC).date()
# Weekdays around today: the archive's calendar as far as these tests need one.
SESSIONS = [day.isoformat() for day in (TODAY - dt.timedelta(days=400) + dt.timedelta(days=n) for n in range(800))
            if day.weekday() < 5]
CALENDAR = {"exchanges": {"BVMF": {"sessions": SESSIONS}}, "stocks": {"VALE3.SA": "BVMF", "PETR4.SA": "BVMF"}}
BARS = ["Close", "Open", "High", "Low"]
HOSTILE = [*HOSTILE_STOCKS, ""]


def write_bars(folder: Path, symbol: str, days: int = 40, behind: int = 0, scale: float = 1.0) -> list[str]:
    """`days` bars of `symbol` ending `behind` sessions before today's last closed session, written as the
    refresh writes its cache (one step); their dates."""
    closed = [day for day in SESSIONS if day < TODAY.isoformat()]
    dates = closed[len(closed) - behind - days:len(closed) - behind]
    lines = ["Date,Open,High,Low,Close,Volume"]
    for number, day in enumerate(dates):
        close = scale * (60 + 0.2 * number + (number % 3) * 0.1)
        lines.append(f"{day},{close - 0.1:.4f},{close + 0.4:.4f},{close - 0.5:.4f},{close:.4f},1000")
    partial = folder / f".{symbol}.partial"
    partial.write_text("\n".join(lines) + "\n")
    os.replace(partial, folder / f"{symbol}.csv")
    return dates


def _sent(folder: Path, symbol: str, context: int) -> dict:
    """The last `context` bars of a store file as a client would send them."""
    rows = [line.split(",") for line in (folder / f"{symbol}.csv").read_text().splitlines()[1:]][-context:]
    return {"prices": [float(r[4]) for r in rows], "open": [float(r[1]) for r in rows],
            "high": [float(r[2]) for r in rows], "low": [float(r[3]) for r in rows], "last_date": rows[-1][0]}


@pytest.fixture
def served(tmp_path):
    """A range model answering VALE3 (the default) and PETR4, over a store holding VALE3 only."""
    bundles = [tiny_bundle(f"{symbol}-v1", {"symbol": symbol}, seed=number, features=BARS, context=30,
                           volatility="garman_klass")
               for number, symbol in enumerate(["VALE3.SA", "PETR4.SA"])]
    write_bars(tmp_path, "VALE3.SA")
    return portfolio_of(*bundles, calendar=CALENDAR, default="VALE3"), PriceStore(tmp_path)


def _parse(portfolio, store, *bodies):
    batch = parse_batch([({"body": json.dumps(body)}, {}) for body in bodies], portfolio, store)
    return batch, batch.requests


def test_a_by_name_forecast_is_the_sent_bars_forecast(served, tmp_path):
    portfolio, store = served
    batch, (by_name, sent, default) = _parse(portfolio, store, {"stock": "vale3"},
                                             {"stock": "VALE3", **_sent(tmp_path, "VALE3.SA", 30)}, {})
    first, second, third = batch.instances
    assert torch.equal(first.history, second.history) and torch.equal(first.history, third.history)
    assert first.dates == second.dates and first.stored == third.stored == (_sent(tmp_path, "VALE3.SA", 1)
                                                                           ["last_date"], 0)
    assert second.stored is None  # sent bars: no store involved


def test_missing_broken_and_stale_files_are_their_tickers_errors_alone(served, tmp_path):
    portfolio, store = served
    body = {"instances": [{"stock": "PETR4"}, {"stock": "VALE3"}]}
    _, [parsed] = _parse(portfolio, store, body)
    assert isinstance(parsed, Parsed) and isinstance(parsed.items[0], Unavailable) and parsed.items[1] == 0
    assert "no bars of PETR4.SA" in parsed.items[0].message and parsed.items[0].status.value == 422
    (tmp_path / "PETR4.SA.csv").write_text("Date,Open,High,Low,Close\n2025-01-02,1,2,0.5,x\n")
    _, [parsed] = _parse(portfolio, store, body)
    assert "PETR4.SA.csv cannot be read" in parsed.items[0].message and parsed.items[1] == 0
    write_bars(tmp_path, "PETR4.SA", behind=6)
    _, [parsed] = _parse(portfolio, store, body)
    assert "6 trading sessions ago (at most 5 are served)" in parsed.items[0].message
    write_bars(tmp_path, "PETR4.SA", behind=5)
    batch, [parsed] = _parse(portfolio, store, body)
    assert parsed.items == (0, 1) and batch.instances[0].stored[1] == 5


@pytest.mark.parametrize(("text", "message"), [
    ("Day,Open,High,Low,Close\n", "has no column Date"),
    ("Date,Open,High,Low,Close\n2025-01-03,1,2,0.5,1\n2025-01-02,1,2,0.5,1\n", "line 3 (2025-01-02) is not after"),
    ("Date,Open,High,Low,Close\n2025-13-01,1,2,0.5,1\n", "cannot be read"),
    ("Date,Open,High,Low,Close\n2025-01-02,1,inf,0.5,1\n", "missing or infinite price"),
    ("Date,Open,High,Low,Close\n", "holds no rows"),
    (b"\xff\xfe", "cannot be read"),
])
def test_a_broken_file_says_what_is_wrong(tmp_path, text, message):
    (tmp_path / "X.csv").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(Unavailable, match=re.escape(message)):
        PriceStore(tmp_path).bars("X")


def test_a_wrong_bar_in_the_store_is_named_as_a_sent_one_would_be(served, tmp_path):
    portfolio, store = served
    lines = (tmp_path / "VALE3.SA.csv").read_text().splitlines()
    day, *_ = lines[-1].split(",")
    (tmp_path / "VALE3.SA.csv").write_text("\n".join([*lines[:-1], f"{day},60,59,61,60,1"]) + "\n")
    _, [error] = _parse(portfolio, store, {"stock": "VALE3"})
    assert isinstance(error, BadRequest) and error.status.value == 400
    assert "high[29] (59) is below low[29] (61)" in error.message


def test_a_file_is_read_once_per_version(served, tmp_path, monkeypatch):
    portfolio, store = served
    reads = []
    parsed = store_module._parsed
    monkeypatch.setattr(store_module, "_parsed", lambda data, name: reads.append(name) or parsed(data, name))
    for _ in range(3):
        batch, _ = _parse(portfolio, store, {"stock": "VALE3"})
    assert reads == ["VALE3.SA.csv"]
    before = batch.instances[0].history
    write_bars(tmp_path, "VALE3.SA", scale=2.0)  # the refresh replaces the file
    batch, _ = _parse(portfolio, store, {"stock": "VALE3"})
    assert reads == ["VALE3.SA.csv"] * 2 and torch.allclose(batch.instances[0].history[:, 0], 2 * before[:, 0])


@pytest.mark.parametrize("stock", HOSTILE)
def test_a_hostile_stock_never_names_a_file(served, stock):
    portfolio, store = served
    assert store.listed(stock) is None
    _, [error] = _parse(portfolio, store, {"stock": stock})
    assert isinstance(error, BadRequest) and error.status.value == 400


def test_a_global_model_answers_a_ticker_only_the_store_holds(tmp_path):
    bundle = tiny_bundle("all-v1", {"symbol": "all", "any_ticker": True}, features=BARS, context=30,
                         volatility="garman_klass")
    write_bars(tmp_path, "KO")
    portfolio = portfolio_of(bundle, members={"VALE3.SA": "all-v1"}, calendar={**CALENDAR, "otherwise": "BVMF"})
    portfolio = type(portfolio)(**{**portfolio.__dict__, "any_ticker": "all-v1"})
    batch, [ko, missing] = _parse(portfolio, PriceStore(tmp_path), {"stock": "ko"}, {"stock": "JNJ"})
    assert batch.instances[0].symbol == "KO" and "no bars of JNJ" in missing.message


def test_without_a_store_prices_stay_required_and_bars_need_closes(served):
    portfolio, store = served
    _, [error] = _parse(portfolio, None, {"stock": "VALE3"})
    assert "holds no price store" in error.message
    _, [error] = _parse(portfolio, store, {"stock": "VALE3", "open": [1.0] * 30})
    assert "go with the closes in 'prices'" in error.message


def test_the_description_lists_the_stores_tickers(served):
    portfolio, store = served
    assert describe(portfolio, store)["price_store"] == {"tickers": ["VALE3.SA"], "max_stale_sessions": 5}
    assert describe(portfolio)["price_store"] is None


def test_staleness_counts_the_sessions_closed_since_the_last_bar():
    sessions = ["2025-11-05", "2025-11-06", "2025-11-07", "2025-11-10", "2025-11-11"]
    assert stale_sessions("2025-11-07", sessions, dt.date(2025, 11, 10)) == 0  # Monday's session still trading
    assert stale_sessions("2025-11-07", sessions, dt.date(2025, 11, 11)) == 1
    assert stale_sessions("2025-11-05", sessions, dt.date(2025, 11, 8)) == 2
    assert stale_sessions("2025-11-11", sessions, dt.date(2025, 11, 11)) == 0


def test_the_configured_store_resolves_against_the_project(tmp_path):
    assert PriceStore.configured({}, {}) is None
    found = PriceStore.configured({"price_store": "data", "max_stale_sessions": None}, {"STOCKCAST_ROOT": "/p"})
    assert found is not None and found.folder == Path("/p/data") and found.max_stale_sessions is None
    overridden = PriceStore.configured({"price_store": "data"}, {"STOCKCAST_PRICE_STORE": str(tmp_path)})
    assert overridden is not None and overridden.folder == tmp_path


def test_every_spelling_is_one_ticker_on_its_exchanges_calendar(tmp_path):
    """A global model's B3 ticker outside its list: "ELET3", " elet3 " and "ELET3.SA" name one stock, forecast
    from one file and dated by B3's sessions (here B3 closes on a day the NYSE trades)."""
    future = [day for day in SESSIONS if day > TODAY.isoformat()]
    b3 = [day for day in SESSIONS if day != future[1]]
    calendar = {"exchanges": {"BVMF": {"sessions": b3}, "XNYS": {"sessions": SESSIONS}},
                "stocks": {"VALE3.SA": "BVMF"}, "suffixes": {".SA": "BVMF"}, "otherwise": "XNYS"}
    bundle = tiny_bundle("all-v1", {"symbol": "all", "any_ticker": True}, features=BARS, context=30,
                         volatility="garman_klass")
    portfolio = portfolio_of(bundle, members={"VALE3.SA": "all-v1"}, calendar=calendar)
    portfolio = type(portfolio)(**{**portfolio.__dict__, "any_ticker": "all-v1"})
    write_bars(tmp_path, "ELET3.SA")
    bodies = [{"stock": "ELET3"}, {"stock": " elet3 "}, {"stock": "ELET3.SA"},
              {"stock": "elet3", **_sent(tmp_path, "ELET3.SA", 30)}]
    batch, requests = _parse(portfolio, PriceStore(tmp_path), *bodies)
    assert all(isinstance(request, Parsed) for request in requests), requests
    first = batch.instances[0]
    assert first.symbol == "ELET3.SA" and first.ticker.exchange == "BVMF" and future[1] not in first.dates
    for other in batch.instances[1:]:
        assert other.ticker == first.ticker and other.dates == first.dates
        assert torch.equal(other.history, first.history)


def test_a_derivation_is_kept_per_file_version_key_and_extra_files_and_bounded(tmp_path):
    for symbol in ("A", "B", "C"):
        write_bars(tmp_path, symbol)
    store = PriceStore(tmp_path, capacity=2)
    derived = []

    def derive(bars):
        derived.append(bars.dates[-1])
        return bars.columns["Close"][-1]

    assert store.stored("A", "rows", derive) == store.stored("A", "rows", derive) and len(derived) == 1
    store.stored("a", "rows", derive)  # any spelling: the same file
    store.stored("A", "year", derive)  # another key: derived again, once
    store.stored("A", "year", derive)
    assert len(derived) == 2
    store.stored("A", "rows", derive, extra=["B"])  # what it reads grew by B's file
    store.stored("A", "rows", derive, extra=["B"])
    write_bars(tmp_path, "B", scale=2.0)  # B replaced: A's derivation read again
    store.stored("A", "rows", derive, extra=["B"])
    assert len(derived) == 4
    before = os.stat(tmp_path / "A.csv")
    (tmp_path / ".A").write_bytes((tmp_path / "A.csv").read_bytes())
    os.replace(tmp_path / ".A", tmp_path / "A.csv")  # the same bytes in a new file (another inode)
    os.utime(tmp_path / "A.csv", ns=(before.st_atime_ns, before.st_mtime_ns))
    store.stored("A", "rows", derive, extra=["B"])
    assert len(derived) == 5
    store.stored("C", "rows", derive)  # a third derivation: the least recently used (A's year) is dropped
    store.stored("A", "year", derive)
    assert len(derived) == 7 and len(store._kept) == 2


def test_a_broken_file_is_derived_once_per_version_and_raises_a_fresh_error(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close\n2025-01-02,1,2,0.5,x\n")
    store = PriceStore(tmp_path)
    errors = []
    for _ in range(2):
        with pytest.raises(Unavailable, match="X.csv cannot be read") as raised:
            store.stored("X", "rows", lambda bars: bars)
        errors.append(raised.value)
    assert errors[0] is not errors[1]
