"""Hostile requests: generated bodies sent to the request module and to a real TorchServe, other content types
and methods, TorchServe's own OpenAPI description fuzzed, and hostile clients beside valid ones.

A request's answer is a 4xx with a JSON message, or a 200 whose numbers are all finite; never a 5xx from the
handler, and no valid request beside hostile ones is lost. What TorchServe's frontend answers before any
handler sees a request is pinned by the last test (docs/serving.md, "Bad requests", says the same).
"""

from __future__ import annotations

import collections
import datetime as dt
import http.client
import json
import math
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from stockcast.serving.server import Server
from tests.bad_bodies import BAD, hostile_bodies
from tests.bundles import portfolio_of, tiny_bundle
from tests.serving import PRICES, client_loop

VALID = json.dumps({"prices": PRICES}).encode()
# Weekdays from 2025: enough of a trading calendar for last_date to reach.
SESSIONS = [day.isoformat() for day in (dt.date(2025, 1, 1) + dt.timedelta(days=n) for n in range(600))
            if day.weekday() < 5]
# (method, Content-Type) pairs the generated bodies are sent with, in turn. Urlencoded and multipart forms are
# left out: TorchServe's frontend decodes them before any handler and answers some malformed ones with a 500.
VARIANTS = [("POST", "application/json"), ("POST", None), ("POST", "text/plain"), ("POST", "application/octet-stream"),
            ("PUT", "application/json"), ("POST", "application/json; charset=utf-16"), ("DELETE", None)]
# The body TorchServe's OpenAPI description leaves open ("*/*", binary), as the model reads it (OpenAPI 3.0).
REQUEST_SCHEMA = {"type": "object", "required": ["prices"], "additionalProperties": False, "properties": {
    "prices": {"type": "array", "minItems": 20, "maxItems": 60,
               "items": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1e6}},
    "stock": {"type": "string", "enum": ["VALE3", "vale3.sa", "PETR4"]},
    "last_date": {"type": "string", "format": "date"}}}
MODEL_OPERATIONS = ("/predictions/{model_name}", "/predictions/{model_name}/{model_version}",
                    "/v1/models/{model_name}:predict", "/v2/models/{model_name}/infer")
FUZZ_EXAMPLES = 25  # per operation and generation mode


@pytest.fixture(scope="module")
def api() -> SimpleNamespace:
    """The runtime modules a request passes through."""
    from stockcast.runtime import body, fields, postprocess, preprocess, routing

    return SimpleNamespace(body=body, fields=fields, preprocess=preprocess, postprocess=postprocess, routing=routing)


@pytest.fixture(scope="module")
def specs() -> list:
    """A Close-only model and a Close+Volume one, each the only ticker of a portfolio."""
    calendar = {"exchanges": {"BVMF": {"sessions": SESSIONS}}, "stocks": {"VALE3.SA": "BVMF"}}
    return [portfolio_of(tiny_bundle("VALE3.SA-v1", {"symbol": "VALE3.SA"}, features=features, target=target),
                         calendar=calendar, default="VALE3")
            for features, target in ((["Close"], "volatility"), (["Close", "Volume"], "relative"))]


def _outcome(api, portfolio, row: dict, headers: dict | None = None) -> str:
    """Parse one request: "ok" when every forecast it asks for is a usable Instance, "400" for a BadRequest
    (of the request, or of one of its forecasts); anything else raises."""
    batch = api.preprocess.parse_batch([(row, headers or {})], portfolio)
    [request] = batch.requests
    items = [request] if isinstance(request, api.body.BadRequest) else \
        [item if isinstance(item, api.body.BadRequest) else batch.instances[item] for item in request.items]
    for item in items:
        if isinstance(item, api.body.BadRequest):
            assert 0 < len(item.message) < 400, item.message
            continue
        meta = item.bundle.meta
        assert len(item.history) == meta.window and all(len(day) == len(meta.features) for day in item.history)
        assert all(math.isfinite(value) and abs(value) <= api.fields.FLOAT32_MAX for day in item.history
                   for value in day)
    return "400" if any(isinstance(item, api.body.BadRequest) for item in items) else "ok"


def test_generated_bodies_parse_to_an_instance_or_a_bad_request(api, specs):
    outcomes: collections.Counter = collections.Counter()
    bodies = hostile_bodies(700, seed=1)
    for index, (kind, body) in enumerate(bodies):
        spec = specs[index % 2]
        outcomes[kind, _outcome(api, spec, {"body": body})] += 1
        text = body.decode("utf-8", errors="surrogateescape")  # TorchServe decodes text/* bodies when told to
        outcomes[kind, _outcome(api, spec, {"body": text})] += 1
    print(f"\nrequest module: {len(bodies)} generated bodies, outcomes {dict(sorted(outcomes.items()))}")
    assert {kind for kind, outcome in outcomes if outcome == "400"} == {kind for kind, _ in bodies}


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                        max_size=4), max_leaves=12)
_PRICE = st.floats(min_value=0.01, max_value=1e4) | st.floats() | st.integers() | _JSON
_FORECAST = st.fixed_dictionaries({}, optional={"prices": st.lists(_PRICE, min_size=18, max_size=24) | _JSON,
                                                "stock": st.sampled_from(["VALE3", "vale3.SA", " VALE3 "]) | _JSON,
                                                "last_date": st.sampled_from(["2025-11-07", "2025-02-30"]) | _JSON,
                                                "other": _JSON})
_BODY = _FORECAST | st.fixed_dictionaries({"instances": st.lists(_FORECAST | _JSON, max_size=4) | _JSON}) | _JSON


@settings(max_examples=400, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=_BODY)
def test_any_json_value_at_any_level_parses_or_is_a_bad_request(api, specs, body):
    _outcome(api, specs[0], {"body": json.dumps(body).encode()})
    _outcome(api, specs[0], {"body": body})  # as TorchServe hands over JSON it decoded itself


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(body=st.binary(max_size=300), content_type=st.sampled_from(["", "application/json", "text/plain", "x/y"]))
def test_any_bytes_parse_or_are_a_bad_request(api, specs, body, content_type):
    assert _outcome(api, specs[1], {"body": body}, {"Content-Type": content_type}) in ("ok", "400")


def _same(a: Any, b: Any) -> bool:
    """The same JSON value of the same Python types (floats to the bit, NaN included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.isnan(a) and math.isnan(b) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[key], b[key]) for key in a)
    return a == b


_LITERAL = (st.integers() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() | st.floats(width=32)
            ).map(json.dumps) | st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
                                               fullmatch=True)


@settings(max_examples=600, deadline=None, database=None, derandomize=True)
@given(text=st.lists(_LITERAL | _JSON.map(json.dumps), max_size=6).map(lambda items: f"[{', '.join(items)}]"))
def test_the_body_reads_any_json_text_as_the_standard_library_does(api, text):
    """body.py reads with orjson where it is installed: the same values of the same types as json.loads, numbers
    beyond 64 bits and a float's range included, or json's own error."""
    try:
        expected = json.loads(text)
    except ValueError as err:
        with pytest.raises(type(err)):
            api.body._loads(text)
        return
    assert _same(api.body._loads(text), expected), text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_an_answer_never_carries_a_number_json_cannot_hold(api, specs, value):
    point = tiny_bundle("VALE3.SA-v1", {"symbol": "VALE3.SA"}, quantiles=None)
    ticker = api.routing.Ticker("VALE3.SA", point, None, [])
    instance = api.preprocess.Instance(torch.full((20, 1), 60.0), ticker, None)
    assert api.postprocess.answer(instance, [61.0] * 10)["forecast"] == [61.0] * 10
    with pytest.raises(api.body.BadRequest, match="not a finite number"):
        api.postprocess.answer(instance, [61.0] * 9 + [value])


def _send(server: Server, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request on its own connection (the frontend closes one after some errors)."""
    connection = http.client.HTTPConnection(server.url("inference").removeprefix("http://"), timeout=60)
    try:
        connection.request(method, path, body, {"Authorization": f"Bearer {server.key('inference')}",
                                                **(headers or {})})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def _strict_json(data: bytes) -> Any:
    """JSON as a strict client reads it: NaN and Infinity are not JSON."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"answer holds {constant}")
    return json.loads(data, parse_constant=refuse)


def _check_answer(status: int, data: bytes) -> None:
    assert status < 500, data[:300]
    if status == 413:  # over max_request_size: TorchServe's frontend answers a bare 413 (pinned below)
        assert data == b""
        return
    answer = _strict_json(data)
    if status == 200:
        assert len(answer["forecast"]) == 10 and all(math.isfinite(value) for value in answer["forecast"])
    else:  # 422: a by-name request the price store holds no usable bars for
        assert status in (400, 422) and answer["message"], answer


def test_generated_bodies_sent_to_torchserve_get_a_4xx_or_a_finite_forecast(server):
    bodies = [(name, body) for name, (body, _) in BAD.items()] + hostile_bodies(420, seed=2)
    statuses: collections.Counter = collections.Counter()
    for index, (_, body) in enumerate(bodies):
        method, content_type = VARIANTS[index % len(VARIANTS)]
        status, data = _send(server, method, "/predictions/lstm", body,
                             {"Content-Type": content_type} if content_type else {})
        statuses[status] += 1
        _check_answer(status, data)
    print(f"\nTorchServe: {len(bodies)} bodies sent, statuses {dict(statuses)}")
    assert statuses[400] > 0 and statuses[200] > 0


def test_torchserve_openapi_description_fuzzed_gets_no_5xx(server):
    """schemathesis over `OPTIONS /`, with the model's request body in place of TorchServe's "any bytes"."""
    status, data = _send(server, "OPTIONS", "/")
    assert status == 200
    description = json.loads(data)
    for path in MODEL_OPERATIONS:
        content = description["paths"][path]["post"]["requestBody"]["content"]
        content["application/json"] = {"schema": REQUEST_SCHEMA}
    schema = schemathesis.openapi.from_dict(description)
    statuses: collections.Counter = collections.Counter()
    server_errors = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:
            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case) -> None:
                if "model_name" in (case.path_parameters or {}):
                    case.path_parameters["model_name"] = "lstm"  # other names only meet the frontend's 404
                answer = case.call(base_url=server.url("inference"),
                                   headers={"Authorization": f"Bearer {server.key('inference')}"}, timeout=60)
                statuses[answer.status_code] += 1
                if answer.status_code >= 500:
                    server_errors.append((case.method, case.formatted_path, repr(case.body)[:200], answer.text[:200]))

            try:
                fuzz()
            except Unsatisfiable:  # the mode has nothing to generate here (no part of this operation to negate)
                continue
    print(f"\nOpenAPI fuzzing: {sum(statuses.values())} requests, statuses {dict(statuses)}")
    assert not server_errors, server_errors
    assert statuses[200] > 0 and statuses[400] > 0


def test_hostile_clients_beside_valid_ones_lose_no_valid_request(server):
    """Before: 4,828 of 7,258 valid requests got 503 while two clients sent deeply nested bodies."""
    hostile = [body for _, body in hostile_bodies(70, seed=3)] + [BAD["deep nesting"][0], BAD["beyond float32"][0]]
    statuses: collections.Counter = collections.Counter()
    stop, lock = threading.Event(), threading.Lock()

    def attack(offset: int) -> None:
        index = offset
        while not stop.is_set():
            try:
                outcome = _send(server, "POST", "/predictions/lstm", hostile[index % len(hostile)],
                                {"Content-Type": "application/json"})[0]
            except OSError as err:  # counted: the server must not drop a hostile client's connection either
                outcome = type(err).__name__
            with lock:
                statuses[outcome] += 1
            index += 1
            time.sleep(0.005)  # like the valid clients: the machine has 2 cores for everything

    with client_loop(server, clients=4) as valid:
        attackers = [threading.Thread(target=attack, args=(offset,), daemon=True) for offset in (0, 36)]
        for thread in attackers:
            thread.start()
        time.sleep(6)
        stop.set()
        for thread in attackers:
            thread.join(timeout=60)
    print(f"\nbeside hostile clients ({dict(statuses)}): {valid.requests} valid requests, {valid.errors} lost "
          f"({dict(valid.statuses)})")
    assert valid.requests > 0 and valid.errors == 0, valid.statuses
    assert sum(statuses.values()) > 0 and set(statuses) <= {200, 400, 413}, statuses


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
def test_other_methods_without_a_body_are_told_to_post(server, method):
    status, data = _send(server, method, "/predictions/lstm")
    assert status == 400 and "POST JSON" in json.loads(data)["message"]


@pytest.mark.parametrize("path", ["/explanations/lstm", "/v1/models/lstm:explain", "/v2/models/lstm/explain"])
def test_explanations_are_refused_alone(server, path):
    status, data = _send(server, "POST", path, VALID, {"Content-Type": "application/json"})
    assert status == 400 and "no explanations" in json.loads(data)["message"]


def test_what_torchserve_itself_answers_before_any_handler(server):
    """TorchServe 0.12's frontend, not the handler: documented in docs/serving.md ("Bad requests"); pinned here so an
    upgrade that changes any of it shows."""
    json_type = {"Content-Type": "application/json"}
    # A body over max_request_size (1 MiB): a bare 413, no message.
    status, data = _send(server, "POST", "/predictions/lstm", b" " * (1 << 20) + VALID, json_type)
    assert (status, data) == (413, b"")
    # A model name that is only ":" on the KServe v2 path: the frontend's own ArrayIndexOutOfBoundsException.
    status, data = _send(server, "POST", "/v2/models/:/infer", VALID, json_type)
    assert status == 500 and json.loads(data)["type"] == "ArrayIndexOutOfBoundsException"
    # A malformed form: the frontend's form decoder fails.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, data = _send(server, "POST", "/predictions/lstm", b"a=%", form)
    assert status == 500 and json.loads(data)["type"] == "ErrorDataDecoderException"
    # The method never reaches the handler: GET (or DELETE) with a valid JSON body is answered like a POST.
    status, data = _send(server, "GET", "/predictions/lstm", VALID, json_type)
    assert status == 200 and len(json.loads(data)["forecast"]) == 10
    # Every request still gets its answer afterwards.
    assert _send(server, "POST", "/predictions/lstm", VALID, json_type)[0] == 200
