"""`scripts/admin.py retrain`: train a model and make it the served default of a running TorchServe.

train (the same `pipeline.run` as train.py) -> quality gate -> archive the next version -> register it,
wait for its workers, make it the default -> an MLflow model version of the ticker with the `champion`
alias -> unregister versions beyond the kept count. The server is checked before training, so a stopped
one fails in seconds, not after the training; a failure after that undoes every step already done, and
a killed retrain is undone by the next admin command (`ops.journal`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from pathlib import Path

from hydra.errors import HydraException
from mlflow import MlflowClient
from omegaconf import DictConfig, open_dict

from stockcast.config import load_config
from stockcast.errors import StockcastError
from stockcast.ops import deploy, journal, registry
from stockcast.ops.deploy import Say
from stockcast.ops.journal import JOURNAL_TAG, Journal
from stockcast.ops.lock import LOCK, exclusive
from stockcast.ops.policy import DEFAULT, Policy, gate
from stockcast.pipeline import RunResult, run
from stockcast.serving.archive import archive
from stockcast.serving.management import Management
from stockcast.serving.server import Server
from stockcast.serving.settings import HANDLER, MODEL_CONFIG, MODEL_NAME
from stockcast.serving.versions import new_version, versioned_name
from stockcast.tracking import prepare_store


@dataclass(frozen=True)
class Deployed:
    """What a retrain put in service."""

    version: int
    previous: str
    result: RunResult
    registered: str  # the MLflow registered model
    registered_version: str
    archive: Path
    seconds: float


def train_config(overrides: list[str]) -> DictConfig:
    """`configs/train.yaml` as train.py composes it, outputs (checkpoints) in outputs/admin/<time>/."""
    try:
        cfg = load_config("train", overrides)
    except HydraException as err:
        raise StockcastError(f"bad training override in {overrides}: {err}") from None
    with open_dict(cfg):  # `${hydra:runtime.output_dir}` only exists under @hydra.main
        now = dt.datetime.now()
        cfg.paths.output_dir = str(Path(cfg.paths.root_dir, "outputs", "admin", f"{now:%Y-%m-%d}", f"{now:%H-%M-%S}"))
    return cfg


def retrain(cfg: DictConfig, server: Server, policy: Policy = DEFAULT, say: Say = print) -> Deployed:
    """Train, gate, archive, deploy and register one model (module docstring); on any failure it raises
    with the server, the model store and the registry as they were (the failed MLflow run stays, FAILED
    or tagged `gate: failed ...`)."""
    started = time.monotonic()
    manager = Management(server)
    with exclusive(server.run_dir / LOCK, policy.wait, f"retrain {cfg.stock}"):
        journal.repair(server, say)
        served = deploy.current(manager)
        deploy.deployed(server.run_dir, served.default.version)
        say(f"TorchServe serves {MODEL_NAME} version {served.default.version}; training {cfg.stock} "
            f"{cfg.start}..{cfg.end or 'today'}")
        tracking_uri = prepare_store(cfg.logger.tracking_uri, cfg.logger.experiment_name,
                                     cfg.logger.artifact_location)
        with Journal(server, f"retrain {cfg.stock}", tracking_uri, say) as steps:
            deployed = _deploy(cfg, server, manager, steps, policy, say)
    return replace(deployed, seconds=time.monotonic() - started)


def _deploy(cfg: DictConfig, server: Server, manager: Management, steps: Journal, policy: Policy,
            say: Say) -> Deployed:
    """retrain's steps, each recorded in `steps` before it is carried out. The training's MLflow run is
    tagged with the journal's id, so a repair finds it if the command is killed while it runs."""
    steps.record("training", experiment=cfg.logger.experiment_name)
    with open_dict(cfg):
        cfg.logger.tags = {**(cfg.logger.get("tags") or {}), JOURNAL_TAG: steps.id}
    result = run(cfg)
    client = MlflowClient(result.tracking_uri)
    ranges = result.metadata["net"].get("quantiles") is not None
    reason = gate(result.metrics, policy, ranges)
    client.set_tag(result.run_id, "gate", f"failed: {reason}" if reason else "passed")
    served = deploy.current(manager)  # the server may have changed during the training
    if reason:
        raise StockcastError(f"run {result.run_id} ({result.symbol}) is not deployed: {reason}; version "
                             f"{served.default.version} stays the default")
    say(f"quality gate passed: skill_mape {result.metrics['skill_mape']:+.4f} >= {policy.min_skill:+.4f}"
        + (f", test_coverage_80 {result.metrics['test_coverage_80']:.3f} in [{policy.min_coverage:.2f}, "
           f"{policy.max_coverage:.2f}], skill_crps {result.metrics['skill_crps']:+.4f} >= "
           f"{policy.min_skill_crps:+.4f}" if ranges else ""))
    version = new_version(manager)
    data = result.metadata["data"]
    path = server.model_store / versioned_name(version)
    steps.record("archived", path=str(path))
    archive(result.tracking_uri, cfg.logger.experiment_name, result.symbol, server.model_store, HANDLER,
            MODEL_CONFIG, run_id=result.run_id, version=version, file_name=path.name)
    say(f"archived run {result.run_id} as {path.name}")
    model_version, created = registry.create_version(client, result.symbol, result.run_id, data["start"],
                                                     data["end"], version)
    name = model_version.name
    steps.record("mlflow_version", name=name, version=model_version.version, created=created)
    deploy.activate(manager, steps, served, str(version), path, policy.ready_timeout, say)
    deploy.crown(client, steps, result.symbol, model_version.version)
    steps.commit(path, policy.keep)
    deploy.remember(server.run_dir, str(version))
    say(f"MLflow: {name} version {model_version.version} is the {registry.CHAMPION}")
    deploy.tidy(manager, path, policy.keep, say)
    return Deployed(version, served.default.version, result, name, str(model_version.version), path, 0.0)


def summary(deployed: Deployed, server: Server) -> str:
    """The closing report of a retrain: what serves now, on what data, how it scored, where it is logged."""
    result, metrics = deployed.result, deployed.result.metrics
    data = result.metadata["data"]
    lines = [
        f"deployed version {deployed.version} (was {deployed.previous}) in {deployed.seconds:.0f} s: {result.symbol}, "
        f"data {data['start']}..{data['end']} (trading days {data['first_date']}..{data['last_date']})",
        f"  test since {data['test_start']}:  MAPE {metrics['test_mape']:.3f} % vs naive {metrics['naive_mape']:.3f} %"
        f" (skill {metrics['skill_mape']:+.4f}), RMSE {metrics['test_rmse']:.4f} vs naive {metrics['naive_rmse']:.4f}",
        f"  validation since {data['val_start']}: MAPE {metrics['val_mape']:.3f} % (skill "
        f"{metrics['val_skill_mape']:+.4f})",
        f"  ranges on the test period: CRPS {metrics['test_crps']:.3f} % vs naive-empirical "
        f"{metrics['naive_crps']:.3f} % (skill {metrics['skill_crps']:+.4f}, "
        f"EWMA's {metrics['ewma_skill_crps']:+.4f}), 80 % coverage {metrics['test_coverage_80']:.3f} "
        f"(EWMA {metrics['ewma_coverage_80']:.3f}), 90 % {metrics['test_coverage_90']:.3f}",
        f"  MLflow run {result.run_id} ({result.tracking_uri}); {deployed.registered} version "
        f"{deployed.registered_version} is the {registry.CHAMPION}",
        f"  serving at POST {server.url('inference')}/predictions/{MODEL_NAME} from {deployed.archive.name}; "
        f"`make rollback` returns to version {deployed.previous}",
    ]
    return "\n".join(lines)
