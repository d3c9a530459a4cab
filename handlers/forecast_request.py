"""The served model's HTTP contract: what TorchServe hands over -> an `Instance` or a 400; forecasts -> answers.

Shipped in the archive beside `forecast_handler.py` (torch and the standard library only), and called
directly by the tests. Everything a client sends is checked here, whatever its shape: no body may raise
anything but `BadRequest`, and no answer carries a number JSON cannot hold (NaN, Infinity).

A request is parsed in two steps, the body (`read_body`) and then one forecast's fields (`read_instance`),
so that a request naming several forecasts can reuse the second step for each and answer each on its own.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import torch

# About 20 years of daily closes: more history than any client needs, and it bounds the work (and
# the memory) one request can cost a worker. TorchServe refuses larger bodies before they get here
# (max_request_size in config.properties).
MAX_PRICES = 5000
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
    """What the served model takes and how its answers are labelled, read once from the archive's metadata."""

    symbol: str  # what answers name when the request names none ("VALE3.SA+AAPL" for a pooled model)
    symbols: tuple[str, ...]
    window: int  # the fewest closes a request may send
    context: int  # the most the model reads (its volatility estimate's burn-in); the window for older archives
    horizon: int
    levels: tuple[float, ...] | None  # the quantile levels the model answers with; None: a point model
    features: tuple[str, ...]
    is_price: tuple[bool, ...]  # per feature: prices must be positive, other features (volume) non-negative
    version: str
    sessions: Mapping[str, Sequence[str]]  # symbol -> the trading sessions of its exchange, ISO dates
    # Without a named stock, dates come from the one exchange all the model's symbols trade on (None:
    # they trade on several; empty: the archive has no calendar).
    default_sessions: Sequence[str] | None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], is_price: Sequence[bool], version: str) -> Spec:
        """is_price: per feature, whether it is a price (the net's `is_price` buffer)."""
        calendar = metadata.get("calendar", {})
        exchanges = {name: exchange["sessions"] for name, exchange in calendar.get("exchanges", {}).items()}
        default = next(iter(exchanges.values())) if len(exchanges) == 1 else None if exchanges else []
        features = tuple(metadata["features"])
        levels = metadata.get("net", {}).get("quantiles")
        return cls(metadata["symbol"], tuple(metadata.get("stocks") or [metadata["symbol"]]), metadata["window"],
                   metadata.get("context") or metadata["window"], metadata["horizon"],
                   None if levels is None else tuple(levels), features, tuple(bool(flag) for flag in is_price), version,
                   {symbol: exchanges[exchange] for symbol, exchange in calendar.get("stocks", {}).items()}, default)

    def symbol_named(self, name: str) -> str | None:
        """The model's symbol that `name` spells: VALE3.SA and VALE3, in any case; None if none."""
        name = name.strip().upper()
        return next((symbol for symbol in self.symbols if name in (symbol.upper(), symbol.upper().removesuffix(".SA"))),
                    None)


@dataclass(frozen=True)
class Instance:
    """One forecast to make: the model's input window and what its answer is labelled with."""

    window: list[list[float]]  # [L, F] raw values, oldest first, window <= L <= context
    symbol: str
    dates: list[str] | None  # the forecast's trading dates, when the request gave last_date


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


def read_instance(body: Mapping[str, Any], spec: Spec) -> Instance:
    """One forecast's fields -> its Instance; raises BadRequest naming the first thing wrong."""
    if "prices" not in body:
        raise BadRequest(f"'prices' is missing: send {{\"prices\": [close, ...]}}, oldest first "
                         f"(got {', '.join(_shown(key) for key in sorted(body)[:10]) or 'no field'})")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(_shown(key) for key in unknown[:10])}; "
                         f"expected {', '.join(FIELDS)}")
    symbol = _symbol(body.get("stock"), spec)
    rows = _rows(body["prices"], spec)
    dates = None if body.get("last_date") is None else _dates(body["last_date"], symbol, spec)
    return Instance(rows[-spec.context:], symbol or spec.symbol, dates)


def parse(row: Mapping[str, Any], headers: Mapping[str, Any], spec: Spec) -> Instance:
    """One request of the single-forecast shape {"prices": [...], "stock": ..., "last_date": ...}."""
    return read_instance(read_body(row, headers), spec)


def forecast(model: torch.nn.Module, instances: Sequence[Instance]) -> list[list[Any]]:
    """Each instance's model output as lists ([H], or [H][Q] for a quantile model), in order: one forward
    pass per distinct number of closes (requests send between `window` and `context` of them)."""
    outputs: list[list[Any]] = [[] for _ in instances]
    by_length: dict[int, list[int]] = {}
    for index, instance in enumerate(instances):
        by_length.setdefault(len(instance.window), []).append(index)
    with torch.inference_mode():
        for indices in by_length.values():
            batch = torch.tensor([instances[index].window for index in indices], dtype=torch.float32)  # [B, L, F]
            for index, output in zip(indices, model(batch).tolist(), strict=True):
                outputs[index] = output
    return outputs


def answer(instance: Instance, output: Sequence[Any], spec: Spec) -> dict[str, Any]:
    """The JSON answer to one instance from its model output; raises BadRequest if it is not finite.

    A quantile model's answer adds `quantiles` (level -> [H] prices), `intervals` (the central 80 and
    90 % ranges) and `p_up` (per step, the probability of closing above the last close, read off the
    quantiles: linear between levels, so within [1 - highest level, 1 - lowest level]); its `forecast`
    is the median.
    """
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


def describe(metadata: Mapping[str, Any], spec: Spec) -> dict[str, Any]:
    """`GET /models/<name>?customized=true`: what the model is, what it was trained on, how it scored."""
    metrics = metadata.get("metrics", {})
    calendar = metadata.get("calendar", {})
    exchanges = {name: {key: value for key, value in exchange.items() if key != "sessions"}
                 for name, exchange in calendar.get("exchanges", {}).items()}
    return {
        "stock": spec.symbol,
        "stocks": list(spec.symbols),
        "model_version": spec.version,
        "window": spec.window,
        "context": spec.context,
        "horizon": spec.horizon,
        "features": list(spec.features),
        "quantiles": None if spec.levels is None else list(spec.levels),
        "training_data": {key: value for key, value in metadata.get("data", {}).items() if key != "warnings"},
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
        "trained": metadata.get("created"),
        "calendar": {**calendar, "exchanges": exchanges},
        "request": {"prices": f"{spec.window} to {MAX_PRICES} values, oldest first; the last {spec.context} are "
                              f"used (the last {spec.window} by the network, up to {spec.context} by its volatility "
                              "estimate: send them all for the full estimate)",
                    "stock": "optional, must name this model's ticker",
                    "last_date": "optional YYYY-MM-DD: adds the next trading sessions as 'dates'"},
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


def _symbol(stock: Any, spec: Spec) -> str | None:
    """The model's symbol that `stock` names (with or without .SA, any case); None when not given."""
    if stock is None:
        return None
    symbol = spec.symbol_named(stock) if isinstance(stock, str) else None
    if symbol is None:
        raise BadRequest(f"stock {_shown(stock)} does not match this model's ticker(s) {', '.join(spec.symbols)}")
    return symbol


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


def _dates(last_date: Any, symbol: str | None, spec: Spec) -> list[str]:
    """The `horizon` trading sessions after `last_date`, from the calendar stored at archive time."""
    if not isinstance(last_date, str) or not _ISO_DATE.fullmatch(last_date):
        raise BadRequest(f"last_date {_shown(last_date)} is not a date in YYYY-MM-DD form")
    try:
        dt.date.fromisoformat(last_date)
    except ValueError as err:
        raise BadRequest(f"last_date {last_date!r} is not a valid date ({err})") from None
    sessions = spec.sessions.get(symbol, []) if symbol else spec.default_sessions  # []: no calendar stored
    if sessions is None:
        raise BadRequest("this model's tickers trade on different exchanges: name the 'stock' to get its trading dates")
    start = bisect.bisect_right(sessions, last_date)
    dates = list(sessions[start:start + spec.horizon])
    if not sessions or last_date < sessions[0] or len(dates) < spec.horizon:
        span = f"{sessions[0]}..{sessions[-1]}" if sessions else "none"
        raise BadRequest(f"last_date {last_date} is outside the trading calendar stored in this archive "
                         f"(sessions {span}); archive the model again to extend it")
    return dates
