"""By-name requests against a real TorchServe reading a price store: `{"stock": "VALE3"}` answers what sending the
same bars answers, `{}` the default ticker; a file replaced under the running server is read by the next request;
a broken, missing or stale file is its forecast's error alone; hostile `stock` values are 400s."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from stockcast.serving.client_loop import ClientLoop
from stockcast.serving.versions import startup_archive
from tests.bad_bodies import HOSTILE_STOCKS
from tests.conftest import ROOT
from tests.serving import answered, recent_bars, replace_stored, running_server, sent_bars


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def served(trained_run, store, tmp_path_factory):
    """TorchServe serving the session's VALE3 run, its price store `store` ($STOCKCAST_PRICE_STORE)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOCKCAST_PRICE_STORE", str(store))
        with running_server(trained_run[0], tmp_path_factory.mktemp("by_name")) as server:
            yield server


@pytest.fixture(scope="module")
def sessions(served) -> list[str]:
    """B3's sessions as the archive stores them."""
    with zipfile.ZipFile(startup_archive(served.model_store)) as mar:
        calendar = json.loads(mar.read("portfolio.json"))["calendar"]
    return calendar["exchanges"][calendar["stocks"]["VALE3.SA"]]["sessions"]


def _write(store: Path, sessions: list[str], behind: int = 0) -> dict:
    """VALE3's bars as fresh as `behind` sessions ago, replaced in one step as the refresh does; the last 100 of
    them as a request would send them."""
    frame = recent_bars(sessions, behind)
    replace_stored(store, "VALE3.SA", frame)
    return sent_bars(frame)


def test_by_name_is_the_sent_bars_answer_and_the_default_answers_an_empty_object(served, store, sessions):
    sent = _write(store, sessions)
    by_name, default, with_bars = (answered(served, body) for body in ({"stock": "vale3"}, {},
                                                                      {"stock": "VALE3", **sent}))
    assert by_name[0] == default[0] == with_bars[0] == 200, (by_name, default)
    assert by_name[1]["last_date"] == sent["last_date"] and by_name[1]["stale_sessions"] == 0
    for key in ("forecast", "quantiles", "dates", "p_up"):
        assert by_name[1][key] == default[1][key] == with_bars[1][key], key
    assert "stale_sessions" not in with_bars[1]  # sent bars answer as they always did


def test_a_file_replaced_under_the_running_server_is_read_by_the_next_request(served, store, sessions):
    _write(store, sessions, behind=1)
    before = answered(served, {"stock": "VALE3"})[1]
    sent = _write(store, sessions)
    after = answered(served, {"stock": "VALE3"})[1]
    assert after["last_date"] == sent["last_date"] > before["last_date"] and after["forecast"] != before["forecast"]
    assert (before["stale_sessions"], after["stale_sessions"]) == (1, 0)


def test_files_replaced_under_load_are_read_by_the_next_request_and_fail_nothing(served, store, sessions):
    _write(store, sessions, behind=3)
    url, key = f"{served.url('inference')}/predictions/lstm", served.key("inference")
    with ClientLoop(url, key, {"stock": "VALE3"}, clients=4) as load:
        for behind in (2, 1, 0):
            sent = _write(store, sessions, behind=behind)
            status, answer = answered(served, {"stock": "VALE3"})
            assert status == 200 and (answer["last_date"], answer["stale_sessions"]) == (sent["last_date"], behind)
    assert load.requests > 20 and load.errors == 0, load.statuses


def test_a_broken_missing_or_stale_file_fails_its_forecast_alone(served, store, sessions):
    sent = _write(store, sessions)
    portfolio = {"instances": [{"stock": "VALE3"}, {"stock": "VALE3", **sent}]}
    (store / "VALE3.SA.csv").write_text("Date,Open,High,Low,Close\n2025-01-02,1,2,0.5,not a number\n")
    status, broken = answered(served, portfolio)
    assert status == 200 and broken["predictions"][0]["code"] == 422
    assert "VALE3.SA.csv cannot be read" in broken["predictions"][0]["message"]
    assert "forecast" in broken["predictions"][1]
    (store / "VALE3.SA.csv").unlink()
    status, missing = answered(served, {"stock": "VALE3"})
    assert status == 422 and "holds no bars of VALE3.SA" in missing["message"]
    stale = _write(store, sessions, behind=7)
    status, answer = answered(served, {"stock": "VALE3"})
    assert status == 422 and f"last bar of VALE3.SA is {stale['last_date']}, 7 trading sessions ago" in \
        answer["message"]
    _write(store, sessions)


def test_a_compact_answer_is_the_full_one_on_the_fields_it_keeps(served, store, sessions):
    sent = _write(store, sessions)
    portfolio = {"instances": [{"stock": "VALE3"}, {"stock": "vale3", **sent}]}
    compact = {"quantiles": [], "intervals": [80], "p_up": False}
    (status, full), (compact_status, small) = (answered(served, body) for body in (
        portfolio, {**portfolio, "answer": compact}))  # one request at a time: the same forward pass
    assert status == compact_status == 200
    for whole, kept in zip(full["predictions"], small["predictions"], strict=True):
        assert set(kept) == set(whole) - {"quantiles", "p_up"} and kept["intervals"] == {"80": whole["intervals"]["80"]}
        assert {key: value for key, value in kept.items() if key != "intervals"} == \
            {key: whole[key] for key in kept if key != "intervals"}
    status, single = answered(served, {"stock": "VALE3", "answer": {"quantiles": [0.1, 0.9], "dates": False}})
    assert status == 200 and list(single["quantiles"]) == ["0.1", "0.9"] and "dates" not in single
    assert single["quantiles"]["0.1"] == pytest.approx(full["predictions"][0]["quantiles"]["0.1"], rel=1e-5)


@pytest.mark.parametrize("stock", HOSTILE_STOCKS)
def test_a_hostile_stock_is_a_400_and_reads_no_file(served, store, stock):
    shutil.copy(ROOT / "prices" / "VALE3.SA.csv", store / "decoy.csv")
    status, answer = answered(served, {"stock": stock})
    assert status == 400 and "has no deployed model" in answer["message"], answer


def test_the_description_lists_the_stores_tickers(served, store, sessions):
    from stockcast.serving.management import Management

    _write(store, sessions)
    described = Management(served).description()
    assert "VALE3.SA" in described["price_store"]["tickers"] and described["price_store"]["max_stale_sessions"] == 5
