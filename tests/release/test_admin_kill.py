"""kill -9 at every step of a retrain: the journal it leaves makes `status` fail until the next admin
command repairs it, and the repair leaves the server, the model store, the registry and the aliases as
they were before the retrain (or, killed after its commit, as a finished retrain leaves them).

Each retrain runs in its own process (a real 1-epoch VALE3 training) against a real TorchServe and a
real MLflow store, and kills itself with SIGKILL right after recording the step (`STOCKCAST_KILL_AT`);
`after training` kills it as the training's MLflow run is about to be marked FINISHED.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from stockcast.errors import StockcastError
from stockcast.release import command, journal, registry, rollback
from stockcast.release.status import status
from stockcast.serving.management import Management
from stockcast.tracking import prepare_store
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # every test retrains against the module's TorchServe

# The child: one retrain of the test server, as scripts/admin.py runs it, with a lenient gate.
CHILD = """
import sys
from pathlib import Path
from mlflow import MlflowClient
from stockcast.release.policy import Policy
from stockcast.release.retrain import retrain, train_config
from stockcast.serving.server import Server

config, run_dir, model_store, log_config, store, kill_after_training = sys.argv[1:]
if kill_after_training == "yes":  # killed after the training: its run is never marked FINISHED
    import os, signal
    finish = MlflowClient.set_terminated
    def killed(self, run_id, status=None, *args, **kwargs):
        if status == "FINISHED":
            os.kill(os.getpid(), signal.SIGKILL)
        return finish(self, run_id, status, *args, **kwargs)
    MlflowClient.set_terminated = killed
server = Server(Path(config), Path(run_dir), Path(model_store), Path(log_config))
cfg = train_config([f"paths.data_dir={store}/data", f"paths.mlruns_dir={store}/mlruns", "end=2025-11-07",
                    "trainer.max_epochs=1", "model.net.hidden=8", "model.net.layers=1",
                    "+trainer.enable_progress_bar=false", "~callbacks.progress_bar"])
retrain([cfg], server, Policy(min_skill=-1.0, min_coverage=0.0, max_coverage=1.0, min_skill_crps=-1.0), print)
"""
STEPS = ["training", "after training", "archived", "mlflow_version", "server_version", "default", "champion",
         "committed"]


def _state(server, tracking_uri: str) -> tuple:
    """Everything a killed and repaired retrain must leave as it was."""
    served = Management(server).served()
    client = MlflowClient(tracking_uri)
    champions = {version.name: version.version for version in registry.champions(client)}
    versions = sorted((v.name, v.version) for model in client.search_registered_models()
                      for v in client.search_model_versions(f"name = '{model.name}'"))
    startup = (server.model_store / "lstm.mar").read_bytes()
    return (served.default.version, sorted(v.version for v in served.versions),
            sorted(p.name for p in server.model_store.iterdir()), champions, versions, hash(startup))


@pytest.mark.parametrize("step", STEPS)
def test_a_retrain_killed_at_any_step_is_reported_and_repaired(server, tmp_path_factory, step, monkeypatch):
    store = tmp_path_factory.getbasetemp() / "kill-store"  # one MLflow store for all kill points
    tracking_uri = prepare_store(f"sqlite:///{store}/mlruns/mlflow.db", "stockcast", str(store / "mlruns/artifacts"))
    before = _state(server, tracking_uri)
    monkeypatch.setenv(journal.KILL_AT, step)
    child = subprocess.run([sys.executable, "-c", CHILD, str(server.config), str(server.run_dir),
                            str(server.model_store), str(ROOT / "log4j2.xml"), str(store),
                            "yes" if step == "after training" else "no"],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    monkeypatch.delenv(journal.KILL_AT)
    left = journal.left(server)
    assert left is not None and left["steps"][-1]["step"] == ("training" if step == "after training" else step)
    text, healthy = status(server, tracking_uri)
    assert not healthy and "INTERRUPTED: `retrain VALE3`" in text, text

    said: list[str] = []
    assert command.repair(server, said.append)
    assert journal.left(server) is None and status(server, tracking_uri)[1]
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("stockcast").experiment_id])
    assert all(run.info.status != "RUNNING" for run in runs)  # a killed training's run is marked FAILED
    if step == "committed":  # the new default stands, finished as a retrain finishes
        served_now = Management(server).served()
        new = served_now.default.version
        assert new != "1" and (server.model_store / "lstm.mar").read_bytes() == \
            (server.model_store / f"lstm-v{new}.mar").read_bytes()
        assert json.loads((server.run_dir / "deployed.json").read_text())["served"][-1] == int(new)
        assert rollback.rollback(server, tracking_uri, say=said.append) == "1"  # back to the start
    else:
        assert _state(server, tracking_uri) == before, said


def test_rollback_never_goes_to_a_version_that_was_not_deployed(server, tmp_path):
    """After the kill tests: version 2 is registered and on disk (the committed retrain). Had it never become
    the default (a retrain killed before its switch, an archive copied in by hand), no rollback goes there."""
    history = server.run_dir / "deployed.json"
    deployed = history.read_text()
    history.write_text('{"deployed": [1], "served": [1]}')
    try:
        with pytest.raises(StockcastError, match="version 2 was never deployed"):
            rollback.rollback(server, f"sqlite:///{tmp_path}/mlflow.db", to=2)
        with pytest.raises(StockcastError, match="no earlier version to roll back to"):
            rollback.rollback(server, f"sqlite:///{tmp_path}/mlflow.db", to=None)
    finally:
        history.write_text(deployed)
