"""One spelling of a ticker, against a real TorchServe serving a global model: a B3 stock outside its list, held
in the price store, answers the same by name as "PETR4", " petr4 " and "PETR4.SA" (and with its bars sent), its
`stock` PETR4.SA and its dates B3's sessions, and a portfolio's risk aligns it on B3's calendar."""

from __future__ import annotations

import mlflow
import pytest

from tests.conftest import compose_train
from tests.serving import answered, recent_bars, replace_stored, sent_bars, serving_a_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def global_run(tmp_path_factory, shared_data):
    """A 2-epoch global model trained on VALE3 alone: it answers any ticker, and lists only VALE3.SA."""
    from stockcast.pipeline import run

    tmp_path = tmp_path_factory.mktemp("global")
    with pytest.MonkeyPatch.context() as env:
        cfg = compose_train(tmp_path, "end=2025-11-07", "serve_any_ticker=true")
        env.setenv("MLFLOW_TRACKING_URI", cfg.logger.tracking_uri)
        result = run(cfg)
    mlflow.set_tracking_uri(None)
    return result


@pytest.fixture(scope="module")
def served(global_run, tmp_path_factory):
    """TorchServe serving the global model over a store holding PETR4.SA's recent bars; B3's sessions."""
    with serving_a_store(global_run, tmp_path_factory, "spelling") as (server, store, portfolio):
        assert "PETR4.SA" not in portfolio["members"] and portfolio["any_ticker"]
        exchanges = portfolio["calendar"]["exchanges"]
        frame = recent_bars(exchanges["BVMF"]["sessions"], rows=300, stock="PETR4.SA")
        replace_stored(store, "PETR4.SA", frame)
        yield server, frame, exchanges


def test_every_spelling_of_a_b3_ticker_is_one_answer_with_b3_dates(served):
    server, frame, exchanges = served
    answers = [answered(server, {"stock": name}) for name in ("PETR4", " petr4 ", "PETR4.SA", "petr4.sa")]
    assert all(status == 200 for status, _ in answers), answers
    first = answers[0][1]
    assert all(answer == first for _, answer in answers) and first["stock"] == "PETR4.SA"
    b3 = exchanges["BVMF"]["sessions"]
    after = b3[b3.index(first["last_date"]) + 1:][:len(first["dates"])]
    assert first["dates"] == after and first["stale_sessions"] == 0
    status, sent = answered(server, {"stock": "petr4", **sent_bars(frame)})
    assert status == 200 and sent["stock"] == "PETR4.SA" and sent["dates"] == first["dates"]
    assert sent["forecast"] == first["forecast"]


def test_the_bars_sent_under_any_spelling_are_dated_by_b3_carnival_included(served):
    """Before Carnival 2026 (B3 closed on February 16 and 17; the NYSE only on the 16th, Presidents' Day)."""
    server, frame, exchanges = served
    bars = {**sent_bars(frame), "last_date": "2026-02-13"}
    answers = [answered(server, {"stock": name, **bars}) for name in ("PETR4", " petr4 ", "PETR4.SA")]
    assert all(answer == answers[0] for answer in answers) and answers[0][0] == 200
    b3 = exchanges["BVMF"]["sessions"]
    dates = answers[0][1]["dates"]
    assert dates == b3[b3.index("2026-02-13") + 1:][:len(dates)] and dates[0] == "2026-02-18"
    assert "2026-02-17" in exchanges["XNYS"]["sessions"]


def test_a_portfolios_risk_aligns_every_spelling_on_its_exchange(served):
    server, _, _ = served
    body = {"instances": [{"stock": "PETR4"}, {"stock": "petr4.sa"}], "risk": {"positions": [100, 50]}}
    status, answer = answered(server, body)
    assert status == 200, answer
    assert answer["risk"]["method"]["exchanges"] == ["BVMF"] and "currencies" not in answer["risk"]["method"]
    assert answer["risk"]["method"]["dependence"]["days"] == 250
