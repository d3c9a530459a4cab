"""TorchServe handler: glue between TorchServe, the archive's request module and its ForecastNet.

The archive carries the model definition (`net.py`), the weights (`model.pt`), `metadata.json` (with
the exchanges' trading sessions), `bundle.py`, which loads those three, and `forecast_request.py`, which
checks requests and shapes answers; so this file imports only torch, the standard library, `ts` and
those, and the same archive could move to another server without retraining.

`handle` answers request by request, where BaseHandler.handle decides for the whole batch from its
first request's headers and lets one exception fail every request of the batch (503).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from http import HTTPStatus
from pathlib import Path
from typing import Any

import forecast_request as api
import torch
from bundle import load_bundle
from ts.metrics.dimension import Dimension
from ts.metrics.metric_type_enum import MetricTypes
from ts.torch_handler.base_handler import BaseHandler


class ForecastHandler(BaseHandler):
    """Parses each request, runs one forward pass for the valid ones, answers each request on its own."""

    def initialize(self, context: Any) -> None:
        """BaseHandler's version builds the model class with no arguments; ours needs metadata["net"]."""
        torch.set_num_threads(1)  # one worker per core: intra-op threads would only fight the other workers
        log_level = (context.model_yaml_config or {}).get("handler", {}).get("log_level")
        if log_level:  # model-config.yaml's handler.log_level: see there
            logging.getLogger().setLevel(log_level)
        logging.getLogger("ts.metrics").setLevel(logging.INFO)  # custom metrics are INFO lines the frontend reads
        self.context, self.manifest = context, context.manifest
        model_dir = Path(context.system_properties["model_dir"])
        self.model, self.metadata = load_bundle(model_dir)
        version = str(self.metadata.get("model_version") or self.manifest["model"].get("modelVersion"))
        self.spec = api.Spec.from_metadata(self.metadata, self.model.is_price.tolist(), version)
        self.initialized = True

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[str]:
        """One JSON body per request, in order; a description where the management API asked for one."""
        started = time.time()
        self.context = context
        parsed: list[api.Instance | api.BadRequest | dict[str, Any]] = []
        for idx, row in enumerate(data):
            headers = context.request_processor[idx].get_request_properties()
            try:
                parsed.append(api.describe(self.metadata, self.spec) if headers.get("describe") == "True"
                              else api.parse(row, headers, self.spec))
            except api.BadRequest as err:
                parsed.append(err)
        instances = [item for item in parsed if isinstance(item, api.Instance)]
        forecasts = iter(api.forecast(self.model, instances))
        bodies = [self._reply(idx, item, forecasts) for idx, item in enumerate(parsed)]
        record_metrics(context.metrics, [instance.symbol for instance in instances], time.time() - started)
        return bodies

    def _reply(self, idx: int, item: api.Instance | api.BadRequest | dict[str, Any], forecasts: Any) -> str:
        if isinstance(item, api.Instance):
            try:
                item = api.answer(item, next(forecasts), self.spec)
            except api.BadRequest as err:
                item = err
        status = item.status if isinstance(item, api.BadRequest) else HTTPStatus.OK
        self.context.set_response_status(status.value, status.phrase, idx)
        self.context.set_response_content_type(idx, "application/json")
        return json.dumps(api.error(item) if isinstance(item, api.BadRequest) else item)


def record_metrics(metrics: Any, symbols: list[str], seconds: float) -> None:
    """A batch on TorchServe's Prometheus endpoint (`model_metrics_auto_detect` in config.properties): forecasts
    per ticker, `stockcast_forecasts_total{Ticker}`, and the batch's handler time as a histogram,
    `stockcast_handler_milliseconds`, for percentiles (TorchServe's own latencies are running totals).
    Milliseconds: TorchServe gives every histogram the Java client's fixed buckets, 0.005 to 10, which
    in seconds would put a whole batch (about 1-5 ms here) in the first one."""
    for symbol, count in Counter(symbols).items():
        metrics.add_counter("stockcast_forecasts_total", count, 0, [Dimension("Ticker", symbol)])
    metrics.add_metric("stockcast_handler_milliseconds", seconds * 1000, "ms", 0, [], MetricTypes.HISTOGRAM)
