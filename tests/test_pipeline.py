"""pipeline.run in process: deterministic, and the served computation is the tested one."""

import pytest
import torch
from hydra.utils import instantiate

from stockcast.bundle import load_bundle
from stockcast.errors import StockcastError
from stockcast.eval.evaluation import evaluate
from stockcast.metrics import compare_with_naive
from stockcast.pipeline import run
from tests.conftest import compose_config, compose_train

pytestmark = pytest.mark.usefixtures("shared_data")  # every test trains on real prices


def test_same_config_and_seed_give_same_metrics(tmp_path):
    first = run(compose_train(tmp_path / "a", "end=2024-12-31"))
    second = run(compose_train(tmp_path / "b", "end=2024-12-31"))
    assert first.run_id != second.run_id
    assert first.metrics == second.metrics


def test_level_target_trains_too(tmp_path):
    result = run(compose_train(tmp_path, "end=2024-12-31", "model.net.target=level"))
    assert result.metadata["net"]["target"] == "level"
    assert result.metrics["test_mape"] > 0


def test_bundle_alone_reproduces_the_logged_test_metrics(trained_run, tmp_path):
    """The served computation is the tested one: bundle net on the test windows -> same metrics."""
    result, bundle = trained_run
    net, metadata = load_bundle(bundle)
    datamodule = instantiate(compose_train(tmp_path, "end=2025-11-07").data)
    datamodule.setup()
    split = datamodule.test
    with torch.no_grad():
        forecast = net(split.inputs).numpy()
    metrics = compare_with_naive(forecast, split.targets.numpy(), split.inputs[:, -1, 0].numpy())
    assert metrics["test_mape"] == pytest.approx(result.metrics["test_mape"], rel=1e-6)
    assert metrics["skill_mape"] == pytest.approx(metadata["metrics"]["skill_mape"], rel=1e-5)


def test_pooled_model_over_tickers_is_evaluated_on_each(tmp_path):
    result = run(compose_train(tmp_path, "end=2025-11-07", "stock=[VALE3,AAPL]"))
    assert result.symbol == "VALE3.SA+AAPL" and result.metadata["stocks"] == ["VALE3.SA", "AAPL"]
    cfg = compose_config("evaluate", tmp_path, f"logger.tracking_uri={result.tracking_uri}",
                         "stock=[vale3,aapl]", "baselines.ets.refit_every=50")
    evaluations = evaluate(cfg)
    assert [e.symbol for e in evaluations] == ["VALE3.SA", "AAPL"]
    assert all(e.evaluated_run_id == result.run_id for e in evaluations)
    assert (evaluations[1].output_dir / "evaluation.md").exists()


def test_pooled_model_refuses_level_target(tmp_path):
    with pytest.raises(StockcastError, match="pooled model .* needs model.net.target=relative"):
        run(compose_train(tmp_path, "stock=[VALE3,AAPL]", "model.net.target=level"))
