"""TorchServe handler: a JSON window of prices in, the model's price forecast (and trading dates) out.

Thin on purpose: the archive carries the model definition (`net.py`), the weights (`model.pt`) and
everything else the handler needs (`metadata.json`, including the exchanges' trading sessions,
computed at archive time), so this file imports only torch, the standard library and `ts`, and the
same bundle could move to another server without retraining.

Every request of a batch is validated on its own: a bad one gets HTTP 400 with a JSON message and
never fails its neighbours (TorchServe would answer the whole batch with the error of a
`PredictionException` raised out of `handle`).
"""

from __future__ import annotations

import bisect
import datetime as dt
import importlib.util
import json
import logging
import math
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import torch
from ts.torch_handler.base_handler import BaseHandler
from ts.utils.util import PredictionException

METADATA = "metadata.json"
MODEL_FILE = "net.py"
WEIGHTS = "model.pt"
# About 20 years of daily closes: more history than any client needs, and it bounds the work (and
# the memory) one request can cost a worker.
MAX_PRICES = 5000
FIELDS = ("prices", "stock", "last_date")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# One parsed request: (the last `window` rows of features, the forecast dates or None, the ticker
# answered for), or its error.
Parsed = tuple[list[list[float]], list[str] | None, str] | PredictionException


def _bad(message: str) -> PredictionException:
    return PredictionException(message, HTTPStatus.BAD_REQUEST.value)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _shown(value: Any) -> str:
    """A value as an error message quotes it: short, whatever a client sent."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _number(value: Any, where: str) -> float:
    """A finite float from a JSON number; booleans, strings and overflowing integers are refused."""
    if type(value) not in (int, float):
        raise _bad(f"{where} is not a number: {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _bad(f"{where} is not finite: {_shown(value)}")
    return number


def _without_sessions(calendar: dict[str, Any]) -> dict[str, Any]:
    """The calendar's summary for the description: its range per exchange, not every session."""
    exchanges = {name: {key: value for key, value in exchange.items() if key != "sessions"}
                 for name, exchange in calendar.get("exchanges", {}).items()}
    return {**calendar, "exchanges": exchanges}


def _load_net(model_dir: Path, metadata: dict[str, Any]) -> tuple[torch.nn.Module, Any]:
    """Build the archive's own ForecastNet (not an installed one) and load its weights safely."""
    spec = importlib.util.spec_from_file_location("stockcast_archive_net", model_dir / MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.ForecastNet(**metadata["net"])
    net.load_state_dict(torch.load(model_dir / WEIGHTS, map_location="cpu", weights_only=True))
    return net.eval(), module


class ForecastHandler(BaseHandler):
    """Validates each request, runs one forward pass for the valid ones, answers each request."""

    def initialize(self, context: Any) -> None:
        """BaseHandler's version builds the model class with no arguments; ours needs metadata["net"]."""
        torch.set_num_threads(1)  # one worker per core: intra-op threads would only fight the other workers
        log_level = (context.model_yaml_config or {}).get("handler", {}).get("log_level")
        if log_level:  # model-config.yaml's handler.log_level: see there
            logging.getLogger().setLevel(log_level)
        self.context = context
        self.manifest = context.manifest
        model_dir = Path(context.system_properties["model_dir"])
        self.metadata = json.loads((model_dir / METADATA).read_text())
        self.model, module = _load_net(model_dir, self.metadata)
        self.device = torch.device("cpu")
        self.symbol: str = self.metadata["symbol"]
        self.window: int = self.metadata["window"]
        self.horizon: int = self.metadata["horizon"]
        self.features: list[str] = self.metadata["features"]
        self.is_price = [name in module.PRICE_FEATURES for name in self.features]
        self.version = str(self.metadata.get("model_version") or self.manifest["model"].get("modelVersion"))
        self.stocks: list[str] = self.metadata.get("stocks") or [self.symbol]  # several for a pooled model
        # Every accepted spelling of a ticker -> the ticker: VALE3.SA and VALE3, in any case.
        self.stock_names = {name: stock for stock in self.stocks
                            for name in (stock.upper(), stock.upper().removesuffix(".SA"))}
        calendar = self.metadata.get("calendar", {})
        sessions = {name: exchange["sessions"] for name, exchange in calendar.get("exchanges", {}).items()}
        self.sessions: dict[str, list[str]] = {stock: sessions[exchange] for stock, exchange
                                               in calendar.get("stocks", {}).items()}
        # Without a named stock, dates come from the one exchange all the model's tickers trade on
        # (None: they trade on several; an empty list: the archive has no calendar).
        self.default_sessions = next(iter(sessions.values())) if len(sessions) == 1 else None if sessions else []
        self.initialized = True

    def preprocess(self, data: list[dict[str, Any]]) -> tuple[torch.Tensor | None, list[Parsed]]:
        """Parse every request; stack the valid windows into one [B, W, F] tensor."""
        parsed: list[Parsed] = []
        for row in data:
            try:
                parsed.append(self.parse(row))
            except PredictionException as err:
                parsed.append(err)
        windows = [item[0] for item in parsed if not isinstance(item, PredictionException)]
        inputs = torch.tensor(windows, dtype=torch.float32) if windows else None  # [B, W, F]
        return inputs, parsed

    def inference(self, data: tuple[torch.Tensor | None, list[Parsed]], *args: Any, **kwargs: Any
                  ) -> tuple[torch.Tensor | None, list[Parsed]]:
        """[B, W, F] raw prices -> [B, H] raw closes; a batch with no valid request skips the model."""
        inputs, parsed = data
        if inputs is None:
            return None, parsed
        with torch.inference_mode():
            return self.model(inputs), parsed

    def postprocess(self, data: tuple[torch.Tensor | None, list[Parsed]]) -> list[str]:
        """One JSON body per request, in request order; errors get their status code on their own."""
        forecasts, parsed = data
        rows = iter(forecasts.tolist() if forecasts is not None else ())
        bodies = []
        for idx, item in enumerate(parsed):
            self.context.set_response_content_type(idx, "application/json")
            if isinstance(item, PredictionException):
                self.context.set_response_status(item.error_code, HTTPStatus(item.error_code).phrase, idx)
                bodies.append(json.dumps({"code": item.error_code, "type": "PredictionException",
                                          "message": item.message}))
                continue
            self.context.set_response_status(HTTPStatus.OK.value, HTTPStatus.OK.phrase, idx)
            answer = {"stock": item[2], "model_version": self.version, "window": self.window,
                      "horizon": self.horizon, "forecast": next(rows)}
            if item[1] is not None:
                answer["dates"] = item[1]
            bodies.append(json.dumps(answer))
        return bodies

    def describe_handle(self) -> str:
        """`GET /models/<name>?customized=true`: what the model is, what it was trained on, how it scored."""
        metadata, metrics = self.metadata, self.metadata.get("metrics", {})
        data = {key: value for key, value in metadata.get("data", {}).items() if key != "warnings"}
        return json.dumps({
            "stock": self.symbol,
            "stocks": self.stocks,
            "model_version": self.version,
            "window": self.window,
            "horizon": self.horizon,
            "features": self.features,
            "training_data": data,
            "test_metrics": {
                "model": {name: metrics.get(f"test_{name}") for name in ("rmse", "mae", "mape")},
                "naive_last_value": {name: metrics.get(f"naive_{name}") for name in ("rmse", "mae", "mape")},
                "skill_mape": metrics.get("skill_mape"),
            },
            "mlflow_run_id": metadata.get("mlflow_run_id"),
            "trained": metadata.get("created"),
            "calendar": _without_sessions(metadata.get("calendar", {})),
            "request": {"prices": f"{self.window} to {MAX_PRICES} values, oldest first; the last {self.window} "
                                  "are used",
                        "stock": "optional, must name this model's ticker",
                        "last_date": "optional YYYY-MM-DD: adds the next trading sessions as 'dates'"},
        })

    def parse(self, row: dict[str, Any]) -> Parsed:
        """One request's JSON -> its model input and forecast dates; raises PredictionException (400)."""
        if not isinstance(row, dict) or ("body" not in row and "data" not in row):
            raise _bad("no request body: POST JSON like {\"prices\": [...]} with Content-Type: application/json")
        body = self._json_object(row.get("body", row.get("data")))
        if "prices" not in body:
            raise _bad(f"'prices' is missing: send {{\"prices\": [close, ...]}}, oldest first "
                       f"(got {sorted(body)[:10]})")
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise _bad(f"unknown field(s) {unknown[:10]}; expected {', '.join(FIELDS)}")
        stock = self._stock(body.get("stock"))
        rows = self._rows(body)
        dates = None if body.get("last_date") is None else self._dates(body["last_date"], stock)
        return rows[-self.window:], dates, stock or self.symbol

    def _stock(self, stock: Any) -> str | None:
        """The model's ticker that `stock` names (with or without .SA, any case); None when not given."""
        if stock is None:
            return None
        name = stock.strip().upper() if isinstance(stock, str) else None
        if name not in self.stock_names:
            raise _bad(f"stock {_shown(stock)} does not match this model's ticker(s) {', '.join(self.stocks)}")
        return self.stock_names[name]

    @staticmethod
    def _json_object(body: Any) -> dict[str, Any]:
        if isinstance(body, (bytes, bytearray)):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad("body is not UTF-8 text; send JSON like {\"prices\": [...]}") from None
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError as err:
                raise _bad(f"body is not valid JSON ({err})") from None
        if not isinstance(body, dict):
            raise _bad(f"body must be a JSON object like {{\"prices\": [...]}}, got {_json_type(body)}")
        return body

    def _rows(self, body: dict[str, Any]) -> list[list[float]]:
        """`prices` -> rows of features: closes for a Close-only model, else [F] lists per day."""
        prices = body["prices"]
        if not isinstance(prices, list):
            raise _bad(f"'prices' must be a list, got {_json_type(prices)}")
        if len(prices) > MAX_PRICES:
            raise _bad(f"'prices' has {len(prices)} values; at most {MAX_PRICES} are accepted")
        if len(prices) < self.window:
            raise _bad(f"'prices' has {len(prices)} values; this model needs at least {self.window} (its window)")
        n_features = len(self.features)
        rows = []
        for day, value in enumerate(prices):
            if n_features == 1:
                values = [value]
            elif isinstance(value, list) and len(value) == n_features:
                values = value
            else:
                raise _bad(f"prices[{day}] must be a list of {n_features} values ({', '.join(self.features)})")
            row = []
            for number, name, is_price in zip(values, self.features, self.is_price, strict=True):
                where = f"prices[{day}]" if n_features == 1 else f"prices[{day}] {name}"
                number = _number(number, where)
                if number < 0 or (is_price and number == 0):
                    raise _bad(f"{where} must be {'positive' if is_price else 'non-negative'}, got {number:g}")
                row.append(number)
            rows.append(row)
        return rows

    def _dates(self, last_date: Any, stock: str | None) -> list[str]:
        """The `horizon` trading sessions after `last_date`, from the calendar stored at archive time."""
        if not isinstance(last_date, str) or not _ISO_DATE.fullmatch(last_date):
            raise _bad(f"last_date {_shown(last_date)} is not a date in YYYY-MM-DD form")
        try:
            dt.date.fromisoformat(last_date)
        except ValueError as err:
            raise _bad(f"last_date {last_date!r} is not a valid date ({err})") from None
        sessions = self.sessions.get(stock) if stock else self.default_sessions
        if sessions is None:
            raise _bad("this model's tickers trade on different exchanges: name the 'stock' to get its trading dates")
        start = bisect.bisect_right(sessions, last_date)
        dates = sessions[start:start + self.horizon]
        if not sessions or last_date < sessions[0] or len(dates) < self.horizon:
            span = f"{sessions[0]}..{sessions[-1]}" if sessions else "none"
            raise _bad(f"last_date {last_date} is outside the trading calendar stored in this archive "
                       f"(sessions {span}); archive the model again to extend it")
        return dates
