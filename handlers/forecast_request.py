"""The served portfolio's HTTP contract: what TorchServe hands over -> `Instance`s or a 400; forecasts -> answers.

Shipped in the archive beside `forecast_handler.py` (torch and the standard library only), and called
directly by the tests. Everything a client sends is checked here, whatever its shape: no body may raise
anything but `BadRequest`, and no answer carries a number JSON cannot hold (NaN, Infinity).

A request is a single forecast, `{"stock": "PETR4", "prices": [...]}`, or a portfolio in the KServe v1
shape, `{"instances": [{...}, ...]}`, answered `{"predictions": [...]}` in order. Both are parsed in two
steps, the body (`read_body`) and then each forecast's fields (`read_instance`), so every instance of a
portfolio is checked and answered on its own: a bad one gets its own error object, never failing the rest.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

import torch

# About 20 years of daily closes: more history than any client needs, and it bounds the work (and
# the memory) one request can cost a worker. TorchServe refuses larger bodies before they get here
# (max_request_size in config.properties).
MAX_PRICES = 5000
# Forecasts one portfolio request may ask for: 500 instances of 100 closes take about 0.5 MB, inside the
# frontend's 1 MiB body limit, and a worker answers them in well under a second.
MAX_INSTANCES = 500
FIELDS = ("prices", "stock", "last_date")
RANGE_METRICS = ("crps", "coverage_80", "coverage_90", "width_80")
# The model computes in float32: a larger input would become infinite there.
FLOAT32_MAX = torch.finfo(torch.float32).max
SEND_JSON = 'POST JSON like {"prices": [...]} with Content-Type: application/json'
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FORM = "application/x-www-form-urlencoded"


class BadRequest(Exception):
    """What the client got wrong, as the message of its own 400 answer."""

    status = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Spec:
    """One bundle of the archive: what its net takes and how its answers are labelled, read once from its metadata."""

    name: str  # its folder in the archive
    symbols: tuple[str, ...]  # the tickers it was trained on (several: a pooled model)
    window: int  # the fewest closes a request may send
    context: int  # the most the model reads (its volatility estimate's burn-in); the window for older bundles
    horizon: int
    levels: tuple[float, ...] | None  # the quantile levels the model answers with; None: a point model
    features: tuple[str, ...]
    is_price: tuple[bool, ...]  # per feature: prices must be positive, other features (volume) non-negative
    version: str  # the model version: the served version it was first deployed with
    metadata: Mapping[str, Any] = field(compare=False, repr=False)

    @classmethod
    def from_metadata(cls, name: str, metadata: Mapping[str, Any], is_price: Sequence[bool]) -> Spec:
        """is_price: per feature, whether it is a price (the net's `is_price` buffer)."""
        levels = metadata.get("net", {}).get("quantiles")
        return cls(name, tuple(metadata.get("stocks") or [metadata["symbol"]]), metadata["window"],
                   metadata.get("context") or metadata["window"], metadata["horizon"],
                   None if levels is None else tuple(levels), tuple(metadata["features"]),
                   tuple(bool(flag) for flag in is_price), str(metadata.get("model_version")), metadata)


@dataclass(frozen=True)
class Portfolio:
    """The tickers one archive answers, which bundle answers each, and the requests' default ticker."""

    specs: Mapping[str, Spec]  # bundle name -> its spec
    members: Mapping[str, str]  # ticker -> the bundle answering it
    default: str | None  # the ticker answering requests that name none; None: they must name one
    version: str  # the archive's version: the served set's
    calendar: Mapping[str, Any]  # {"exchanges": {code: {"sessions": [...], ...}}, "stocks": {ticker: code}}

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], specs: Mapping[str, Spec], default_stock: str | None,
                      version: str) -> Portfolio:
        """`manifest`: the archive's portfolio.json; `default_stock`: the serving config's default ticker, which
        answers when it is served (else the only ticker, if there is one)."""
        members = dict(manifest["members"])
        portfolio = cls(specs, members, None, version, manifest.get("calendar", {}))
        named = portfolio.symbol_named(default_stock) if isinstance(default_stock, str) else None
        return replace(portfolio, default=named or (next(iter(members)) if len(members) == 1 else None))

    def symbol_named(self, name: str) -> str | None:
        """The served ticker that `name` spells: VALE3.SA and VALE3, in any case; None if none."""
        return self._names.get(name.strip().upper())

    @functools.cached_property
    def _names(self) -> dict[str, str]:
        names = {symbol.upper().removesuffix(".SA"): symbol for symbol in self.members}
        return names | {symbol.upper(): symbol for symbol in self.members}

    def sessions(self, symbol: str) -> Sequence[str]:
        """The trading sessions of the ticker's exchange stored at archive time (empty: none stored)."""
        exchange = self.calendar.get("stocks", {}).get(symbol)
        return self.calendar.get("exchanges", {}).get(exchange, {}).get("sessions", [])

    def member(self, stock: Any) -> tuple[str, Spec]:
        """The ticker a request's `stock` names (None: the default) and the spec of the bundle answering it."""
        if stock is None:
            if self.default is None:
                raise BadRequest(f"name the 'stock' to forecast: this model serves {self._served()}")
            symbol = self.default
        else:
            symbol = self.symbol_named(stock) if isinstance(stock, str) else None
            if symbol is None:
                raise BadRequest(f"stock {_shown(stock)} has no deployed model: this model serves {self._served()}")
        return symbol, self.specs[self.members[symbol]]

    def _served(self) -> str:
        return f"{len(self.members)} ticker(s): {', '.join(self.members)}"


@dataclass(frozen=True)
class Instance:
    """One forecast to make: the model's input window and what its answer is labelled with."""

    window: list[list[float]]  # [L, F] raw values, oldest first, window <= L <= context
    symbol: str
    spec: Spec  # the bundle answering it
    dates: list[str] | None  # the forecast's trading dates, when the request gave last_date


@dataclass(frozen=True)
class Parsed:
    """One request's forecasts: a single one, or a portfolio's in order (each an Instance or its own error)."""

    items: list[Instance | BadRequest]
    many: bool  # the portfolio shape: answered {"predictions": [...]}


def read_body(row: Mapping[str, Any], headers: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object a request sent, from TorchServe's request row and its headers; raises BadRequest.

    TorchServe hands the raw body over as "body" (bytes; str or parsed JSON when decode_input_request is
    on), a multipart form's fields by name, and an urlencoded form already split into fields.
    """
    if headers.get("explain") == "True":  # /explanations/..., /v1/models/<m>:explain, /v2/models/<m>/explain
        raise BadRequest("this model has no explanations: POST the prices to /predictions/<model> for a forecast")
    if "body" not in row and "data" not in row:
        content_type = _content_type(headers)
        if content_type == _FORM:
            raise BadRequest(f"the body came as a form (Content-Type: {_FORM}, what curl -d and HTML forms send): "
                             f"{SEND_JSON}")
        if content_type.startswith("multipart/"):
            raise BadRequest(f"the multipart body has no part named 'data' or 'body': {SEND_JSON}")
        raise BadRequest(f"no request body: {SEND_JSON}")
    body = row.get("body", row.get("data"))
    if isinstance(body, (bytes, bytearray)):
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequest(f"body is not UTF-8 text: {SEND_JSON}") from None
    if isinstance(body, str):
        if not body.strip():
            raise BadRequest(f"empty body: {SEND_JSON}")
        try:
            body = json.loads(body)
        except RecursionError:
            raise BadRequest(f"body nests too deep: {SEND_JSON}") from None
        except ValueError as err:  # also integers of more digits than Python converts
            sent = _content_type(headers)
            raise BadRequest(f"body is not valid JSON ({str(err)[:100]})"
                             f"{f' (sent as {_shown(sent)})' if sent else ''}: {SEND_JSON}") from None
    if not isinstance(body, dict):
        raise BadRequest(f'body must be a JSON object like {{"prices": [...]}}, got {_json_type(body)}')
    return body


def read_instance(body: Any, portfolio: Portfolio) -> Instance:
    """One forecast's fields -> its Instance; raises BadRequest naming the first thing wrong."""
    if not isinstance(body, dict):
        raise BadRequest(f'a forecast must be a JSON object like {{"prices": [...]}}, got {_json_type(body)}')
    if "prices" not in body:
        raise BadRequest(f"'prices' is missing: send {{\"prices\": [close, ...]}}, oldest first "
                         f"(got {', '.join(_shown(key) for key in sorted(body)[:10]) or 'no field'})")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(_shown(key) for key in unknown[:10])}; "
                         f"expected {', '.join(FIELDS)}")
    symbol, spec = portfolio.member(body.get("stock"))
    rows = _rows(body["prices"], spec)
    dates = None if body.get("last_date") is None else _dates(body["last_date"], portfolio.sessions(symbol),
                                                              spec.horizon)
    return Instance(rows[-spec.context:], symbol, spec, dates)


def parse(row: Mapping[str, Any], headers: Mapping[str, Any], portfolio: Portfolio) -> Parsed:
    """One request: {"prices": [...], "stock": ..., "last_date": ...}, or {"instances": [such objects]}."""
    body = read_body(row, headers)
    if "instances" not in body:
        return Parsed([read_instance(body, portfolio)], many=False)
    instances = body["instances"]
    if set(body) != {"instances"}:
        raise BadRequest(f"a portfolio request has only 'instances', got {', '.join(map(_shown, sorted(body)[:10]))}")
    if not isinstance(instances, list) or not 1 <= len(instances) <= MAX_INSTANCES:
        raise BadRequest(f"'instances' must be a list of 1 to {MAX_INSTANCES} forecasts like "
                         f'{{"stock": "VALE3", "prices": [...]}}, got {_shown(instances)}')
    items: list[Instance | BadRequest] = []
    for instance in instances:
        try:
            items.append(read_instance(instance, portfolio))
        except BadRequest as err:
            items.append(err)
    return Parsed(items, many=True)


def forecast(models: Mapping[str, torch.nn.Module], instances: Sequence[Instance]) -> list[list[Any]]:
    """Each instance's model output as lists ([H], or [H][Q] for a quantile model), in order: one forward
    pass per bundle and distinct number of closes (requests send between `window` and `context` of them)."""
    outputs: list[list[Any]] = [[] for _ in instances]
    groups: dict[tuple[str, int], list[int]] = {}
    for index, instance in enumerate(instances):
        groups.setdefault((instance.spec.name, len(instance.window)), []).append(index)
    with torch.inference_mode():
        for (name, _), indices in groups.items():
            batch = torch.tensor([instances[index].window for index in indices], dtype=torch.float32)  # [B, L, F]
            for index, output in zip(indices, models[name](batch).tolist(), strict=True):
                outputs[index] = output
    return outputs


def reply(parsed: Parsed | BadRequest, outputs: Iterator[list[Any]]) -> tuple[HTTPStatus, dict[str, Any]]:
    """A request's status and JSON answer; `outputs` yields the model outputs of its Instances in order."""
    if isinstance(parsed, BadRequest):
        return parsed.status, error(parsed)
    results: list[tuple[HTTPStatus, dict[str, Any]]] = []
    for item in parsed.items:
        try:
            if isinstance(item, BadRequest):
                raise item
            results.append((HTTPStatus.OK, answer(item, next(outputs))))
        except BadRequest as err:
            results.append((err.status, error(err)))
    if parsed.many:
        return HTTPStatus.OK, {"predictions": [body for _, body in results]}
    return results[0]


def answer(instance: Instance, output: Sequence[Any]) -> dict[str, Any]:
    """The JSON answer to one instance from its model output; raises BadRequest if it is not finite.

    A quantile model's answer adds `quantiles` (level -> [H] prices), `intervals` (the central 80 and
    90 % ranges) and `p_up` (per step, the probability of closing above the last close, read off the
    quantiles: linear between levels, so within [1 - highest level, 1 - lowest level]); its `forecast`
    is the median.
    """
    spec = instance.spec
    steps = [list(step) if spec.levels else [step] for step in output]  # [H][Q]
    if not all(math.isfinite(value) for step in steps for value in step):
        raise BadRequest("the forecast for these prices is not a finite number: they are too far from the prices "
                         "this model was trained on")
    body = {"stock": instance.symbol, "model_version": spec.version, "window": spec.window, "horizon": spec.horizon}
    if spec.levels is None:
        body["forecast"] = [step[0] for step in steps]
    else:
        body["forecast"] = [step[spec.levels.index(0.5)] for step in steps]
        body["quantiles"] = {f"{level:g}": [step[q] for step in steps] for q, level in enumerate(spec.levels)}
        body["intervals"] = {}
        for coverage in (80, 90):
            lower, upper = (f"{(100 + sign * coverage) / 200:g}" for sign in (-1, 1))  # 80 -> "0.1", "0.9"
            quantiles = body["quantiles"]
            if lower in quantiles and upper in quantiles:
                body["intervals"][f"{coverage}"] = {"lower": quantiles[lower], "upper": quantiles[upper]}
        last_close = instance.window[-1][0]
        body["p_up"] = [1 - _cdf(last_close, step, spec.levels) for step in steps]
    if instance.dates is not None:
        body["dates"] = instance.dates
    return body


def _cdf(value: float, quantiles: Sequence[float], levels: Sequence[float]) -> float:
    """P(close <= value) from increasing quantiles: linear between them, held at the end levels outside."""
    above = bisect.bisect_right(quantiles, value)
    if above == 0:
        return levels[0]
    if above == len(quantiles):
        return levels[-1]
    low, high = quantiles[above - 1], quantiles[above]
    return levels[above - 1] + (levels[above] - levels[above - 1]) * (value - low) / (high - low)


def error(err: BadRequest) -> dict[str, Any]:
    """The JSON answer to a bad request, in TorchServe's own error shape."""
    return {"code": err.status.value, "type": "PredictionException", "message": err.message}


def describe(portfolio: Portfolio) -> dict[str, Any]:
    """`GET /models/<name>?customized=true`: every served ticker, the model answering it, how it was trained
    and how it scored; the default ticker and the request shapes."""
    calendar = portfolio.calendar
    exchanges = {name: {key: value for key, value in exchange.items() if key != "sessions"}
                 for name, exchange in calendar.get("exchanges", {}).items()}
    return {
        "served_version": portfolio.version,
        "default_stock": portfolio.default,
        "stocks": {symbol: _described(portfolio.specs[name]) for symbol, name in portfolio.members.items()},
        "calendar": {**calendar, "exchanges": exchanges},
        "request": {"stock": f"optional: a served ticker (default {portfolio.default or 'none: name one'}), "
                             "with or without .SA, any case",
                    "prices": f"window to {MAX_PRICES} values, oldest first; the last `context` are used (the last "
                              "`window` by the network, up to `context` by its volatility estimate: send them all "
                              "for the full estimate)",
                    "last_date": "optional YYYY-MM-DD: adds the next trading sessions as 'dates'",
                    "instances": f"a portfolio: up to {MAX_INSTANCES} such objects, answered as 'predictions' in "
                                 "order (a bad one gets its own error object)"},
    }


def _described(spec: Spec) -> dict[str, Any]:
    """One bundle as `describe` shows it for each ticker it answers."""
    metadata = spec.metadata
    metrics = metadata.get("metrics", {})
    return {
        "model_version": spec.version,
        "model": metadata.get("symbol"),  # its registered model in MLflow is stockcast-<model>
        "answered_by": spec.name,
        "pooled_over": list(spec.symbols) if len(spec.symbols) > 1 else None,
        "window": spec.window,
        "context": spec.context,
        "horizon": spec.horizon,
        "features": list(spec.features),
        "quantiles": None if spec.levels is None else list(spec.levels),
        "training_data": {key: value for key, value in metadata.get("data", {}).items()
                          if key not in ("warnings", "rows")},
        "trained": metadata.get("created"),
        "test_metrics": {
            "model": {name: metrics.get(f"test_{name}") for name in ("rmse", "mae", "mape")},
            "naive_last_value": {name: metrics.get(f"naive_{name}") for name in ("rmse", "mae", "mape")},
            "skill_mape": metrics.get("skill_mape"),
        },
        # CRPS (% of the origin's close) and coverage, beside the naive-empirical and EWMA baselines.
        "range_metrics": {period: {name: metrics.get(f"{prefix}{name}") for name in RANGE_METRICS}
                          | {"skill_crps": metrics.get(skill), "ewma_skill_crps": metrics.get(f"{ewma}skill_crps"),
                             "ewma_coverage_80": metrics.get(f"{ewma}coverage_80")}
                          for period, prefix, skill, ewma in (("validation", "val_", "val_skill_crps", "val_ewma_"),
                                                              ("test", "test_", "skill_crps", "ewma_"))},
        "mlflow_run_id": metadata.get("mlflow_run_id"),
    }


def _content_type(headers: Mapping[str, Any]) -> str:
    """The request's media type, lower case, without parameters; "" when it sent none."""
    value = next((value for name, value in headers.items() if name.lower() == "content-type"), "")
    return value.split(";")[0].strip().lower() if isinstance(value, str) else ""


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _shown(value: Any) -> str:
    """A value as a message quotes it: short whatever a client sent (a list or object only by its size)."""
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return f"an object of {len(value)} field(s)"
    text = repr(value[:41] if isinstance(value, str) else value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _number(value: Any, where: str) -> float:
    """A finite float32-sized number from a JSON number; booleans, strings and overflowing numbers are refused."""
    if type(value) not in (int, float):
        raise BadRequest(f"{where} is not a number: {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadRequest(f"{where} is not finite: {_shown(value)}")
    if abs(number) > FLOAT32_MAX:
        raise BadRequest(f"{where} is beyond float32's range ({FLOAT32_MAX:.3g}): {_shown(value)}")
    return number


def _rows(prices: Any, spec: Spec) -> list[list[float]]:
    """`prices` -> rows of features: closes for a Close-only model, else [F] lists per day."""
    if not isinstance(prices, list):
        raise BadRequest(f"'prices' must be a list, got {_json_type(prices)}")
    if len(prices) > MAX_PRICES:
        raise BadRequest(f"'prices' has {len(prices)} values; at most {MAX_PRICES} are accepted")
    if len(prices) < spec.window:
        raise BadRequest(f"'prices' has {len(prices)} values; this model needs at least {spec.window} (its window)")
    n_features = len(spec.features)
    rows = []
    for day, value in enumerate(prices):
        if n_features == 1:
            values = [value]
        elif isinstance(value, list) and len(value) == n_features:
            values = value
        else:
            raise BadRequest(f"prices[{day}] must be a list of {n_features} values ({', '.join(spec.features)})")
        row = []
        for number, name, is_price in zip(values, spec.features, spec.is_price, strict=True):
            where = f"prices[{day}]" if n_features == 1 else f"prices[{day}] {name}"
            number = _number(number, where)
            if number < 0 or (is_price and number == 0):
                raise BadRequest(f"{where} must be {'positive' if is_price else 'non-negative'}, got {number:g}")
            row.append(number)
        rows.append(row)
    return rows


def _dates(last_date: Any, sessions: Sequence[str], horizon: int) -> list[str]:
    """The `horizon` trading sessions after `last_date`, from the calendar stored at archive time."""
    if not isinstance(last_date, str) or not _ISO_DATE.fullmatch(last_date):
        raise BadRequest(f"last_date {_shown(last_date)} is not a date in YYYY-MM-DD form")
    try:
        dt.date.fromisoformat(last_date)
    except ValueError as err:
        raise BadRequest(f"last_date {last_date!r} is not a valid date ({err})") from None
    start = bisect.bisect_right(sessions, last_date)
    dates = list(sessions[start:start + horizon])
    if not sessions or last_date < sessions[0] or len(dates) < horizon:
        span = f"{sessions[0]}..{sessions[-1]}" if sessions else "none"
        raise BadRequest(f"last_date {last_date} is outside the trading calendar stored in this archive "
                         f"(sessions {span}); archive the model again to extend it")
    return dates
