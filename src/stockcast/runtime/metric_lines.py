"""The metrics a worker reports: forecasts per ticker and the handler's time per batch, written to TorchServe's
frontend as metric lines, once per batch."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from typing import Any

from ts.metrics.dimension import Dimension
from ts.metrics.metric_type_enum import MetricTypes


class MetricLines(logging.Handler):
    """The metric lines of TorchServe's worker (each an INFO record of `ts.metrics`, which the worker writes to its
    stdout, where the frontend reads it), held and written at once after each batch: one write to the frontend per
    batch, not one per metric (the batch's forecasts per ticker, its handler time, and TorchServe's own prediction
    time of the batch before, which it records after the handler returns)."""

    held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.held.append(record.getMessage())

    @classmethod
    def install(cls, logger: logging.Logger) -> None:
        """Holds `logger`'s records from now on, instead of its ancestors' handlers (once per process)."""
        logger.setLevel(logging.INFO)
        logger.handlers = [handler for handler in logger.handlers if type(handler).__name__ != cls.__name__]
        logger.addHandler(cls(logging.INFO))
        logger.propagate = False

    @classmethod
    def write(cls) -> None:
        if cls.held:
            sys.stdout.write("".join(f"{line}\n" for line in cls.held))
            sys.stdout.flush()
            cls.held.clear()


def record_metrics(metrics: Any, symbols: list[str], seconds: float) -> None:
    """A batch on TorchServe's Prometheus endpoint (`model_metrics_auto_detect` in config.properties): forecasts
    per ticker, `stockcast_forecasts_total{Ticker}`, and the batch's handler time as a histogram,
    `stockcast_handler_milliseconds`, for percentiles (TorchServe's own latencies are running totals).
    Milliseconds: TorchServe gives every histogram the Java client's fixed buckets, 0.005 to 10, which
    in seconds would put a whole batch (about 1-5 ms here) in the first one."""
    for symbol, count in Counter(symbols).items():
        metrics.add_counter("stockcast_forecasts_total", count, 0, [Dimension("Ticker", symbol)])
    metrics.add_metric("stockcast_handler_milliseconds", seconds * 1000, "ms", 0, [], MetricTypes.HISTOGRAM)
