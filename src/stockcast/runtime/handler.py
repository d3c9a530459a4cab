"""TorchServe handler: glue between TorchServe, the archive's request modules and its ForecastNets.

The archive carries a portfolio: `portfolio.json` (which bundle answers each ticker, the exchanges'
trading sessions) and one bundle per model under `bundles/` (`net.py`, `model.pt`, `metadata.json`);
`bundle.py`, which loads a bundle and reads its metadata as the training side does; and the request
modules beside this file: `body.py` (TorchServe's body -> JSON), `fields.py` (a forecast's fields),
`routing.py` (which bundle answers, one forward pass per bundle) and `answers.py` (answers, errors, the
description). TorchServe puts the archive's folder on the worker's path, so they import each other by
name; this file imports only torch, the standard library, `ts` and those, and the same archive could
move to another server without retraining.

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

import answers
import routing
import torch
from body import MetricLines, dumps
from bundle import BUNDLES, PORTFOLIO, load_bundle
from ts.metrics.dimension import Dimension
from ts.metrics.metric_type_enum import MetricTypes
from ts.torch_handler.base_handler import BaseHandler


class ForecastHandler(BaseHandler):
    """Parses each request, runs one forward pass per bundle for the valid forecasts, answers each request
    (and each forecast of a portfolio request) on its own."""

    def initialize(self, context: Any) -> None:
        """BaseHandler's version loads one model with no arguments; ours loads every bundle of the portfolio."""
        torch.set_num_threads(1)  # one worker per core: intra-op threads would only fight the other workers
        settings = (context.model_yaml_config or {}).get("handler", {})
        if settings.get("log_level"):  # model-config.yaml's handler.log_level: see there
            logging.getLogger().setLevel(settings["log_level"])
        MetricLines.install(logging.getLogger("ts.metrics"))  # custom metrics are INFO lines the frontend reads
        self.context, self.manifest = context, context.manifest
        model_dir = Path(context.system_properties["model_dir"])
        portfolio = json.loads((model_dir / PORTFOLIO).read_text())
        self.models: dict[str, torch.nn.Module] = {}
        specs = {}
        for name in sorted({*portfolio["members"].values(), portfolio.get("any_ticker")} - {None}):
            self.models[name], metadata = load_bundle(model_dir / BUNDLES / name)
            specs[name] = routing.Spec.from_metadata(name, metadata, self.models[name].is_price.tolist())
        self.portfolio = routing.Portfolio.from_manifest(portfolio, specs, settings.get("default_stock"),
                                                         str(self.manifest["model"].get("modelVersion")))
        self.initialized = True

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[str | bytes]:
        """One JSON body per request, in order; a description where the management API asked for one."""
        started = time.time()
        headers = [context.request_processor[idx].get_request_properties() for idx in range(len(data))]
        described = [properties.get("describe") == "True" for properties in headers]
        forecasts = iter(routing.parse_batch([(row, properties) for row, properties, describe
                                              in zip(data, headers, described, strict=True) if not describe],
                                             self.portfolio))
        parsed = [answers.describe(self.portfolio) if describe else next(forecasts) for describe in described]
        instances = [item for request in parsed if isinstance(request, routing.Parsed)
                     for item in request.items if isinstance(item, routing.Instance)]
        outputs = iter(routing.forecast(self.models, instances))
        bodies = []
        for idx, request in enumerate(parsed):
            status, body = (HTTPStatus.OK, request) if isinstance(request, dict) else answers.reply(request, outputs)
            context.set_response_status(status.value, status.phrase, idx)
            context.set_response_content_type(idx, "application/json")
            bodies.append(json.dumps(body) if isinstance(request, dict) else dumps(body))  # a description: json's
        record_metrics(context.metrics, [instance.symbol for instance in instances], time.time() - started)
        MetricLines.write()
        return bodies


def record_metrics(metrics: Any, symbols: list[str], seconds: float) -> None:
    """A batch on TorchServe's Prometheus endpoint (`model_metrics_auto_detect` in config.properties): forecasts
    per ticker, `stockcast_forecasts_total{Ticker}`, and the batch's handler time as a histogram,
    `stockcast_handler_milliseconds`, for percentiles (TorchServe's own latencies are running totals).
    Milliseconds: TorchServe gives every histogram the Java client's fixed buckets, 0.005 to 10, which
    in seconds would put a whole batch (about 1-5 ms here) in the first one."""
    for symbol, count in Counter(symbols).items():
        metrics.add_counter("stockcast_forecasts_total", count, 0, [Dimension("Ticker", symbol)])
    metrics.add_metric("stockcast_handler_milliseconds", seconds * 1000, "ms", 0, [], MetricTypes.HISTOGRAM)
