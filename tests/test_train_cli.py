"""`train.py` end to end on real CSVs: MLflow runs, sweeps, and clear failures for bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
FAST = ["trainer.max_epochs=2", "+trainer.enable_progress_bar=false", "~callbacks.progress_bar",
        "model.net.hidden=16", "model.net.layers=1", "end=2025-11-07"]

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]  # every test runs train.py on real prices


def train(tmp_path: Path, *overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "train.py"), *(["-m"] if multirun else []),
               f"paths.data_dir={tmp_path / 'data'}", f"paths.mlruns_dir={tmp_path / 'mlruns'}",
               f"hydra.run.dir={tmp_path / 'outputs'}", f"hydra.sweep.dir={tmp_path / 'multirun'}",
               *FAST, *overrides]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def runs(tmp_path: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("stockcast")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def artifacts(tmp_path: Path, run_id: str, path: str = "") -> set[str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    return {Path(a.path).name for a in client.list_artifacts(run_id, path)}


def test_train_logs_params_metrics_plot_checkpoint_and_bundle(tmp_path):
    done = train(tmp_path, "stock=petr4")
    assert done.returncode == 0, done.stderr
    (run,) = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["symbol"] == "PETR4.SA"
    assert run.data.params["model/net/hidden"] == "16" and run.data.params["data/window"] == "20"
    expected = {"test_rmse", "test_mae", "test_mape", "naive_rmse", "naive_mae", "naive_mape", "skill_mape",
                "test_mape_h1", "test_mape_h10", "train_loss", "val_loss"}
    assert expected <= run.data.metrics.keys()
    metrics = run.data.metrics
    assert metrics["skill_mape"] == pytest.approx(1 - metrics["test_mape"] / metrics["naive_mape"])
    assert f"skill_mape={metrics['skill_mape']:.4f}" in done.stdout
    logged = artifacts(tmp_path, run.info.run_id)
    assert {"config.yaml", "forecast_test.png", "bundle"} <= logged
    assert any(name.startswith("best-epoch=") for name in logged)  # Lightning logs the best checkpoint
    assert {"model.pt", "net.py", "metadata.json"} == artifacts(tmp_path, run.info.run_id, "bundle")
    assert (tmp_path / "data" / "PETR4.SA.csv").exists() is False  # offline: the shared copy was read in place


def test_multirun_gives_one_run_per_job(tmp_path):
    done = train(tmp_path, "model.net.hidden=8,16", multirun=True)
    assert done.returncode == 0, done.stderr
    assert sorted(r.data.params["model/net/hidden"] for r in runs(tmp_path)) == ["16", "8"]


def test_a_sweep_over_tickers_goes_on_past_a_refused_one(tmp_path):
    done = train(tmp_path, "stock=NOPE3,PETR4", multirun=True)
    assert done.returncode == 0, done.stderr
    assert "error: job 0 (NOPE3): cannot get prices for NOPE3.SA" in done.stderr
    assert [(r.data.tags.get("symbol"), r.info.status) for r in runs(tmp_path)] == [(None, "FAILED"),
                                                                                   ("PETR4.SA", "FINISHED")]


def test_caret_ticker_needs_quoting_and_then_works(tmp_path, shared_data, monkeypatch):
    """Hydra's lexer rejects a bare ^; the quoting docs/training.md gives reaches the Downloader intact."""
    folder = tmp_path / "indices"
    folder.mkdir()
    shutil.copy(shared_data / "MSFT.csv", folder / "^BVSP.csv")
    monkeypatch.setenv("STOCKCAST_DATA_DIRS", str(folder))
    assert train(tmp_path, "stock=^BVSP").returncode != 0
    done = train(tmp_path, "stock='^BVSP'")
    assert done.returncode == 0, done.stderr
    assert runs(tmp_path)[-1].data.tags["symbol"] == "^BVSP"


@pytest.mark.parametrize("overrides, message", [
    (["stock=NOPE3"], "cannot get prices for NOPE3.SA 2018-01-01..2025-11-07"),
    (["start=01/02/2020"], "start='01/02/2020' is not an ISO date"),
    (["start=2025-01-01", "end=2024-01-01"], "start 2025-01-01 is after end 2024-01-01"),
    (["start=2025-10-01"], "VALE3.SA has 28 trading days in 2025-10-01..2025-11-07: too little history"),
    (["data.features=[Close,RSI]"], "unknown feature column(s) ['RSI']"),
    (["model.optimizer.lr=1e30", "trainer.gradient_clip_val=null"], "training diverged: "),
])
def test_bad_input_fails_clearly_and_marks_the_run_failed(tmp_path, overrides, message):
    done = train(tmp_path, *overrides)
    assert done.returncode == 2
    assert f"error: {message}" in done.stderr
    assert "Traceback" not in done.stderr
    (run,) = runs(tmp_path)
    assert run.info.status == "FAILED" and "bundle" not in artifacts(tmp_path, run.info.run_id)
