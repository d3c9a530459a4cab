"""Tiny bundles built in memory (untrained ForecastNets with their metadata) and the portfolio serving them:
the request rules tested without a trained run."""

from __future__ import annotations

from typing import Any

import torch

from stockcast.models.net import ForecastNet
from stockcast.runtime.bundle import Bundle, BundleMeta
from stockcast.runtime.routing import Portfolio

LEVELS = [round(0.05 * k, 2) for k in range(1, 20)]


def tiny_bundle(name: str, metadata: dict[str, Any], seed: int = 0, **net: Any) -> Bundle:
    """An untrained net of `net`'s arguments (default: a Close-only quantile model, window 20 -> 10 days) as a
    bundle named `name`; `metadata` adds to what the pipeline writes (the symbol at least)."""
    net = {"features": ["Close"], "window": 20, "horizon": 10, "hidden": 8, "layers": 1, "quantiles": LEVELS, **net}
    torch.manual_seed(seed)
    meta = BundleMeta.from_dict({"window": net["window"], "context": net.get("context"), "horizon": net["horizon"],
                                 "features": list(net["features"]), "net": net, "model_version": "1", **metadata})
    return Bundle(name, ForecastNet(**net).eval(), meta)


def portfolio_of(*bundles: Bundle, members: dict[str, str] | None = None, calendar: dict | None = None,
                 default: str | None = None) -> Portfolio:
    """The portfolio an archive of these bundles serves: each answers its own symbol unless `members` says."""
    members = members or {bundle.meta.symbol: bundle.name for bundle in bundles}
    return Portfolio.from_manifest({"members": members, "calendar": calendar or {}},
                                   {bundle.name: bundle for bundle in bundles}, default, "1")
