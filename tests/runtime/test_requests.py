"""The request rules of the runtime, on tiny bundles built in memory: each wrong value named, the same verdict
alone or in a batch, the day's range widened as training widens it, and a batch's forecasts indexed in order."""

from __future__ import annotations

import json

import pytest
import torch

from stockcast.runtime import inference, postprocess
from stockcast.runtime.body import BadRequest
from stockcast.runtime.fields import FLOAT32_MAX, checked_rows, sent_columns
from stockcast.runtime.preprocess import Parsed, parse_batch
from tests.bundles import portfolio_of, tiny_bundle

BARS = ["Close", "Open", "High", "Low"]
CLOSES = [60.0 + 0.1 * day for day in range(20)]
BAR_BODY = {"prices": CLOSES, "open": [c - 0.05 for c in CLOSES], "high": [c + 0.3 for c in CLOSES],
            "low": [c - 0.3 for c in CLOSES]}


def _rows(body: dict, features: list[str] = BARS, is_price: tuple[bool, ...] = (True,) * 4) -> torch.Tensor | str:
    """One forecast's checked rows, or its error message."""
    try:
        [found] = checked_rows([sent_columns(body, 20, features, is_price)], [features])
    except BadRequest as err:
        return err.message
    return found.message if isinstance(found, BadRequest) else found


def _with(field: str, day: int, value) -> dict:
    body = json.loads(json.dumps(BAR_BODY))
    body[field][day] = value
    return body


@pytest.mark.parametrize(("body", "message"), [
    (_with("prices", 3, True), "prices[3] is not a number: True"),
    (_with("open", 0, False), "open[0] is not a number: False"),
    (_with("high", 5, "61"), "high[5] is not a number: '61'"),
    (_with("low", 7, None), "low[7] is not a number: None"),
    (_with("prices", 2, 10 ** 400), "prices[2] is not finite"),
    (_with("prices", 4, float("nan")), "prices[4] is not finite: nan"),
    (_with("open", 4, float("inf")), "open[4] is not finite: inf"),
    (_with("high", 1, 1e39), f"high[1] is beyond float32's range ({FLOAT32_MAX:.3g}): 1e+39"),
    (_with("prices", 6, -1), "prices[6] must be positive, got -1"),
    (_with("low", 6, 0), "low[6] must be positive, got 0"),
    (_with("low", 9, 99.0), "high[9] (61.2) is below low[9] (99)"),
    ({**BAR_BODY, "open": CLOSES[:-1]}, "'open' must be a list as long as 'prices' (20 values), got 19 values"),
    ({"prices": CLOSES}, "'open', 'high', 'low' missing"),
])
def test_each_wrong_value_is_named(body, message):
    assert isinstance(_rows(body), str) and _rows(body).startswith(message)


def test_a_price_of_one_is_a_price_and_a_volume_of_zero_a_volume():
    """1.0 and 0.0 are what True and False convert to: a real 1.0 passes, as a day of no volume does."""
    assert isinstance(_rows({"prices": [1.0] * 20}, ["Close"], (True,)), torch.Tensor)
    per_day = {"prices": [[60.0, 0]] * 20}
    assert isinstance(_rows(per_day, ["Close", "Volume"], (True, False)), torch.Tensor)
    assert _rows({"prices": [[60.0, -1]] * 20}, ["Close", "Volume"], (True, False)) == \
        "prices[0] Volume must be non-negative, got -1"


def test_the_range_is_widened_to_hold_the_open_and_close_as_training_widens_it():
    body = _with("open", 2, 70.0)  # above that day's high
    rows = _rows(body)
    assert isinstance(rows, torch.Tensor) and rows[2, 2] == 70.0 and rows[2, 3] == BAR_BODY["low"][2]
    assert torch.equal(rows[:2], torch.tensor([BAR_BODY[key][:2] for key in ("prices", "open", "high", "low")],
                                              dtype=torch.float64).T)


def test_a_batch_gives_each_forecast_the_verdict_it_gets_alone():
    bodies = [BAR_BODY, _with("prices", 3, True), _with("low", 9, 99.0), BAR_BODY, _with("high", 5, "x")]
    columns = [sent_columns(body, 20, BARS, (True,) * 4) for body in bodies]
    together = checked_rows(columns, [BARS] * len(bodies))
    for body, found in zip(bodies, together, strict=True):
        alone = _rows(body)
        assert (found.message == alone) if isinstance(found, BadRequest) else torch.equal(found, alone)


def test_a_batch_is_parsed_into_index_lists_and_answered_in_order():
    """Two requests, the second a portfolio with a bad instance: each request's items index the batch's
    instances (or hold their own error), and each answer is its own forecast's."""
    bundle = tiny_bundle("AAPL-v1", {"symbol": "AAPL"})
    portfolio = portfolio_of(bundle, tiny_bundle("MSFT-v1", {"symbol": "MSFT"}, seed=1))
    single = {"stock": "AAPL", "prices": CLOSES}
    many = {"instances": [{"stock": "MSFT", "prices": CLOSES}, {"stock": "MSFT", "prices": CLOSES[:5]},
                          {"stock": "AAPL", "prices": [c * 2 for c in CLOSES]}]}
    batch = parse_batch([({"body": json.dumps(body)}, {}) for body in (single, many)], portfolio)
    first, second = batch.requests
    assert isinstance(first, Parsed) and isinstance(second, Parsed) and first.items == (0,)
    assert second.items[0] == 1 and isinstance(second.items[1], BadRequest) and second.items[2] == 2
    assert [instance.symbol for instance in batch.instances] == ["AAPL", "MSFT", "AAPL"]
    outputs = inference.forecast(batch.instances)
    status, answer = postprocess.reply(second, batch.instances, outputs)
    predictions = answer["predictions"]
    assert status.value == 200 and "has 5 values" in predictions[1]["message"]
    with torch.inference_mode():
        alone = bundle.net(torch.tensor([c * 2 for c in CLOSES]).reshape(1, -1, 1))[0]
    assert predictions[2]["quantiles"]["0.5"] == pytest.approx(alone[:, 9].tolist(), abs=1e-6)
