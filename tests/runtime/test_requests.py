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


COMPACT = {"quantiles": [], "intervals": [80], "p_up": False}


def _answers(bodies: list[dict]) -> list[tuple[int, dict]]:
    portfolio = portfolio_of(tiny_bundle("AAA-v1", {"symbol": "AAA"}),
                             calendar={"exchanges": {"X": {"sessions": [f"2025-12-{d:02d}" for d in range(1, 29)]}},
                                       "otherwise": "X"})
    batch = parse_batch([({"body": json.dumps(body)}, {}) for body in bodies], portfolio)
    outputs = inference.forecast(batch.instances)
    return [(status.value, answer) for status, answer in
            (postprocess.reply(request, batch.instances, outputs) for request in batch.requests)]


def _same_where_kept(compact: dict, full: dict) -> None:
    assert set(compact) <= set(full)
    for key, value in compact.items():
        if isinstance(value, dict):  # quantiles, intervals: some of the full answer's
            assert value and all(value[part] == full[key][part] for part in value), key
        else:
            assert value == full[key], key


@pytest.mark.parametrize("ask", [COMPACT, {"quantiles": [0.1, 0.5, 0.9]}, {"intervals": [], "dates": False},
                                 {"quantiles": [0.05], "intervals": [90], "p_up": False, "dates": False}])
def test_a_compact_answer_is_the_full_one_on_the_fields_it_keeps(ask):
    single = {"stock": "AAA", "prices": CLOSES, "last_date": "2025-12-01"}
    portfolio = {"instances": [single, {**single, "prices": CLOSES[::-1]}]}
    (_, full), (_, many) = _answers([single, portfolio])
    (_, compact), (_, many_compact) = _answers([{**single, "answer": ask}, {**portfolio, "answer": ask}])  # as batched
    _same_where_kept(compact, full)
    assert compact["forecast"] == full["forecast"] and ("quantiles" in compact) == (ask.get("quantiles") != [])
    for full_item, compact_item in zip(many["predictions"], many_compact["predictions"], strict=True):
        _same_where_kept(compact_item, full_item)
    if ask.get("quantiles"):
        assert list(compact["quantiles"]) == [f"{level:g}" for level in ask["quantiles"]]
    assert ("intervals" in compact) == (ask.get("intervals") != [])
    assert ("p_up" in compact) == ask.get("p_up", True) and ("dates" in compact) == ask.get("dates", True)


@pytest.mark.parametrize(("answer", "message"), [
    ([], "'answer' must be an object"),
    ({"levels": [0.5]}, "unknown 'answer' field(s) 'levels'"),
    ({"quantiles": [1.5]}, "'answer.quantiles' must be a list of the model's quantile levels"),
    ({"quantiles": [0.33]}, "'answer.quantiles' asks for 0.33: this model answers the levels 0.05, 0.1"),
    ({"intervals": [50]}, "'answer.intervals' must be a list of central intervals' coverages, of 80, 90"),
    ({"p_up": "no"}, "'answer.p_up' must be true or false"),
])
def test_a_wrong_answer_field_is_a_400_naming_it(answer, message):
    [(status, error)] = _answers([{"stock": "AAA", "prices": CLOSES, "answer": answer}])
    assert status == 400 and error["message"].startswith(message), error


def test_answer_belongs_to_the_request_not_an_instance():
    [(status, answer)] = _answers([{"instances": [{"stock": "AAA", "prices": CLOSES, "answer": {}}]}])
    assert status == 200 and "unknown field(s) 'answer'" in answer["predictions"][0]["message"]
