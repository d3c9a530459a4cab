"""The TorchServe handler, as packed in a real archive, driven through a real `ts` Context (no server)."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pytest
import torch
from ts.context import Context, RequestProcessor

from stockcast.runtime.bundle import BundleMeta, load_bundle
from stockcast.runtime.handler import ForecastHandler
from stockcast.runtime.preprocess import parse_batch
from stockcast.runtime.routing import Portfolio
from stockcast.serving.archive import archive
from tests.bad_bodies import BAD
from tests.bundles import tiny_bundle
from tests.serving import PRICES  # 30 closes: more than the window of 20


class _Metrics:
    """TorchServe's metrics cache, as far as the handlers use it: records what they add."""

    def __init__(self) -> None:
        self.added: list[tuple] = []

    def add_time(self, *args, **kwargs) -> None:
        pass

    def add_counter(self, name, value, idx=None, dimensions=None) -> None:
        self.added.append((name, value, {d.name: d.value for d in dimensions or []}))

    def add_metric(self, name, value, unit, idx=None, dimensions=None, metric_type=None) -> None:
        self.added.append((name, unit, metric_type.value))


@pytest.fixture(scope="module")
def archived(trained_run, tmp_path_factory):
    """The real `make archive` output for the trained run, unpacked as TorchServe unpacks it."""
    result, bundle = trained_run
    return _unpacked(result, tmp_path_factory.mktemp("handler")), bundle


def _unpacked(result, folder: Path) -> Path:
    """The run archived as `make archive` does, unpacked into `folder/model` as TorchServe unpacks it."""
    done = archive(result.tracking_uri, "stockcast", folder / "model_store", run_ids=[result.run_id])
    with zipfile.ZipFile(done.path) as mar:
        mar.extractall(folder / "model")
    return folder / "model"


@pytest.fixture(scope="module")
def module(archived):
    return handler_module(archived[0])


def handler_module(model_dir: Path):
    """The archived handler, imported as TorchServe imports it: from the archive's root, with its folder on sys.path
    (here, where `stockcast` is imported already, its runtime is this checkout's: test_served_set checks the copy)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(model_dir))
        spec = importlib.util.spec_from_file_location("archived_forecast_handler", model_dir / "handler.py")
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
    return loaded


def _context(model_dir: Path, headers: list[dict] | None = None, default_stock: str | None = None) -> Context:
    manifest = json.loads((model_dir / "MAR-INF" / "MANIFEST.json").read_text())
    context = Context("lstm", str(model_dir), manifest, 16, None, "0.12.0", metrics=_Metrics(),
                      model_yaml_config={"handler": {"default_stock": default_stock}})
    context.request_processor = [RequestProcessor(h) for h in headers or [{}]]
    return context


@pytest.fixture(scope="module")
def handler(module, archived):
    handler = module.ForecastHandler()
    handler.initialize(_context(archived[0]))
    return handler


def _handle(handler, archived, bodies: list, headers: list[dict] | None = None) -> list[tuple[int, dict]]:
    """Send one batch; return (status, JSON body) per request, as TorchServe would answer them."""
    context = _context(archived[0], headers or [{} for _ in bodies])
    rows = [body if isinstance(body, dict) and set(body) <= {"body", "data"} else {"body": body} for body in bodies]
    answers = handler.handle(rows, context)
    return [(context.get_response_status(i)[0], json.loads(answer)) for i, answer in enumerate(answers)]


MEDIAN = 9  # the index of level 0.5 among 0.05..0.95


def _expected(bundle: Path, prices: list[float]) -> torch.Tensor:
    """The bundle's net in process, on the last `context` closes: [H, Q]."""
    loaded = load_bundle(bundle)
    window = torch.tensor(prices[-loaded.meta.context:]).reshape(1, -1, 1)
    with torch.no_grad():
        return loaded.net(window)[0]


def test_valid_request_forecasts_the_last_window_like_the_bundle(handler, archived):
    [(status, answer)] = _handle(handler, archived, [json.dumps({"prices": PRICES}).encode()])
    assert status == 200
    assert (answer["stock"], answer["window"], answer["horizon"]) == ("VALE3.SA", 20, 10)
    assert answer["model_version"] == "1" and "dates" not in answer
    expected = _expected(archived[1], PRICES)  # [H, Q] at the 19 levels 0.05..0.95
    levels = [f"{0.05 * k:.2f}".rstrip("0") for k in range(1, 20)]
    assert list(answer["quantiles"]) == levels
    for index, level in enumerate(levels):
        assert answer["quantiles"][level] == pytest.approx(expected[:, index].tolist(), abs=1e-5)
    assert answer["forecast"] == answer["quantiles"]["0.5"]  # the point forecast is the median
    assert answer["intervals"] == {"80": {"lower": answer["quantiles"]["0.1"], "upper": answer["quantiles"]["0.9"]},
                                   "90": {"lower": answer["quantiles"]["0.05"], "upper": answer["quantiles"]["0.95"]}}
    # p_up: the share of the distribution above the last close, read off the quantiles.
    for step, p_up in enumerate(answer["p_up"]):
        below = sum(answer["quantiles"][level][step] <= PRICES[-1] for level in levels)
        assert 0.05 <= p_up <= 0.95 and abs((1 - p_up) - 0.05 * below) <= 0.05 + 1e-9


def test_up_to_context_closes_refine_the_volatility_and_window_closes_suffice(handler, archived):
    history = [60 * (1 + 0.02 * ((day * 7919) % 13 - 6) / 6) for day in range(150)]  # [150] closes
    bodies = [json.dumps({"prices": history[-count:]}).encode() for count in (20, 100, 150)]
    answers = _handle(handler, archived, bodies)  # one batch with two lengths
    assert [status for status, _ in answers] == [200, 200, 200]
    assert answers[1][1] == answers[2][1]  # closes beyond the context are not read
    assert answers[0][1]["quantiles"] != answers[1][1]["quantiles"]
    expected = _expected(archived[1], history[-20:])[:, MEDIAN].tolist()
    assert answers[0][1]["forecast"] == pytest.approx(expected, abs=1e-5)


def test_weights_are_loaded_with_weights_only(module, archived, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(module.torch, "load", spy)
    module.ForecastHandler().initialize(_context(archived[0]))
    assert calls and all(call.get("weights_only") is True for call in calls)


@pytest.mark.parametrize("body", [
    {"prices": PRICES},  # decoded by TorchServe (decode_input_request=true)
    json.dumps({"prices": PRICES}),  # text/* bodies arrive as str
    {"data": json.dumps({"prices": PRICES}).encode()},  # multipart field named "data"
])
def test_any_way_torchserve_hands_over_the_body_works(handler, archived, body):
    [(status, answer)] = _handle(handler, archived, [body])
    assert status == 200 and len(answer["forecast"]) == 10


def test_last_date_adds_the_next_b3_sessions(handler, archived):
    body = {"prices": PRICES, "last_date": "2025-11-07", "stock": "vale3"}
    [(status, answer)] = _handle(handler, archived, [json.dumps(body).encode()])
    assert status == 200
    # Weekends and B3's holiday of 2025-11-20 (Black Consciousness Day) are skipped.
    assert answer["dates"] == ["2025-11-10", "2025-11-11", "2025-11-12", "2025-11-13", "2025-11-14",
                               "2025-11-17", "2025-11-18", "2025-11-19", "2025-11-21", "2025-11-24"]


@pytest.mark.parametrize("stock", ["VALE3.SA", "vale3.sa", "VALE3", " vale3 "])
def test_stock_may_name_the_ticker_with_or_without_suffix_in_any_case(handler, archived, stock):
    [(status, _)] = _handle(handler, archived, [json.dumps({"prices": PRICES, "stock": stock}).encode()])
    assert status == 200


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_gets_400_with_a_message_naming_it(handler, archived, name):
    body, message = BAD[name]
    [(status, answer)] = _handle(handler, archived, [body])
    assert status == 400
    assert answer["code"] == 400 and message in answer["message"]


def test_a_request_without_a_body_gets_400(handler, archived):
    context = _context(archived[0])
    [answer] = handler.handle([{"prices=1": b""}], context)  # what a form-encoded POST arrives as
    assert context.get_response_status(0)[0] == 400 and "no request body" in json.loads(answer)["message"]


def test_in_a_batch_a_bad_request_fails_alone(handler, archived):
    other = [p * 1.1 for p in PRICES]
    bodies = [json.dumps({"prices": PRICES}).encode(), BAD["NaN"][0], json.dumps({"prices": other}).encode(),
              BAD["wrong stock"][0]]
    answers = _handle(handler, archived, bodies)
    assert [status for status, _ in answers] == [200, 400, 200, 400]
    assert answers[0][1]["forecast"] == pytest.approx(_expected(archived[1], PRICES)[:, MEDIAN].tolist(), abs=1e-5)
    assert answers[2][1]["forecast"] == pytest.approx(_expected(archived[1], other)[:, MEDIAN].tolist(), abs=1e-5)


def test_hostile_requests_fail_alone_in_their_batch(handler, archived, monkeypatch):
    """What BaseHandler.handle fails whole batches with (503): deep nesting, an explanation asked for; a forecast
    that is not finite fails alone too; and a request's own headers decide what it gets (BaseHandler reads the
    first's)."""
    [bundle] = handler.portfolio.bundles.values()
    forward = bundle.net.forward

    def overflowing(inputs: torch.Tensor) -> torch.Tensor:  # the second window (request 2) overflows
        forecasts = forward(inputs)
        forecasts[1, 3, 0] = torch.inf
        return forecasts

    monkeypatch.setattr(bundle.net, "forward", overflowing)
    valid = json.dumps({"prices": PRICES}).encode()
    bodies = [valid, BAD["deep nesting"][0], valid, valid, valid, valid]
    headers = [{}, {}, {}, {"explain": "True"}, {"describe": "True"}, {}]
    answers = _handle(handler, archived, bodies, headers)
    assert [status for status, _ in answers] == [200, 400, 400, 400, 200, 200]
    assert "not a finite number" in answers[2][1]["message"]
    assert "no explanations" in answers[3][1]["message"] and answers[4][1]["stocks"]["VALE3.SA"]["mlflow_run_id"]
    expected = _expected(archived[1], PRICES)[:, MEDIAN].tolist()
    assert answers[0][1]["forecast"] == answers[5][1]["forecast"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(("content_type", "message"), [
    ("application/x-www-form-urlencoded", "the body came as a form"),
    ("multipart/form-data; boundary=x", "no part named 'data' or 'body'"),
])
def test_a_form_without_the_json_says_what_to_send(handler, archived, content_type, message):
    context = _context(archived[0], [{"Content-Type": content_type}])
    [answer] = handler.handle([{'{"prices": [60': b""}], context)  # a JSON body sent as a form, split by the frontend
    answer = json.loads(answer)["message"]
    assert context.get_response_status(0)[0] == 400 and message in answer and "Content-Type: application/json" in answer


def test_a_batch_of_only_bad_requests_skips_the_model(handler, archived):
    answers = _handle(handler, archived, [BAD["too few"][0], BAD["not JSON"][0]])
    assert [status for status, _ in answers] == [400, 400]


def test_a_batch_counts_its_forecasts_per_ticker_and_times_itself_for_prometheus(handler, archived):
    context = _context(archived[0], [{}, {}, {}])
    handler.handle([{"body": {"prices": PRICES}}, {"body": {"prices": [1.0]}}, {"body": {"prices": PRICES}}], context)
    assert context.metrics.added == [("stockcast_forecasts_total", 2, {"Ticker": "VALE3.SA"}),
                                     ("stockcast_handler_milliseconds", "ms", "histogram")]


def test_describe_reports_ticker_training_range_metrics_and_run(handler, archived, trained_run):
    result, _ = trained_run
    context = _context(archived[0], [{"describe": "True"}])
    [description] = handler.handle([{"body": b""}], context)
    description = json.loads(description)
    assert (description["served_version"], description["default_stock"]) == ("1", "VALE3.SA")
    ticker = description["stocks"]["VALE3.SA"]
    assert (ticker["model"], ticker["window"], ticker["horizon"], ticker["pooled_over"]) == ("VALE3.SA", 20, 10, None)
    assert ticker["mlflow_run_id"] == result.run_id and ticker["model_version"] == "1"
    assert ticker["training_data"]["first_date"] == "2018-01-02"
    metrics = ticker["test_metrics"]
    assert metrics["model"]["mape"] == pytest.approx(result.metrics["test_mape"])
    assert metrics["naive_last_value"]["mape"] == pytest.approx(result.metrics["naive_mape"])
    assert description["calendar"]["stocks"] == {"VALE3.SA": "BVMF"}
    assert "sessions" not in description["calendar"]["exchanges"]["BVMF"]


def assert_same_answer(got: dict, expected: dict) -> None:
    """Equal answers, their numbers within 1e-6 relative (float32 results may differ with the batch size)."""
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if key in ("forecast", "p_up"):
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9)
        elif key in ("quantiles", "intervals"):
            assert got[key].keys() == value.keys()
            for name, inner in value.items():
                assert (got[key][name] == pytest.approx(inner, rel=1e-6) if isinstance(inner, list) else
                        all(got[key][name][k] == pytest.approx(v, rel=1e-6) for k, v in inner.items()))
        else:
            assert got[key] == value, key


def _synthetic(folder: Path, bundles: dict[str, dict], members: dict[str, str] | None = None,
               calendar: dict | None = None, default_stock: str | None = None, scaler: tuple | None = None,
               **net_kwargs):
    """A handler over untrained ForecastNet bundles (shapes the default config does not train), laid out as an
    archive: name -> metadata under bundles/, portfolio.json (default members: each bundle's symbol)."""
    from stockcast.models.net import ForecastNet
    from stockcast.runtime.bundle import write_bundle

    kwargs = {"features": ["Close"], "hidden": 8, "layers": 1, "dropout": 0.0, "horizon": 3, **net_kwargs}
    nets = {}
    for number, (name, metadata) in enumerate(bundles.items()):
        torch.manual_seed(number)
        nets[name] = ForecastNet(**kwargs)
        if scaler:
            nets[name].set_scaler(*scaler)
        write_bundle(folder / "bundles" / name, nets[name], {"window": 5, "horizon": kwargs["horizon"],
                                                             "features": kwargs["features"], "net": kwargs,
                                                             "model_version": "7", **metadata})
    members = members or {metadata["symbol"]: name for name, metadata in bundles.items()}
    (folder / "portfolio.json").write_text(json.dumps({"members": members, "calendar": calendar or {}}))
    context = Context("lstm", str(folder), {"model": {"modelName": "lstm", "modelVersion": "9"}}, 16, None, "0.12.0",
                      metrics=_Metrics(), model_yaml_config={"handler": {"default_stock": default_stock}})
    handler = ForecastHandler()
    handler.initialize(context)
    return handler, {name: net.eval() for name, net in nets.items()}, context


def _handle_synthetic(handler, context, bodies: list[dict]) -> list[tuple[int, dict]]:
    context.request_processor = [RequestProcessor({}) for _ in bodies]
    answers = handler.handle([{"body": json.dumps(body).encode()} for body in bodies], context)
    return [(context.get_response_status(i)[0], json.loads(answer)) for i, answer in enumerate(answers)]


def test_a_multi_feature_model_takes_one_row_of_features_per_day(tmp_path):
    """Models trained on more columns than Close (here Close and Volume) take [close, volume] rows."""
    handler, nets, context = _synthetic(tmp_path, {"AAPL-v7": {"symbol": "AAPL"}},
                                        scaler=([50.0, 0.0], [70.0, 1e6], 0.02), features=["Close", "Volume"])
    rows = [[60.0 + day, 1000.0 * day] for day in range(6)]  # a volume of 0 is allowed, a close of 0 is not
    answers = _handle_synthetic(handler, context, [{"prices": rows}, {"prices": [60.0] * 6},
                                                   {"prices": [*rows[:5], [0.0, 10.0]]},
                                                   {"prices": [*rows[:5], [60.0]]}])
    assert [status for status, _ in answers] == [200, 400, 400, 400]
    with torch.no_grad():
        expected = nets["AAPL-v7"](torch.tensor(rows[-5:]).reshape(1, 5, 2))[0].tolist()
    assert answers[0][1]["forecast"] == pytest.approx(expected, abs=1e-5) and answers[0][1]["model_version"] == "7"
    assert "must be a list of 2 values" in answers[1][1]["message"]
    assert "prices[5] Close must be positive" in answers[2][1]["message"]
    assert "must be a list of 2 values" in answers[3][1]["message"]


def test_a_range_model_reads_open_high_and_low_beside_the_closes(tmp_path):
    """A model of the day's bars (the default's features) takes `open`, `high`, `low` as lists beside `prices`;
    asked without them it names what is missing; the older row form answers the same; a close outside its day's
    range widens the range, as training's data checks do."""
    features = ["Close", "Open", "High", "Low"]
    handler, nets, context = _synthetic(tmp_path, {"VALE3.SA-v7": {"symbol": "VALE3.SA", "context": 8}},
                                        scaler=([50.0] * 4, [70.0] * 4, 0.02), features=features,
                                        volatility="garman_klass", quantiles=[0.1, 0.5, 0.9], window=5, context=8)
    closes = [60.0 + 0.3 * day for day in range(8)]
    bars = {"open": [c - 0.2 for c in closes], "high": [c + 0.5 for c in closes], "low": [c - 0.6 for c in closes]}
    rows = [list(day) for day in zip(closes, bars["open"], bars["high"], bars["low"], strict=True)]
    outside = {**bars, "high": [*bars["high"][:-1], closes[-1] - 0.1]}  # the last close above its high
    widened = [*rows[:-1], [closes[-1], bars["open"][-1], closes[-1], bars["low"][-1]]]
    answers = _handle_synthetic(handler, context, [{"prices": closes, **bars}, {"prices": rows}, {"prices": closes},
                                                   {"prices": closes, "open": bars["open"]},
                                                   {"prices": closes, **outside}])
    assert [status for status, _ in answers] == [200, 200, 400, 400, 200]
    with torch.no_grad():
        expected = nets["VALE3.SA-v7"](torch.tensor([rows, widened]))
    assert answers[0][1]["quantiles"]["0.5"] == pytest.approx(expected[0, :, 1].tolist(), rel=1e-6)
    assert answers[1][1]["forecast"] == answers[0][1]["forecast"]
    assert "'high', 'low' missing" in answers[3][1]["message"] and "'open', 'high', 'low' missing" in \
        answers[2][1]["message"]
    assert answers[4][1]["quantiles"]["0.5"] == pytest.approx(expected[1, :, 1].tolist(), rel=1e-6)


def test_a_batch_is_checked_at_once_and_each_wrong_value_named_as_if_sent_alone(tmp_path):
    """The handler checks the columns of all a batch's forecasts (its requests' and their instances') in one pass:
    each answer equals the one its request gets alone, each wrong value gets the message it gets alone, whatever
    else the batch holds (other lengths, other columns, a value that is no number)."""
    handler, _, context = _synthetic(tmp_path, {"VALE3.SA-v7": {"symbol": "VALE3.SA", "context": 8}},
                                     scaler=([50.0] * 4, [70.0] * 4, 0.02), features=["Close", "Open", "High", "Low"],
                                     volatility="garman_klass", quantiles=[0.1, 0.5, 0.9], window=5, context=8)
    closes = [60.0 + 0.3 * day for day in range(8)]
    bars = {"open": [c - 0.2 for c in closes], "high": [c + 0.5 for c in closes], "low": [c - 0.6 for c in closes]}

    def changed(field: str, day: int, value) -> dict:
        sent = {"prices": closes, **bars}
        return {**sent, field: [*sent[field][:day], value, *sent[field][day + 1:]]}

    bodies = [{"prices": closes, **bars}, changed("high", 2, "61"), {"prices": [c * 1.1 for c in closes],
              **{k: [v * 1.1 for v in values] for k, values in bars.items()}}, changed("low", 4, 99.0),
              changed("open", 1, True), {"prices": closes[1:], **{k: values[1:] for k, values in bars.items()}},
              changed("prices", 6, -1.0), changed("high", 0, 1e39), {"prices": closes, **bars, "last_date": "x"},
              {"instances": [changed("low", 3, None), {"prices": closes, **bars}, changed("open", 5, 0)]}]
    together = _handle_synthetic(handler, context, bodies)
    alone = [_handle_synthetic(handler, context, [body])[0] for body in bodies]
    assert [status for status, _ in together] == [200, 400, 200, 400, 400, 200, 400, 400, 400, 200]
    for (status, got), (_, expected) in zip(together, alone, strict=True):
        if status == 400:
            assert got == expected
        elif "predictions" in got:
            assert [p.get("message") for p in got["predictions"]] == [p.get("message") for p in expected["predictions"]]
            assert_same_answer(got["predictions"][1], expected["predictions"][1])
        else:
            assert_same_answer(got, expected)
    messages = [got.get("message", "") for _, got in together]
    assert "high[2] is not a number" in messages[1] and "high[4] (61.7) is below low[4] (99)" in messages[3]
    assert "open[1] is not a number: True" in messages[4] and "prices[6] must be positive" in messages[6]
    assert "beyond float32" in messages[7] and "last_date 'x'" in messages[8]
    assert [p.get("code") for p in together[9][1]["predictions"]] == [400, None, 400]


def test_a_pooled_model_answers_for_the_named_ticker_on_its_exchange(tmp_path):
    """One model of several tickers: `stock` picks the ticker, and with it the exchange's calendar."""
    import datetime as dt

    from stockcast.serving.sessions import trading_calendar

    stocks = ["VALE3.SA", "AAPL"]
    calendar = trading_calendar(stocks, dt.date(2025, 1, 2), today=dt.date(2025, 11, 25))
    pooled = {"pool-v7": {"symbol": "VALE3.SA+AAPL", "stocks": stocks}}
    window = {"prices": PRICES, "last_date": "2025-11-26"}
    bodies = [{**window, "stock": "aapl"}, {**window, "stock": "vale3"}, window, {**window, "stock": "PETR4"},
              {"prices": PRICES}]
    handler, _, context = _synthetic(tmp_path / "default", pooled, {"AAPL": "pool-v7", "VALE3.SA": "pool-v7"},
                                     calendar, default_stock="VALE3")
    answers = _handle_synthetic(handler, context, bodies)
    assert [status for status, _ in answers] == [200, 200, 200, 400, 200]
    assert answers[0][1]["stock"] == "AAPL" and answers[0][1]["dates"] == ["2025-11-28", "2025-12-01", "2025-12-02"]
    assert answers[1][1]["stock"] == "VALE3.SA" and answers[1][1]["dates"] == ["2025-11-27", "2025-11-28",
                                                                               "2025-12-01"]
    assert answers[2][1] == answers[1][1] and answers[4][1]["stock"] == "VALE3.SA"  # the default ticker
    assert "PETR4' has no deployed model: this model serves 2 ticker(s): AAPL, VALE3.SA" in answers[3][1]["message"]
    handler, _, context = _synthetic(tmp_path / "none", pooled, {"AAPL": "pool-v7", "VALE3.SA": "pool-v7"},
                                     calendar)  # no default ticker served: a request must name one
    answers = _handle_synthetic(handler, context, [window, {**window, "stock": "aapl"}])
    assert [status for status, _ in answers] == [400, 200]
    assert "name the 'stock' to forecast: this model serves 2 ticker(s): AAPL, VALE3.SA" in answers[0][1]["message"]


def test_a_point_model_answers_as_before_without_ranges(module, tmp_path, shared_data):
    """A point model (model.loss=mse), archived as `make archive` does: the old answer, no quantiles."""
    from stockcast.pipeline import run
    from tests.conftest import compose_train

    model_dir = _unpacked(run(compose_train(tmp_path, "end=2025-11-07", "model.loss=mse")), tmp_path)
    handler = module.ForecastHandler()
    handler.initialize(_context(model_dir))
    [(status, answer)] = _handle(handler, (model_dir, None), [json.dumps({"prices": PRICES}).encode()])
    assert status == 200 and len(answer["forecast"]) == 10
    assert not {"quantiles", "intervals", "p_up"} & set(answer)
    [(_, described)] = _handle(handler, (model_dir, None), [b""], [{"describe": "True"}])
    [described] = described["stocks"].values()
    assert described["quantiles"] is None and described["range_metrics"]["test"]["coverage_80"] < 0.05


def test_an_archive_from_before_ranges_reads_its_window_as_its_context():
    """Metadata written before `context` and `quantiles` existed: the window is all the model reads."""
    metadata = {"symbol": "VALE3.SA", "window": 20, "horizon": 10, "features": ["Close"],
                "net": {"features": ["Close"], "hidden": 8, "target": "relative"}, "model_version": "3"}
    meta = BundleMeta.from_dict(metadata)
    assert (meta.window, meta.context, meta.levels, meta.version) == (20, 20, None, "3")
    bundle = tiny_bundle("VALE3.SA-v3", metadata, **metadata["net"], window=20, quantiles=None)
    portfolio = Portfolio.from_manifest({"members": {"VALE3.SA": "VALE3.SA-v3"}}, {bundle.name: bundle}, None, "3")
    batch = parse_batch([({"body": json.dumps({"prices": PRICES})}, {})], portfolio)
    [instance] = batch.instances
    assert len(instance.history) == 20 and instance.history[-1].tolist() == [PRICES[-1]]


def test_each_ticker_gets_its_own_model_and_a_portfolio_request_gets_each_answer_in_order(tmp_path):
    """Two tickers with models of their own and a pooled model answering a third; a portfolio request's
    predictions equal the single requests' answers, and a bad instance gets its own error object."""
    bundles = {"AAPL-v7": {"symbol": "AAPL"}, "MSFT-v8": {"symbol": "MSFT"},
               "pool-v7": {"symbol": "AAPL+MSFT+VALE3.SA", "stocks": ["AAPL", "MSFT", "VALE3.SA"]}}
    members = {"AAPL": "AAPL-v7", "MSFT": "MSFT-v8", "VALE3.SA": "pool-v7"}
    handler, nets, context = _synthetic(tmp_path, bundles, members, default_stock="VALE3")
    other = [price * 1.3 for price in PRICES]
    singles = [{"stock": "AAPL", "prices": PRICES}, {"stock": "msft", "prices": other},
               {"stock": "VALE3", "prices": PRICES}, {"prices": other}, {"stock": "AAPL", "prices": other[-7:]}]
    instances = [*singles[:2], {"stock": "NOPE", "prices": PRICES}, singles[2], {"prices": [1.0]}, 42, *singles[3:]]
    answers = _handle_synthetic(handler, context, singles)
    [(status, portfolio)] = _handle_synthetic(handler, context, [{"instances": instances}])  # batched otherwise
    assert [status for status, _ in answers] == [200] * 5 and status == 200
    predictions = portfolio["predictions"]
    assert len(predictions) == len(instances)
    for single, (_, answer) in zip([0, 1, 3, 6, 7], answers, strict=True):
        assert_same_answer(predictions[single], answer)
    assert [p.get("code") for p in predictions] == [None, None, 400, None, 400, 400, None, None]
    served = "this model serves 3 ticker(s): AAPL, MSFT, VALE3.SA"
    assert f"'NOPE' has no deployed model: {served}" in predictions[2]["message"]
    assert "needs at least 5" in predictions[4]["message"] and "must be a JSON object" in predictions[5]["message"]
    with torch.no_grad():  # each ticker's own net: AAPL and MSFT by theirs, VALE3 by the pooled one
        for answer, name, prices in ((answers[0][1], "AAPL-v7", PRICES), (answers[1][1], "MSFT-v8", other),
                                     (answers[2][1], "pool-v7", PRICES)):
            expected = nets[name](torch.tensor(prices[-5:]).reshape(1, 5, 1))[0].tolist()
            assert answer["forecast"] == pytest.approx(expected, abs=1e-5)
    assert answers[3][1]["stock"] == "VALE3.SA" and answers[1][1]["model_version"] == "7"
    context.request_processor = [RequestProcessor({"describe": "True"})]
    described = json.loads(handler.handle([{"body": b""}], context)[0])
    assert described["default_stock"] == "VALE3.SA" and described["served_version"] == "9"
    assert {symbol: t["answered_by"] for symbol, t in described["stocks"].items()} == members
    assert described["stocks"]["VALE3.SA"]["pooled_over"] == ["AAPL", "MSFT", "VALE3.SA"]


@pytest.mark.parametrize(("body", "message"), [
    ({"instances": []}, "'instances' must be a list of 1 to 500"),
    ({"instances": [{"prices": PRICES}] * 501}, "'instances' must be a list of 1 to 500"),
    ({"instances": {"prices": PRICES}}, "'instances' must be a list of 1 to 500"),
    ({"instances": [{"prices": PRICES}], "stock": "AAPL"}, "a portfolio request has only 'instances'"),
])
def test_a_malformed_portfolio_request_gets_one_400(tmp_path, body, message):
    handler, _, context = _synthetic(tmp_path, {"AAPL-v7": {"symbol": "AAPL"}})
    [(status, answer)] = _handle_synthetic(handler, context, [body])
    assert status == 400 and message in answer["message"]
