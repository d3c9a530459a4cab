"""`scripts/admin.py retrain` and `rollback`: change the served model of a running TorchServe.

retrain: train (the same `pipeline.run` as train.py) -> quality gate -> archive the next version ->
register it, wait for its workers, make it the default -> an MLflow model version of the ticker with
the `champion` alias -> unregister versions beyond the kept count. The server is checked before
training, so a stopped one fails in seconds, not after the training; a failure after that undoes
every step already done (`deploy.Undo`).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from pathlib import Path

from hydra.errors import HydraException
from mlflow import MlflowClient
from omegaconf import DictConfig, open_dict

from stockcast.config import load_config
from stockcast.errors import StockcastError
from stockcast.ops import deploy, registry
from stockcast.ops.deploy import Say, Undo
from stockcast.ops.lock import exclusive
from stockcast.ops.policy import DEFAULT, Policy
from stockcast.pipeline import RunResult, run
from stockcast.serving.archive import archive
from stockcast.serving.management import Management, Served
from stockcast.serving.server import Server
from stockcast.serving.settings import HANDLER, MODEL_CONFIG, MODEL_NAME
from stockcast.serving.versions import archives, as_version, next_version, versioned_name

LOCK = "admin.lock"  # in the server's run folder (serve/)


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


def gate(metrics: dict[str, float], min_skill: float) -> str | None:
    """Why the model must not be deployed, or None."""
    bad = sorted(name for name, value in metrics.items() if not math.isfinite(value))
    if bad:
        return f"metrics are not finite: {', '.join(bad)}"
    if metrics["skill_mape"] < min_skill:
        return (f"skill_mape {metrics['skill_mape']:+.4f} is below the minimum {min_skill:+.4f} (test MAPE "
                f"{metrics['test_mape']:.3f} % vs the naive forecast's {metrics['naive_mape']:.3f} %)")
    return None


def _current(manager: Management) -> Served:
    """The served model, which must exist: a deployment swaps its default version."""
    served = manager.served()
    if served.default is None:
        raise StockcastError(f"TorchServe at {manager.server.url('management')} serves no model {MODEL_NAME}: "
                             "restart it with an archive (make archive, then make stop serve)")
    return served


def retrain(cfg: DictConfig, server: Server, policy: Policy = DEFAULT, say: Say = print) -> Deployed:
    """Train, gate, archive, deploy and register one model (module docstring); on any failure it raises
    with the server, the model store and the registry as they were (the failed MLflow run stays, FAILED
    or tagged `gate: failed ...`)."""
    started = time.monotonic()
    manager = Management(server)
    with exclusive(server.run_dir / LOCK, policy.wait, f"retrain {cfg.stock}"):
        served = _current(manager)
        say(f"TorchServe serves {MODEL_NAME} version {served.default.version}; training {cfg.stock} "
            f"{cfg.start}..{cfg.end or 'today'}")
        result = run(cfg)
        client = MlflowClient(result.tracking_uri)
        reason = gate(result.metrics, policy.min_skill)
        client.set_tag(result.run_id, "gate", f"failed: {reason}" if reason else "passed")
        if reason:
            raise StockcastError(f"run {result.run_id} ({result.symbol}) is not deployed: {reason}; version "
                                 f"{served.default.version} stays the default")
        say(f"quality gate passed: skill_mape {result.metrics['skill_mape']:+.4f} >= {policy.min_skill:+.4f}")
        served = _current(manager)  # the server may have changed during the training
        version = next_version(server.model_store, [v.version for v in served.versions])
        data = result.metadata["data"]
        with Undo(say) as undo:
            path = server.model_store / versioned_name(version)
            undo.push(f"remove {path}", lambda: path.unlink(missing_ok=True))
            archive(result.tracking_uri, cfg.logger.experiment_name, result.symbol, server.model_store, HANDLER,
                    MODEL_CONFIG, run_id=result.run_id, version=version, file_name=path.name)
            say(f"archived run {result.run_id} as {path.name}")
            model_version, created = registry.create_version(client, result.symbol, result.run_id, data["start"],
                                                             data["end"], version)
            name = model_version.name
            if created:
                undo.push(f"delete the registered model {name}", lambda: client.delete_registered_model(name))
            undo.push(f"delete version {model_version.version} of {name}",
                      lambda: client.delete_model_version(name, model_version.version))
            deploy.activate(manager, undo, served, str(version), path, policy.ready_timeout, say)
            deploy.crown(client, undo, result.symbol, model_version.version)
        say(f"MLflow: {name} version {model_version.version} is the {registry.CHAMPION}")
        _tidy(manager, server, path, policy, say)
    return Deployed(version, served.default.version, result, name, str(model_version.version), path,
                    time.monotonic() - started)


def rollback(server: Server, tracking_uri: str, to: int | None = None, policy: Policy = DEFAULT,
             say: Say = print) -> str:
    """Make `to` (default: the highest version below the current default) the default again, registering
    it from its archive if it was unregistered; its ticker's alias moves back to it. Returns the version."""
    manager = Management(server)
    with exclusive(server.run_dir / LOCK, policy.wait, f"rollback to {to or 'the previous version'}"):
        served = _current(manager)
        on_disk = archives(server.model_store)
        known = sorted(set(on_disk) | {v for v in (as_version(s.version) for s in served.versions) if v is not None})
        current = as_version(served.default.version) or 0
        target = to if to is not None else max((v for v in known if v < current), default=None)
        if target is None:
            raise StockcastError(f"no version below the default {current} to roll back to (known: {known})")
        if target not in known:
            raise StockcastError(f"unknown version {target}: registered "
                                 f"{', '.join(v.version for v in served.versions)}; archives in "
                                 f"{server.model_store}: {', '.join(map(str, sorted(on_disk))) or 'none'}")
        if str(target) == served.default.version:
            say(f"version {target} is already the default: nothing to do")
            return str(target)
        client = MlflowClient(tracking_uri)
        with Undo(say) as undo:
            deploy.activate(manager, undo, served, str(target), on_disk.get(target), policy.ready_timeout, say)
            symbol = manager.description(str(target))["stock"]
            found = registry.version_of_archive(client, symbol, str(target))
            if found is None:
                say(f"MLflow: no version of {registry.model_name(symbol)} was deployed as {target} (archived by "
                    f"`make archive`?): the {registry.CHAMPION} alias stays where it is")
            else:
                deploy.crown(client, undo, symbol, found.version)
                say(f"MLflow: {found.name} version {found.version} is the {registry.CHAMPION} again")
        _tidy(manager, server, on_disk.get(target), policy, say)
    return str(target)


def _tidy(manager: Management, server: Server, archive_path: Path | None, policy: Policy, say: Say) -> None:
    """After a committed switch: keep the startup archive in step, unregister old versions. A failure here
    leaves the new default serving, so it is a warning, not an undo."""
    try:
        if archive_path is None:
            say(f"warning: the new default has no archive in {server.model_store}: a restarted server serves "
                "lstm.mar instead")
        else:
            deploy.serve_at_start(server.model_store, archive_path, say)
        deploy.prune(manager, policy.keep, say)
    except (OSError, StockcastError) as err:
        say(f"warning: the new default serves, but tidying up failed: {err}")


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
        f"  MLflow run {result.run_id} ({result.tracking_uri}); {deployed.registered} version "
        f"{deployed.registered_version} is the {registry.CHAMPION}",
        f"  serving at POST {server.url('inference')}/predictions/{MODEL_NAME} from {deployed.archive.name}; "
        f"`make rollback` returns to version {deployed.previous}",
    ]
    return "\n".join(lines)
