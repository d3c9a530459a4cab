"""`hydra/launcher=slurm` and DDP on a real one-node SLURM cluster (tests/cluster.py) with accounting, into a real
`mlflow server` (docs/training.md). `pytest -m cluster` runs these alone; skipped where Debian's packages are missing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.cluster import Cluster, missing_programs, mlflow_server, private_cluster
from tests.conftest import SLURM
from tests.test_ddp import LOSE_CHECKPOINT

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.usefixtures("shared_data")]

ROOT = Path(__file__).resolve().parents[1]
FAST = ["end=2025-11-07", "trainer.max_epochs=1", "+trainer.enable_progress_bar=false", "~callbacks.progress_bar",
        "model.net.hidden=16", "model.net.layers=1"]
# A small slice of a global net: one ticker unseen, scored and never trained on.
POOLED = ["stock=[VALE3,PETR4,AAPL]", "data.unseen=[AAPL]", "serve_any_ticker=true", "end=2025-11-07",
          "trainer.max_epochs=2", "+trainer.enable_progress_bar=false",
          "~callbacks.progress_bar"]
DDP_TASKS = ["trainer=ddp", "trainer.devices=2", "hydra.launcher.tasks_per_node=2", "data.batch_size=32"]


@pytest.fixture(scope="module")
def cluster():
    if missing := missing_programs():
        pytest.skip(f"{SLURM} (missing {', '.join(missing)})")
    with private_cluster() as running:
        yield running


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture()
def store(tmp_path, mlflow_uri):
    """A fresh experiment of the module's server per test: (uri, experiment name)."""
    return mlflow_uri, f"stockcast-{tmp_path.name}"


def train(cluster: Cluster, tmp_path: Path, store: tuple[str, str], *overrides: str, multirun: bool = True,
          wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    uri, experiment = store
    command = [sys.executable, str(ROOT / "train.py"), *(["-m", "hydra/launcher=slurm"] if multirun else []),
               f"paths.data_dir={tmp_path / 'data'}", f"logger.experiment_name={experiment}",
               f"hydra.sweep.dir={tmp_path / 'multirun'}", f"hydra.run.dir={tmp_path / 'outputs'}", *overrides]
    env = cluster.env | {"MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT)}  # tests.ddp_faults in the jobs
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    return subprocess.run(command, capture_output=True, text=True, timeout=400, env=env, cwd=ROOT)


def runs(store: tuple[str, str]) -> list:
    client = MlflowClient(store[0])
    experiment = client.get_experiment_by_name(store[1])
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def job_logs(tmp_path: Path) -> str:
    """Every task's stdout and stderr (submitit's <job>_<task>_log.out/.err)."""
    return "\n".join(path.read_text(errors="replace") for path in sorted((tmp_path / "multirun").rglob("*_log.*")))


def report(cluster: Cluster, store: tuple[str, str]) -> None:
    """What the test left, for `pytest -s`: the jobs as accounting saw them and the MLflow runs."""
    print("\njobs:", cluster.jobs())
    print("runs:", [(r.data.tags.get("stocks"), r.info.status, r.data.tags.get("bundle"),
                     r.data.metrics.get("test_crps")) for r in runs(store)])


def test_a_sweep_over_three_tickers_lands_runs_and_bundles_on_the_server(cluster, tmp_path, store):
    before = {job[0] for job in cluster.jobs(timeout=0)}
    started = time.monotonic()
    done = train(cluster, tmp_path, store, "stock=VALE3,NOPE3,PETR4", *FAST)
    wall = time.monotonic() - started
    report(cluster, store)
    print(f"sweep of 3 jobs: {wall:.0f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = [job for job in cluster.jobs() if job[0] not in before]
    assert len(jobs) == 3 and {state for _, _, state, _ in jobs} == {"COMPLETED"}  # array tasks 0..2
    assert "error: job 1 (NOPE3): cannot get prices for NOPE3.SA" in job_logs(tmp_path)  # failed alone
    found = {r.data.tags.get("symbol"): r for r in runs(store)}  # the array's tasks run at once: any order
    assert {symbol: r.info.status for symbol, r in found.items()} == {
        "VALE3.SA": "FINISHED", None: "FAILED", "PETR4.SA": "FINISHED"}
    client = MlflowClient(store[0])
    for run in (found["VALE3.SA"], found["PETR4.SA"]):  # bundles in the server's artifact store, not a job's disk
        assert {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "bundle")} == {
            "model.pt", "net.py", "metadata.json"}
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")


def test_a_cancelled_job_ends_the_sweep_with_an_error_not_a_hang(cluster, tmp_path, store):
    sweep = train(cluster, tmp_path, store, "stock=VALE3", *FAST, "trainer.max_epochs=500",
                  "callbacks.early_stopping.patience=1000", wait=False)
    try:
        deadline = time.monotonic() + 120
        while not (running := cluster.run("squeue", "-h", "-t", "RUNNING", "-o", "%i").split()):
            assert time.monotonic() < deadline and sweep.poll() is None, "the job never ran"
            time.sleep(1)
        time.sleep(5)  # into the training
        cancelled = time.monotonic()
        cluster.run("scancel", running[0])
        _, stderr = sweep.communicate(timeout=240)
        print(f"\nthe sweep ended {time.monotonic() - cancelled:.0f} s after scancel")
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    report(cluster, store)
    assert sweep.returncode != 0
    assert "UncompletedJobError" in stderr and "CANCELLED" in stderr
    # SLURM's SIGTERM during the fit: Lightning's handler stops it and the run is FAILED; before the fit submitit
    # ignores it and the SIGKILL after leaves the run RUNNING. Either way never FINISHED, and no bundle.
    (run,) = runs(store)
    assert run.info.status in ("FAILED", "RUNNING") and "bundle" not in run.data.tags, (run.info.status, run.data.tags)


def test_pooled_ddp_in_two_tasks_matches_one_process(cluster, tmp_path, store):
    single = train(cluster, tmp_path / "single", store, *POOLED, multirun=False)
    assert single.returncode == 0, single.stderr[-3000:]
    started = time.monotonic()
    done = train(cluster, tmp_path / "ddp", store, *POOLED, *DDP_TASKS)
    print(f"\nDDP job (2 tasks): {time.monotonic() - started:.0f} s")
    report(cluster, store)
    assert done.returncode == 0, done.stderr[-3000:]
    one, pooled = runs(store)
    assert pooled.info.status == "FINISHED" and pooled.data.tags["bundle"] == "bundle"
    assert pooled.data.params["trainer/devices"] == "2" and pooled.data.params["data/batch_size"] == "32"
    crps = one.data.metrics["test_crps"], pooled.data.metrics["test_crps"]
    print(f"test_crps: 1 process {crps[0]:.4f}, 2 DDP tasks {crps[1]:.4f} ({crps[1] / crps[0] - 1:+.2%})")
    assert crps[1] == pytest.approx(crps[0], rel=0.02)
    assert cluster.jobs()[-1][2] == "COMPLETED"


def test_a_failing_rank_fails_the_job_and_the_run(cluster, tmp_path, store):
    done = train(cluster, tmp_path, store, *POOLED, *DDP_TASKS, LOSE_CHECKPOINT)
    report(cluster, store)
    assert done.returncode != 0  # Hydra's launcher reads task 0's result: rank 0 fails too
    assert "RankFailed: DDP rank(s) [1] of 2 failed after training" in done.stderr
    assert "FileNotFoundError" in job_logs(tmp_path)  # rank 1's own error, in its task's log
    ((run,),) = [runs(store)]
    assert run.info.status == "FAILED" and "bundle" not in run.data.tags
    # SLURM says COMPLETED: Hydra's job returns the error to the launcher, which raises it (the exit above)

