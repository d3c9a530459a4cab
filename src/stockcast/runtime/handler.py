"""TorchServe handler: glue between TorchServe, the runtime's phases and the archive's ForecastNets.

The archive carries a portfolio: `portfolio.json` (which bundle answers each ticker, the exchanges' trading
sessions), one bundle per model under `bundles/` (`net.py`, `model.pt`, `metadata.json`) and this package,
`stockcast/runtime/`. TorchServe imports the handler from the archive's root (the archiver copies this file
there) with the archive's folder first on the worker's path, so `stockcast.runtime` is the archive's own copy,
and the same archive could move to another server without retraining.

`handle` answers request by request, where BaseHandler.handle decides for the whole batch from its first
request's headers and lets one exception fail every request of the batch (503): here a bad request is its own 4xx
and anything raised while serving one request its own 500 (`failure`), its batch neighbours answered.
"""

from __future__ import annotations

import json
import logging
import os
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any

import torch
from ts.torch_handler.base_handler import BaseHandler

from stockcast.runtime import description, inference, postprocess, preprocess, risk
from stockcast.runtime.body import dumps
from stockcast.runtime.bundle import BUNDLES, PORTFOLIO, load_bundle
from stockcast.runtime.failure import failed
from stockcast.runtime.metric_lines import MetricLines, record_metrics
from stockcast.runtime.routing import Portfolio
from stockcast.runtime.store import PriceStore


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
        names = sorted({*portfolio["members"].values(), portfolio.get("any_ticker")} - {None})
        bundles = {name: load_bundle(model_dir / BUNDLES / name) for name in names}
        self.portfolio = Portfolio.from_manifest(portfolio, bundles, settings.get("default_stock"),
                                                 str(self.manifest["model"].get("modelVersion")))
        self.store = PriceStore.configured(settings, os.environ)
        self.risk = risk.Model.configured(self.portfolio, settings.get("risk"))
        logging.getLogger(__name__).info("stockcast runtime from %s: %d bundle(s), price store %s",
                                         Path(__file__).parent, len(bundles), self.store and self.store.folder)
        self.initialized = True

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[str | bytes]:
        """One JSON body per request, in order; a description where the management API asked for one."""
        started = time.time()
        headers = [context.request_processor[index].get_request_properties() for index in range(len(data))]
        described = [index for index, properties in enumerate(headers) if properties.get("describe") == "True"]
        asked = [index for index, properties in enumerate(headers) if properties.get("describe") != "True"]
        batch = preprocess.parse_batch([(data[index], headers[index]) for index in asked], self.portfolio,
                                       self.store)
        batch = risk.checked(batch, self.risk)  # a portfolio's risk is refused before any forward pass
        outputs = inference.forecast(batch.instances)
        bodies: list[str | bytes] = [b""] * len(data)
        for index in described:  # json's: the description is small, and a client reads it once
            described_body: Any
            try:
                status, described_body = HTTPStatus.OK, description.describe(self.portfolio, self.store, self.risk)
            except Exception as err:
                status, described_body = HTTPStatus.INTERNAL_SERVER_ERROR, postprocess.error(failed(err, "describing"))
            bodies[index] = self._answer(context, index, status, described_body, json.dumps)
        for index, request in zip(asked, batch.requests, strict=True):
            status, body = postprocess.reply(request, batch.instances, outputs, self.risk)
            bodies[index] = self._answer(context, index, status, body, dumps)
        record_metrics(context.metrics, [instance.symbol for instance in batch.instances], time.time() - started)
        MetricLines.write()
        return bodies

    @staticmethod
    def _answer(context: Any, index: int, status: HTTPStatus, body: Any, encode: Any) -> str | bytes:
        context.set_response_status(status.value, status.phrase, index)
        context.set_response_content_type(index, "application/json")
        return encode(body)
