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
from http import HTTPStatus
from pathlib import Path
from typing import Any

import forecast_request as api
import torch
from bundle import load_bundle
from ts.torch_handler.base_handler import BaseHandler


class ForecastHandler(BaseHandler):
    """Parses each request, runs one forward pass for the valid ones, answers each request on its own."""

    def initialize(self, context: Any) -> None:
        """BaseHandler's version builds the model class with no arguments; ours needs metadata["net"]."""
        torch.set_num_threads(1)  # one worker per core: intra-op threads would only fight the other workers
        log_level = (context.model_yaml_config or {}).get("handler", {}).get("log_level")
        if log_level:  # model-config.yaml's handler.log_level: see there
            logging.getLogger().setLevel(log_level)
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
        context.metrics.add_time("HandlerTime", round((time.time() - started) * 1000, 2), None, "ms")
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
