"""The serving bundle is self-contained and computes exactly what the trained module computes."""

import json

import pytest
import torch

from stockcast.bundle import METADATA, MODEL_FILE, WEIGHTS, load_bundle

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
                               "volatility": "close", "decay": 0.94, "spans": []}
    assert metadata["metrics"]["test_mape"] == result.metrics["test_mape"]
    assert "import stockcast" not in (bundle / MODEL_FILE).read_text()


def test_bundle_forecast_is_raw_prices_in_raw_prices_out(trained_run):
    _, bundle = trained_run
    net, metadata = load_bundle(bundle)
    window = torch.linspace(60.0, 62.0, metadata["window"]).reshape(1, -1, 1)  # [1, W, 1]
    forecast = net(window)
    assert forecast.shape == (1, metadata["horizon"], len(metadata["net"]["quantiles"]))
    # A forecaster of daily closes stays near the last close over ten days.
    assert torch.all((forecast > 50) & (forecast < 75))
