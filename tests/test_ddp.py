"""DDP (configs/trainer/ddp.yaml) outside SLURM: Lightning starts the second process itself; one MLflow run from rank
0, and a rank that fails after training fails the job and the run (docs/training.md). On SLURM: tests/test_cluster.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
# A global net's shape: one ticker unseen (scored, never trained on), the per-ticker table among the artifacts.
POOLED = ["stock=[VALE3,PETR4,AAPL]", "data.unseen=[AAPL]", "serve_any_ticker=true", "end=2025-11-07",
          "trainer=ddp", "trainer.devices=2", "trainer.max_epochs=1",
          "+trainer.enable_progress_bar=false", "~callbacks.progress_bar"]
LOSE_CHECKPOINT = "+callbacks.fault._target_=tests.ddp_faults.LoseCheckpointOnRank"


@pytest.mark.parametrize("trainer", sorted(path.stem for path in (ROOT / "configs" / "trainer").glob("*.yaml")))
def test_strategy_is_a_key_of_every_trainer_config(tmp_path, trainer):
    cfg = compose_config("train", tmp_path, f"trainer={trainer}", "trainer.strategy=ddp")  # no + needed
    assert cfg.trainer.strategy == "ddp"


def test_ddp_is_the_cpu_trainer_in_two_processes(tmp_path):
    cpu = OmegaConf.to_container(compose_config("train", tmp_path).trainer, resolve=True)
    ddp = OmegaConf.to_container(compose_config("train", tmp_path, "trainer=ddp").trainer, resolve=True)
    assert ddp == cpu | {"strategy": "ddp", "devices": 2}


def train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "train.py"), f"paths.data_dir={tmp_path / 'data'}",
               f"paths.mlruns_dir={tmp_path / 'mlruns'}", f"hydra.run.dir={tmp_path / 'outputs'}", *overrides]
    return subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=ROOT)


def runs(tmp_path: Path) -> list[tuple[str, set[str]]]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("stockcast")
    return [(run.info.status, {Path(a.path).name for a in client.list_artifacts(run.info.run_id)})
            for run in client.search_runs([experiment.experiment_id])]


@pytest.mark.slow
def test_two_processes_give_one_finished_run_with_its_bundle(tmp_path):
    done = train(tmp_path, *POOLED)
    assert done.returncode == 0, done.stderr[-3000:]
    ((status, artifacts),) = runs(tmp_path)
    assert status == "FINISHED" and {"bundle", "per_ticker.csv", "crps_by_origin.csv"} <= artifacts
    assert len([line for line in done.stdout.splitlines() if line.startswith("run ")]) == 1  # rank 0 alone prints


@pytest.mark.slow
def test_a_rank_failing_after_training_fails_the_job_and_the_run(tmp_path):
    done = train(tmp_path, *POOLED, LOSE_CHECKPOINT)
    assert done.returncode != 0
    assert "FileNotFoundError" in done.stderr  # rank 1's own error
    assert "RankFailed: DDP rank(s) [1] of 2 failed after training" in done.stderr  # rank 0's
    ((status, artifacts),) = runs(tmp_path)
    assert status == "FAILED" and "bundle" not in artifacts
