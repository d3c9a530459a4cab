"""A portfolio's `risk` against a real TorchServe: the answer's contract beside unchanged predictions, the same
numbers for the same request, a by-name instance reading a year of the store's bars, and each bad `risk` field
the request's 400 naming it (the arithmetic's own tests: tests/runtime/test_risk.py)."""

from __future__ import annotations

import pytest

from stockcast.serving.client import call
from tests.serving import answered, recent_bars, replace_stored, sent_bars, serving_a_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(trained_run, tmp_path_factory):
    """TorchServe serving the session's VALE3 run, with a price store holding a year of VALE3's bars."""
    with serving_a_store(trained_run[0], tmp_path_factory, "risk") as (server, store, portfolio):
        calendar = portfolio["calendar"]
        sessions = calendar["exchanges"][calendar["stocks"]["VALE3.SA"]]["sessions"]
        frame = recent_bars(sessions, rows=300)
        replace_stored(store, "VALE3.SA", frame)
        yield server, frame


def _sent(frame, rows: int = 260) -> dict:
    return {"stock": "VALE3", **sent_bars(frame, rows)}


def test_a_portfolio_with_risk_answers_the_contract_beside_its_predictions(served):
    server, frame = served
    instances = [_sent(frame), {"stock": "VALE3"}]  # the same ticker in two books: sent bars, and by name
    status, plain = answered(server, {"instances": instances})
    status_risk, answer = answered(server, {"instances": instances, "risk": {"positions": [1000, -300]}})
    assert status == status_risk == 200, answer
    assert [p["forecast"] for p in answer["predictions"]] == [p["forecast"] for p in plain["predictions"]]
    risk = answer["risk"]
    assert set(risk) == {"value", "horizons", "levels", "var", "es", "pnl_quantiles", "contributions", "method"}
    assert risk["value"] == pytest.approx(700 * frame.Close.iloc[-1], rel=1e-6)
    for level in ("0.99", "0.975"):
        assert len(risk["var"][level]) == 2 and all(es >= var > 0 for var, es in zip(risk["var"][level],
                                                                                      risk["es"][level], strict=True))
        assert [sum(parts) for parts in risk["contributions"][level]] == pytest.approx(risk["var"][level])
    assert risk["method"]["dependence"]["days"] == 250  # by name: a year of the store's bars
    assert risk["method"]["scenarios"] > 0 and "currencies" not in risk["method"]
    assert answered(server, {"instances": instances, "risk": {"positions": [1000, -300]}})[1]["risk"] == risk


@pytest.mark.parametrize(("risk", "message"), [
    ({"positions": [1]}, "'positions' must be a list of 2 finite numbers"),
    ({"positions": [0, 0]}, "'positions' are all zero"),
    ({"positions": [1, 2], "levels": [0.4]}, "'levels' must be 1 to 10 different numbers between 0.5 and 1"),
    ({"positions": [1, 2], "horizons": [11]}, "'horizons' reach 11 trading days; these models forecast 1 to 10"),
    ({"positions": [1, 2], "horizons": ["1"]}, "'horizons' must be 1 to 10 different whole numbers"),
])
def test_each_bad_risk_field_is_a_400_naming_it(served, risk, message):
    server, frame = served
    status, answer = answered(server, {"instances": [_sent(frame), {"stock": "VALE3"}], "risk": risk})
    assert status == 400 and answer["message"].startswith(message), answer


def test_an_instance_without_last_date_or_with_too_few_days_or_a_bad_one_fails_the_risk(served):
    server, frame = served
    undated = {key: value for key, value in _sent(frame).items() if key != "last_date"}
    cases = [([undated, {"stock": "VALE3"}], "instance 0 (VALE3.SA) has no 'last_date'"),
             ([_sent(frame, rows=20), _sent(frame, rows=20)], "the instances' bars share 20 trading days"),
             ([_sent(frame), {"stock": "PETR4"}], "instance 1: stock 'PETR4' has no deployed model")]
    for instances, message in cases:
        status, answer = answered(server, {"instances": instances, "risk": {"positions": [1, 2]}})
        assert status == 400 and answer["message"].startswith(message), answer


def test_risk_on_a_single_request_says_to_send_instances(served):
    server, frame = served
    status, answer = answered(server, {**_sent(frame), "risk": {"positions": [1]}})
    assert status == 400 and "'risk' is a portfolio's" in answer["message"]


def test_the_description_names_the_risk_field_and_the_served_risk_model(served):
    server, _ = served
    answer = call("GET", f"{server.url('management')}/models/lstm?customized=true", server.key("management"))
    description = answer.json()[0]["customizedMetadata"]
    assert "positions" in description["request"]["risk"]
    assert description["risk"]["scenarios"] > 0 and set(description["risk"]) >= {"tail_shape", "copula"}
