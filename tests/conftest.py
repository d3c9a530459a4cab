"""Shared fixtures: real Hydra configs via compose(), real price CSVs, a throwaway MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from stockcast import ROOT  # importing stockcast sets STOCKCAST_ROOT, which configs/paths reads
from stockcast.config import register_resolvers


def shared_data_dir() -> Path:
    """The real price CSVs: the first folder in $STOCKCAST_DATA_DIRS, else ../shared/data."""
    configured = [d for d in os.environ.get("STOCKCAST_DATA_DIRS", "").split(os.pathsep) if d]
    return Path(configured[0]) if configured else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Asked for by every test that reads prices: it fails clearly where the real CSVs are missing."""
    folder = shared_data_dir()
    if not (folder / "VALE3.SA.csv").exists():
        pytest.fail(f"real price CSVs not found in {folder}: set STOCKCAST_DATA_DIRS")
    return folder


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's MLflow server, TorchServe or the repo's own caches; prices come from the real CSVs
    (tests that read them ask for `shared_data`, so pure-math tests run without them)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("STOCKCAST_TORCHSERVE_HOST", raising=False)
    monkeypatch.setenv("STOCKCAST_DATA_DIRS", str(shared_data_dir()))


def compose_config(config_name: str, tmp_path: Path, *overrides: str, keep_hydra: bool = False) -> DictConfig:
    """A real config from `configs/`, its data cache, MLflow store and outputs under `tmp_path`
    (with `keep_hydra`, also the `hydra` node: launcher, sweeper)."""
    GlobalHydra.instance().clear()
    register_resolvers()
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name, return_hydra_config=True, overrides=[
            f"paths.data_dir={tmp_path / 'data'}", f"paths.mlruns_dir={tmp_path / 'mlruns'}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "outputs")
        if not keep_hydra:
            del cfg.hydra
    return cfg


def compose_train(tmp_path: Path, *overrides: str) -> DictConfig:
    """`configs/train.yaml`, made fast: 2 epochs of a small LSTM, no progress bar."""
    return compose_config("train", tmp_path, "trainer.max_epochs=2", "+trainer.enable_progress_bar=false",
                          "~callbacks.progress_bar", "model.net.hidden=16", "model.net.layers=1", *overrides)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """One real 2-epoch VALE3 run in a throwaway store: (RunResult, local bundle folder)."""
    import mlflow

    from stockcast.pipeline import BUNDLE_PATH, run

    tmp_path = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as env:  # undone on leaving: the session fixture leaves os.environ as it was
        env.setenv("STOCKCAST_DATA_DIRS", str(shared_data))
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg = compose_train(tmp_path, "end=2025-11-07")
        env.setenv("MLFLOW_TRACKING_URI", cfg.logger.tracking_uri)  # MLflow exports it anyway: this undoes that
        result = run(cfg)
        bundle = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=BUNDLE_PATH,
                                                     dst_path=str(tmp_path / "download"),
                                                     tracking_uri=result.tracking_uri)
    return result, Path(bundle)
