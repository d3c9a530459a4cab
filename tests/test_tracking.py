"""Which runs count as candidates for serving and evaluation."""

import pytest
from mlflow import MlflowClient

from stockcast.errors import StockcastError
from stockcast.tracking import find_run, find_runs, prepare_store


def test_newest_finished_ungated_run_with_a_bundle_is_found(tmp_path):
    uri = prepare_store(f"sqlite:///{tmp_path / 'mlflow.db'}", "stockcast")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("stockcast").experiment_id

    def make(tags: dict, status: str = "FINISHED") -> str:
        run = client.create_run(experiment, tags={"symbol": "VALE3.SA", **tags})
        client.set_terminated(run.info.run_id, status)
        return run.info.run_id

    good = make({"bundle": "bundle", "gate": "passed"})
    make({"bundle": "bundle", "gate": "failed: skill_mape -0.2 < -0.05"})  # refused by the admin gate
    make({})  # finished without a bundle
    make({"bundle": "bundle"}, status="FAILED")
    assert find_run(client, "stockcast", "VALE3.SA").info.run_id == good
    with pytest.raises(StockcastError, match="found 1 finished run"):
        find_runs(client, "stockcast", "VALE3.SA", count=2)
    with pytest.raises(StockcastError, match="no finished run|found 0"):
        find_run(client, "stockcast", "PETR4.SA")
