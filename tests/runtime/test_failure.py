"""Every request isolated: an unexpected exception while serving one request (its forward pass, its risk, its
store read) is its own 500 with an id the log carries, never its batch neighbours'; a broken stored file asked
again and again leaves memory where it was (its error is kept as a message, not an exception object)."""

from __future__ import annotations

import gc
import json
import logging
import re
import tracemalloc
from http import HTTPStatus

import pytest
import torch
from torch import nn

from stockcast.runtime import copula, inference, postprocess
from stockcast.runtime.bundle import Bundle
from stockcast.runtime.copula import Sampler
from stockcast.runtime.preprocess import parse_batch
from stockcast.runtime.risk import Model
from stockcast.runtime.store import PriceStore, Unavailable
from tests.bundles import portfolio_of, tiny_bundle
from tests.runtime.test_handler import _context, _unpacked, handler_module
from tests.serving import PRICES

POISON = 13.125  # a last close the failing net refuses


class _Failing(nn.Module):
    """A net that raises, for the whole batch, when any of its rows ends at POISON (a forward pass that breaks)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.is_price = net, net.is_price

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if bool((batch[:, -1, 0] == POISON).any()):
            raise RuntimeError("the injected fault")
        return self.net(batch)


def _portfolio():
    bundle = tiny_bundle("global", {"symbol": "global", "any_ticker": True})
    failing = Bundle(bundle.name, _Failing(bundle.net), bundle.meta)
    calendar = {"exchanges": {"XNYS": {"sessions": [f"2025-{m:02d}-{d:02d}" for m in range(1, 13)
                                                    for d in range(1, 29)]}}, "otherwise": "XNYS"}
    return portfolio_of(failing, members={"AAA": "global"}, calendar=calendar)


def _answers(portfolio, bodies, risk: Model | None = None):
    batch = parse_batch([({"body": json.dumps(body)}, {}) for body in bodies], portfolio)
    outputs = inference.forecast(batch.instances)
    return [postprocess.reply(request, batch.instances, outputs, risk) for request in batch.requests]


def test_a_failing_shared_forward_pass_fails_only_its_own_request(caplog):
    portfolio = _portfolio()
    bodies = [{"stock": "AAA", "prices": PRICES}, {"stock": "AAA", "prices": [*PRICES[:-1], POISON]},
              {"instances": [{"stock": "AAA", "prices": PRICES}, {"stock": "AAA", "prices": [*PRICES[:-1], POISON]}]}]
    with caplog.at_level(logging.ERROR):
        (ok, good), (failed, bad), (many, portfolio_answer) = _answers(portfolio, bodies)
    assert ok == many == HTTPStatus.OK and failed == HTTPStatus.INTERNAL_SERVER_ERROR
    assert good == _answers(portfolio, bodies[:1])[0][1]  # the same answer as alone
    assert bad["code"] == 500 and "RuntimeError" in bad["message"] and "the injected fault" not in bad["message"]
    first, second = portfolio_answer["predictions"]
    assert first == good and second["code"] == 500
    ids = [re.search(r"id (\w+) in its log", answer["message"]).group(1) for answer in (bad, second)]
    logged = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert [i for i in ids if any(i in record.getMessage() and record.exc_info for record in logged)] == ids


def test_a_risk_that_raises_fails_only_its_own_request(monkeypatch):
    portfolio = _portfolio()
    real = copula.measures

    def measures(changes, shares, *args):
        if float(shares[0]) == 13:
            raise ZeroDivisionError("the injected fault")
        return real(changes, shares, *args)

    monkeypatch.setattr(copula, "measures", measures)
    closes = [50 * (1 + 0.01 * ((day * 7919) % 11 - 5)) for day in range(60)]
    instances = [{"stock": "AAA", "prices": closes, "last_date": "2025-06-10"}] * 2
    bodies = [{"instances": instances, "risk": {"positions": [13, 1]}},
              {"instances": instances, "risk": {"positions": [12, 1]}}]
    (failed, bad), (ok, good) = _answers(portfolio, bodies, Model(portfolio, Sampler(500)))
    assert failed == HTTPStatus.INTERNAL_SERVER_ERROR and "ZeroDivisionError" in bad["message"], bad
    assert ok == HTTPStatus.OK and good["risk"]["var"], good


def _traced_growth(ask) -> int:
    """Python's traced memory after asks 1,001 to 10,000 (`ask(n)`: n asks) less after asks 1 to 1,000."""
    tracemalloc.start()
    try:
        ask(1000)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        ask(9000)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_broken_file_asked_10000_times_keeps_memory_within_a_mib(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close\n2025-01-02,1,2,0.5,not a number\n")
    store = PriceStore(tmp_path)

    def ask(times: int) -> None:
        for _ in range(times):
            try:
                store.stored("X", "rows", lambda bars: bars)  # the error kept for the file's version
            except Unavailable as err:
                assert "X.csv cannot be read" in err.message

    grown = _traced_growth(ask)
    assert grown < 2**20, grown


@pytest.mark.slow
def test_the_archived_handler_asked_for_a_broken_file_10000_times_keeps_memory_within_a_mib(
        trained_run, tmp_path_factory, monkeypatch):
    """The worker's own code, in process: the real archive's handler and TorchServe's Context, 100 asks a request
    (before the error was kept as a message, the same asks grew Python's memory by 27 MB)."""
    store = tmp_path_factory.mktemp("broken_store")
    (store / "VALE3.SA.csv").write_text("Date,Open,High,Low,Close\n2025-01-02,1,2,0.5,not a number\n")
    monkeypatch.setenv("STOCKCAST_PRICE_STORE", str(store))
    model = _unpacked(trained_run[0], tmp_path_factory.mktemp("broken"))
    handler = handler_module(model).ForecastHandler()
    handler.initialize(_context(model))
    body = json.dumps({"instances": [{"stock": "VALE3"}] * 100}).encode()

    def ask(times: int) -> None:
        for _ in range(times // 100):
            context = _context(model)
            [answer] = handler.handle([{"body": body}], context)
            assert context.get_response_status(0)[0] == 200 and b"VALE3.SA.csv cannot be read" in answer

    grown = _traced_growth(ask)
    assert grown < 2**20, grown
