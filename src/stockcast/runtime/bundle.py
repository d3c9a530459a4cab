"""The serving bundle (weights + net.py + metadata.json) and the archive of bundles, as every reader reads them.

This file imports torch and the standard library only: the archive carries it (as `bundle.py`, beside the
handler), so TorchServe's handler, the archiver, the evaluation and the operations load a bundle, read its
metadata and name the archive's parts the same way. `BundleMeta` holds the one set of defaults for bundles
written before a key existed; `Description` is the handler's description of an archive
(`GET /models/<name>?customized=true`), which the clients read.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn

WEIGHTS = "model.pt"
MODEL_FILE = "net.py"
METADATA = "metadata.json"
# The request fields that carry a day's bar beside `prices` (the closes), and the features they fill.
BAR_FIELDS = {"open": "Open", "high": "High", "low": "Low"}
# An archive's root holds the portfolio (which bundle answers each ticker, the exchanges' trading sessions)
# and one folder per bundle under `bundles/`.
PORTFOLIO = "portfolio.json"
BUNDLES = "bundles"


@dataclass(frozen=True)
class BundleMeta:
    """A bundle's metadata.json, typed; the raw file stays in `raw` (`net` holds ForecastNet's arguments)."""

    symbol: str  # the model's name: its ticker, or a pooled model's tickers joined by "+"
    stocks: tuple[str, ...]  # the tickers it was trained on (several: a pooled model)
    window: int  # the rows the network reads: the fewest a request may send
    context: int  # the most rows the model reads (its volatility estimate's burn-in); the window for older bundles
    horizon: int  # the trading days it forecasts
    features: tuple[str, ...]  # the columns of a row, Close first
    levels: tuple[float, ...] | None  # the quantile levels it answers with; None: a point model
    version: str | None  # the model version: the served version it was first deployed with; None: never archived
    data: Mapping[str, Any]  # the training data: start, end, first_date, last_date, val_start, test_start, ...
    metrics: Mapping[str, float]  # its validation and test metrics
    run_id: str | None  # the MLflow run that trained it
    created: str | None  # when it was trained (ISO time)
    raw: Mapping[str, Any] = field(compare=False, repr=False)
    any_ticker: bool = False  # a global model: it answers tickers beyond `stocks` too, from the bars sent

    @classmethod
    def from_dict(cls, metadata: Mapping[str, Any]) -> BundleMeta:
        """The defaults for older bundles: no `stocks` (one ticker), no `context` (the window), no quantiles."""
        window, levels = metadata["window"], metadata.get("net", {}).get("quantiles")
        version = metadata.get("model_version")
        return cls(metadata["symbol"], stocks_of(metadata), window,
                   metadata.get("context") or window, metadata["horizon"], tuple(metadata["features"]),
                   None if levels is None else tuple(levels), None if version is None else str(version),
                   metadata.get("data", {}), metadata.get("metrics", {}), metadata.get("mlflow_run_id"),
                   metadata.get("created"), metadata, bool(metadata.get("any_ticker", False)))

    @classmethod
    def read(cls, folder: str | Path) -> BundleMeta:
        """The metadata of the bundle in `folder`."""
        return cls.from_dict(json.loads((Path(folder) / METADATA).read_text()))

    @property
    def pooled(self) -> bool:
        return len(self.stocks) > 1


def stocks_of(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The tickers a bundle was trained on: its `stocks`, or its `symbol` for bundles from before pooled models
    (what the served set needs of a bundle, where its other keys may be missing)."""
    return tuple(metadata.get("stocks") or [metadata["symbol"]])


class Described(TypedDict):
    """One served ticker in the description: the bundle answering it, how it was trained and how it scored."""

    model_version: str | None
    model: str  # the bundle's `symbol`: its registered model in MLflow is stockcast-<model>
    answered_by: str  # the bundle's folder in the archive
    pooled_over: list[str] | None  # a pooled model's tickers
    window: int
    context: int
    horizon: int
    features: list[str]
    quantiles: list[float] | None
    training_data: dict[str, Any]  # the bundle's `data` without its warnings and row counts
    trained: str | None
    test_metrics: dict[str, Any]  # {"model": {rmse, mae, mape}, "naive_last_value": {...}, "skill_mape"}
    range_metrics: dict[str, dict[str, float | None]]  # "validation", "test" -> CRPS, coverage, width, skills
    mlflow_run_id: str | None


class Description(TypedDict):
    """An archive as its handler describes it (`GET /models/<name>?customized=true`)."""

    served_version: str  # the archive's version: the served set's
    default_stock: str | None  # the ticker answering requests that name none
    stocks: dict[str, Described]  # every served ticker
    any_ticker: Described | None  # the global model answering tickers `stocks` does not list; None: only those
    calendar: dict[str, Any]  # {"exchanges": {code: {...}}, "stocks": {ticker: code}}, without the sessions
    request: dict[str, str]  # each request field, described


def write_bundle(folder: str | Path, net: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write the bundle into `folder`; `metadata["net"]` must hold ForecastNet's constructor kwargs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / WEIGHTS)
    shutil.copyfile(inspect.getfile(type(net)), folder / MODEL_FILE)  # the net's own source
    (folder / METADATA).write_text(json.dumps(metadata, indent=2, default=str))
    return folder


def load_bundle(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the net from the bundle's own `net.py` (not this package's), in eval mode."""
    folder = Path(folder)
    metadata = json.loads((folder / METADATA).read_text())
    spec = importlib.util.spec_from_file_location("stockcast_bundle_net", folder / MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.ForecastNet(**metadata["net"])
    net.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return net.eval(), metadata
