"""The serving bundle is self-contained and computes exactly what the trained module computes."""

import ast
import json
import sys

import pytest
import torch

from stockcast.runtime.bundle import METADATA, MODEL_FILE, WEIGHTS, load_bundle

pytestmark = pytest.mark.slow  # every test reads the session's trained run


def test_bundle_has_weights_model_file_and_metadata(trained_run):
    result, bundle = trained_run
    assert {WEIGHTS, MODEL_FILE, METADATA} <= {p.name for p in bundle.iterdir()}
    metadata = json.loads((bundle / METADATA).read_text())
    assert metadata["symbol"] == "VALE3.SA" and metadata["mlflow_run_id"] == result.run_id
    assert (metadata["window"], metadata["horizon"], metadata["features"]) == (20, 10, ["Close"])
    # The config node model.net, as written once: what load_bundle rebuilds the net from.
    levels = [round(0.05 * k, 2) for k in range(1, 20)]
    assert metadata["net"] == {"features": ["Close"], "horizon": 10, "window": 20, "context": 100, "hidden": 16,
                               "layers": 1, "dropout": 0.1, "target": "volatility", "quantiles": levels,
                               "volatility": "close", "decay": 0.94, "spans": [], "start": "ewma"}
    assert metadata["metrics"]["test_mape"] == result.metrics["test_mape"]
    assert imported_roots(bundle / MODEL_FILE) <= {"torch", *sys.stdlib_module_names}  # the bundle loads alone


def imported_roots(path) -> set[str]:
    """The top-level packages a Python file imports."""
    tree = ast.parse(path.read_text())
    nodes = list(ast.walk(tree))
    return {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for alias in node.names} \
        | {node.module.split(".")[0] for node in nodes if isinstance(node, ast.ImportFrom) and node.module}


def test_bundle_forecast_is_raw_prices_in_raw_prices_out(trained_run):
    _, bundle = trained_run
    loaded = load_bundle(bundle)
    meta = loaded.meta
    window = torch.linspace(60.0, 62.0, meta.window).reshape(1, -1, 1)  # [1, W, 1]
    forecast = loaded.net(window)
    assert forecast.shape == (1, meta.horizon, len(meta.levels or ()))
    # A forecaster of daily closes stays near the last close over ten days.
    assert torch.all((forecast > 50) & (forecast < 75))
