"""The serving bundle (weights + net.py + metadata.json) and the archive's parts, as every reader reads them.

The archive ships this module with the rest of the runtime, so TorchServe's handler, the archiver, the
evaluation and the operations load a bundle, read its metadata and name the archive's parts the same way.
`BundleMeta` holds the one set of defaults for bundles written before a key existed.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import inspect
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS = "model.pt"
MODEL_FILE = "net.py"
METADATA = "metadata.json"
# An archive's root holds the portfolio (which bundle answers each ticker, the exchanges' trading sessions)
# and one folder per bundle under `bundles/`.
PORTFOLIO = "portfolio.json"
BUNDLES = "bundles"


@dataclass(frozen=True)
class BundleMeta:
    """A bundle's metadata.json, typed."""

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
    raw: Mapping[str, Any] = field(compare=False, repr=False)  # for writing it back (`deployed`) only
    any_ticker: bool = False  # a global model: it answers tickers beyond `stocks` too, from the bars sent
    panel_slopes: tuple[tuple[float, ...], ...] | None = None  # a pooled run's panel HAR slopes [spans][H]
    net: Mapping[str, Any] = field(default_factory=dict)  # ForecastNet's constructor arguments
    risk_tail: Mapping[str, Any] | None = None  # the marginals' tails fitted to its errors (copula.Tails); None: none

    @classmethod
    def from_dict(cls, metadata: Mapping[str, Any]) -> BundleMeta:
        """The defaults for older bundles: no `stocks` (one ticker), no `context` (the window), no quantiles."""
        window, levels = metadata["window"], metadata.get("net", {}).get("quantiles")
        version, slopes = metadata.get("model_version"), metadata.get("panel_har", {}).get("slopes")
        stocks = tuple(metadata.get("stocks") or [metadata["symbol"]])
        return cls(metadata["symbol"], stocks, window,
                   metadata.get("context") or window, metadata["horizon"], tuple(metadata["features"]),
                   None if levels is None else tuple(levels), None if version is None else str(version),
                   metadata.get("data", {}), metadata.get("metrics", {}), metadata.get("mlflow_run_id"),
                   metadata.get("created"), metadata, bool(metadata.get("any_ticker", False)),
                   None if slopes is None else tuple(map(tuple, slopes)), metadata.get("net", {}),
                   metadata.get("risk_tail"))

    @classmethod
    def read(cls, folder: str | Path) -> BundleMeta:
        """The metadata of the bundle in `folder`."""
        return cls.from_dict(json.loads((Path(folder) / METADATA).read_text()))

    @property
    def pooled(self) -> bool:
        return len(self.stocks) > 1

    @property
    def first_date(self) -> dt.date:
        """The first day of its training data: the archive's calendar starts there."""
        return dt.date.fromisoformat(self.data["first_date"])


def deployed(folder: Path, version: int) -> BundleMeta:
    """Stamp the bundle in `folder` as deployed with served `version` (its `model_version`, kept by every
    later archive that copies it) and when, in its metadata.json."""
    metadata = {**BundleMeta.read(folder).raw, "model_version": str(version),
                "archived": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    (folder / METADATA).write_text(json.dumps(metadata, indent=1))
    return BundleMeta.from_dict(metadata)


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: its folder's name in the archive, its net (eval mode) and its metadata."""

    name: str
    net: Any  # the bundle's own ForecastNet: a class of its net.py, known once loaded (an nn.Module)
    meta: BundleMeta

    @property
    def is_price(self) -> tuple[bool, ...]:
        """Per feature: a price (must be positive), else another quantity such as volume (non-negative)."""
        return tuple(bool(flag) for flag in self.net.is_price.tolist())


def write_bundle(folder: str | Path, net: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write the bundle into `folder`; `metadata["net"]` must hold ForecastNet's constructor kwargs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / WEIGHTS)
    shutil.copyfile(inspect.getfile(type(net)), folder / MODEL_FILE)  # the net's own source
    (folder / METADATA).write_text(json.dumps(metadata, indent=2, default=str))
    return folder


def load_bundle(folder: str | Path) -> Bundle:
    """The bundle in `folder`, its net rebuilt from the bundle's own `net.py` (not this package's)."""
    folder = Path(folder)
    meta = BundleMeta.read(folder)
    spec = importlib.util.spec_from_file_location("stockcast_bundle_net", folder / MODEL_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {folder / MODEL_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.ForecastNet(**meta.net)
    net.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return Bundle(folder.name, net.eval(), meta)
