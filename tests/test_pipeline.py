"""pipeline.run in process: deterministic, and the served computation is the tested one."""

import tempfile

import mlflow
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from stockcast.errors import StockcastError
from stockcast.eval.evaluation import evaluate
from stockcast.metrics import Quantiles, compare_with_naive, distribution_metrics
from stockcast.pipeline import BUNDLE_PATH, run
from stockcast.runtime.bundle import load_bundle
from tests.conftest import FAST, compose_config, compose_train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]  # every test trains on real prices


def test_same_config_and_seed_give_same_metrics(tmp_path):
    first = run(compose_train(tmp_path / "a", "end=2024-12-31"))
    second = run(compose_train(tmp_path / "b", "end=2024-12-31"))
    assert first.run_id != second.run_id
    assert first.metrics == second.metrics


def test_the_default_net_reads_the_days_bars_and_its_bundle_reproduces_its_metrics(tmp_path):
    """The default configuration: Open, High, Low beside the close, a Garman-Klass volatility; scored against the
    range baselines too, and the bundle alone gives the logged test CRPS."""
    cfg = compose_config("train", tmp_path, *FAST, "end=2025-11-07")
    result = run(cfg)
    assert result.meta.features == ("Close", "Open", "High", "Low")
    assert result.meta.net["volatility"] == "garman_klass"
    for name in ("range_ewma_crps", "range_ewma_skill_crps", "range_ewma_coverage_80", "har_crps", "har_skill_crps",
                 "har_coverage_80", "val_range_ewma_skill_crps", "val_har_skill_crps"):
        assert np.isfinite(result.metrics[name]), name
    with tempfile.TemporaryDirectory() as folder:
        bundle = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=BUNDLE_PATH, dst_path=folder,
                                                     tracking_uri=result.tracking_uri)
        net = load_bundle(bundle).net
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    with torch.no_grad():
        quantiles = net(datamodule.test.inputs).double().numpy()
    split = datamodule.test
    scores = distribution_metrics(Quantiles(quantiles, np.asarray(cfg.model.quantiles)), split.targets.double().numpy(),
                                  split.inputs[:, -1, 0].double().numpy(), "test")
    assert scores["test_crps"] == pytest.approx(result.metrics["test_crps"], rel=1e-6)


def test_level_target_trains_too(tmp_path):
    result = run(compose_train(tmp_path, "end=2024-12-31", "model.net.target=level"))
    assert result.meta.net["target"] == "level"
    assert result.metrics["test_mape"] > 0


def test_bundle_alone_reproduces_the_logged_test_metrics(trained_run, tmp_path):
    """The served computation is the tested one: bundle net on the test windows -> same metrics."""
    result, bundle = trained_run
    loaded = load_bundle(bundle)
    net, meta = loaded.net, loaded.meta
    datamodule = instantiate(compose_train(tmp_path, "end=2025-11-07").data)
    datamodule.setup()
    split = datamodule.test
    with torch.no_grad():
        quantiles = net(split.inputs).double().numpy()  # [N, H, Q]
    actual, last_close = split.targets.double().numpy(), split.inputs[:, -1, 0].double().numpy()
    levels = meta.net["quantiles"]
    metrics = compare_with_naive(quantiles[..., levels.index(0.5)], actual, last_close)
    metrics |= distribution_metrics(Quantiles(quantiles, np.asarray(levels)), actual, last_close, "test")
    for name in ("test_mape", "skill_mape", "test_crps", "test_coverage_80", "test_width_80"):
        assert metrics[name] == pytest.approx(meta.metrics[name], rel=1e-5), name


def test_pooled_model_over_tickers_is_evaluated_on_each(tmp_path):
    result = run(compose_train(tmp_path, "end=2025-11-07", "stock=[VALE3,AAPL]"))
    assert result.symbol == "VALE3.SA+AAPL" and result.meta.stocks == ("VALE3.SA", "AAPL")
    cfg = compose_config("evaluate", tmp_path, f"logger.tracking_uri={result.tracking_uri}",
                         "stock=[vale3,aapl]", "baselines.ets.refit_every=50")
    evaluations = evaluate(cfg)
    assert [e.symbol for e in evaluations] == ["VALE3.SA", "AAPL"]
    assert all(e.evaluated_run_id == result.run_id for e in evaluations)
    assert (evaluations[1].output_dir / "evaluation.md").exists()


def test_pooled_model_refuses_level_target(tmp_path):
    with pytest.raises(StockcastError, match="pooled model .* needs model.net.target=volatility or relative"):
        run(compose_train(tmp_path, "stock=[VALE3,AAPL]", "model.net.target=level"))


def test_point_form_trains_and_scores_as_a_one_value_distribution(tmp_path):
    result = run(compose_train(tmp_path, "end=2024-12-31", "model.loss=mse"))
    metrics = result.metrics
    assert result.meta.net["quantiles"] is None and result.meta.net["target"] == "volatility"
    # The point is its own 80 % interval: zero width, it covers (almost) nothing; CRPS is its absolute error.
    assert metrics["test_width_80"] == 0 and metrics["test_coverage_80"] < 0.05
    assert metrics["test_crps"] > metrics["naive_crps"] / 2 and np.isfinite(metrics["skill_crps"])


def test_a_run_killed_after_fit_is_not_finished(tmp_path, monkeypatch):
    """Lightning ends the fit before the bundle and the tables are logged: the run must not read FINISHED then (a
    reader of finished runs would find it without them), only once they are."""
    import stockcast.pipeline as pipeline

    seen = {}
    scoring = pipeline._after_fit

    def killed_here(model, trainer, *args):
        run_id = trainer.logger.run_id
        seen["status"] = mlflow.MlflowClient(trainer.logger._tracking_uri).get_run(run_id).info.status
        return scoring(model, trainer, *args)

    monkeypatch.setattr(pipeline, "_after_fit", killed_here)
    result = run(compose_train(tmp_path, "end=2024-12-31", "trainer.max_epochs=1"))
    assert seen["status"] == "RUNNING"
    finished = mlflow.MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert finished.info.status == "FINISHED" and finished.data.tags["bundle"] == BUNDLE_PATH
