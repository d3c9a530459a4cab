"""`scripts/admin.py retrain` (and `deploy`): train models, or take trained runs, and deploy them into a
running TorchServe, one ticker or many.

Per ticker: train (the same `pipeline.run` as train.py) -> quality gate. Then, for the models that
passed: the next served set (the serving one with their bundles swapped in, every other ticker's bundle
copied unchanged) -> register it as the next version, wait for its workers, make it the default -> an
MLflow model version of each with the `champion` alias -> unregister versions beyond the kept count.
A ticker that fails its training or its gate keeps its model; the others still deploy. The server is
checked before training, so a stopped one fails in seconds; a failure after the trainings undoes every
step already done, and a killed retrain is undone by the next admin command (`release.journal`).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from hydra.errors import HydraException
from mlflow import MlflowClient
from omegaconf import DictConfig, open_dict

from stockcast.cli import Say, user_error
from stockcast.config import load_config
from stockcast.errors import StockcastError
from stockcast.pipeline import RunResult, run
from stockcast.release import registry, switching
from stockcast.release.command import Release, opened
from stockcast.release.journal import JOURNAL_TAG, Journal, Step
from stockcast.release.policy import DEFAULT, Policy, gate
from stockcast.runtime.bundle import METADATA, BundleMeta
from stockcast.runtime.metric_keys import PEERS, skill_key
from stockcast.serving.management import Management
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME
from stockcast.serving.versions import new_version
from stockcast.tracking import existing_store, find_run, prepare_store


@dataclass(frozen=True)
class Deployed:
    """What a retrain put in service, and what it refused."""

    version: int
    previous: str
    results: list[RunResult]
    registered: list[str]  # per result: "<registered model> version <n>"
    archive: Path
    refused: dict[str, str] = field(default_factory=dict)  # ticker -> why its model was not deployed
    seconds: float = 0.0


def train_config(overrides: list[str]) -> DictConfig:
    """`configs/train.yaml` as train.py composes it, outputs (checkpoints) in outputs/admin/<time>/."""
    try:
        cfg = load_config("train", overrides)
    except HydraException as err:
        raise StockcastError(f"bad training override in {overrides}: {err}") from None
    with open_dict(cfg):  # `${hydra:runtime.output_dir}` only exists under @hydra.main
        now = dt.datetime.now()
        cfg.paths.output_dir = str(Path(cfg.paths.root_dir, "outputs", "admin", f"{now:%Y-%m-%d}",
                                        f"{now:%H-%M-%S-%f}"))
    return cfg


def served_stocks(server: Server) -> list[str]:
    """The tickers the running server's default version answers (`retrain --all`)."""
    manager = Management(server)
    return list(switching.served_set(manager, switching.current(manager).default.version).members)


def retrain(cfgs: list[DictConfig], server: Server, policy: Policy = DEFAULT, say: Say = print) -> Deployed:
    """Train and gate each configuration, deploy those that passed as one new version (module docstring).
    Raises, with the server, the model store and the registry as they were, when none passed or a step
    of the deployment failed (the MLflow runs stay, FAILED or tagged `gate: failed ...`)."""
    first = cfgs[0]
    tracking_uri = prepare_store(first.logger.tracking_uri, first.logger.experiment_name,
                                 first.logger.artifact_location)
    return _gated(server, f"retrain {', '.join(str(cfg.stock) for cfg in cfgs)}", tracking_uri,
                  lambda release: _train(cfgs, release.steps), policy, say)


def deploy_runs(run_ids: list[str], tracking_uri: str, server: Server, policy: Policy = DEFAULT,
                say: Say = print) -> Deployed:
    """Gate and deploy runs trained already (train.py, a sweep): retrain without its training."""
    client = existing_store(tracking_uri)

    def finished(_: Release) -> tuple[list[RunResult], dict[str, str]]:
        results = []
        for run_id in run_ids:
            found = find_run(client, "", "", run_id)
            with tempfile.TemporaryDirectory() as folder:
                meta = BundleMeta.read(Path(client.download_artifacts(
                    run_id, f"{found.data.tags['bundle']}/{METADATA}", folder)).parent)
            results.append(RunResult(run_id, tracking_uri, found.data.tags["symbol"], found.data.metrics, meta))
        return results, {}

    return _gated(server, f"deploy {', '.join(run_ids)}", tracking_uri, finished, policy, say, client)


def _gated(server: Server, command: str, tracking_uri: str,
           candidates: Callable[[Release], tuple[list[RunResult], dict[str, str]]], policy: Policy,
           say: Say, client: MlflowClient | None = None) -> Deployed:
    """A release command (the server checked before any training) whose journal holds the candidates
    (trained now or before), each gated on its own, those that passed deployed as one new version."""
    started = time.monotonic()
    with opened(server, command, tracking_uri, policy, say, client) as release, release.journaled(command):
        results, refused = candidates(release)
        passed = []
        for result in results:
            reason = gate_run(release.client, result, policy, say)
            if reason:
                refused[result.symbol] = reason
            else:
                passed.append(result)
        if not passed:
            default = switching.current(release.manager).default.version
            raise StockcastError(f"{'; '.join(refused.values())}; version {default} stays the default")
        deployed = _deploy(release, passed)
    return replace(deployed, refused=refused, seconds=time.monotonic() - started)


def gate_run(client: MlflowClient, result: RunResult, policy: Policy, say: Say) -> str | None:
    """Why the run must not be deployed (also tagged on the run, through `client`), or None."""
    assert result.meta is not None  # a finished run of this process, which logged its bundle
    ranges = result.meta.levels is not None
    reason = gate(result.metrics, policy, ranges)
    client.set_tag(result.run_id, "gate", f"failed: {reason}" if reason else "passed")
    if reason:
        say(f"run {result.run_id} ({result.symbol}) is not deployed: {reason}")
        return f"run {result.run_id} ({result.symbol}) is not deployed: {reason}"
    say(f"{result.symbol}: quality gate passed: skill_mape {result.metrics['skill_mape']:+.4f} >= "
        f"{policy.min_skill:+.4f}" + (f", test_coverage_80 {result.metrics['test_coverage_80']:.3f} in "
                                      f"[{policy.min_coverage:.2f}, {policy.max_coverage:.2f}], skill_crps "
                                      f"{result.metrics['skill_crps']:+.4f} >= {policy.min_skill_crps:+.4f}"
                                      if ranges else "") + _beside(result.metrics))
    return None


def _beside(metrics: dict[str, float]) -> str:
    """The baselines' CRPS skills on the same test windows, shown beside the gate's figures (not gated)."""
    shown = [f"{peer.label} {metrics[skill_key(peer)]:+.4f}" for peer in PEERS if skill_key(peer) in metrics]
    return f" (baselines' skill_crps: {', '.join(shown)})" if shown else ""


def _train(cfgs: list[DictConfig], steps: Journal) -> tuple[list[RunResult], dict[str, str]]:
    """Train each configuration, each run tagged with the journal's id (a repair finds it if the command is
    killed while it runs); the finished runs, and why the others failed."""
    results, refused = [], {}
    for cfg in cfgs:
        steps.say(f"training {cfg.stock} {cfg.start}..{cfg.end or 'today'}")
        steps.record(Step.TRAINING, experiment=cfg.logger.experiment_name)
        with open_dict(cfg):
            cfg.logger.tags = {**(cfg.logger.get("tags") or {}), JOURNAL_TAG: steps.id}
        try:
            results.append(run(cfg))
        except Exception as err:
            if user_error(err) is None:
                raise
            refused[str(cfg.stock)] = f"{cfg.stock} is not deployed: {user_error(err)}"
            steps.say(refused[str(cfg.stock)])
    return results, refused


def _deploy(release: Release, results: list[RunResult]) -> Deployed:
    """The next served set with the runs' bundles, registered in MLflow and made the default."""
    release.look()  # the server may have changed during the trainings
    previous = release.served.default.version
    version = new_version(release.manager)
    registered = []
    with tempfile.TemporaryDirectory(prefix="stockcast-bundles-") as work:
        after = release.before.with_runs(release.tracking_uri, [result.run_id for result in results], version,
                                         Path(work))
        for result in results:
            assert result.meta is not None
            data = result.meta.data
            model_version, created = registry.create_version(release.client, result.symbol, result.run_id,
                                                             data["start"], data["end"], version)
            release.steps.record(Step.MLFLOW_VERSION, name=model_version.name, version=model_version.version,
                                 created=created)
            registered.append(f"{model_version.name} version {model_version.version}")
        path = release.switch(after, version)
    release.commit(version, path)
    return Deployed(version, previous, results, registered, path)


def summary(deployed: Deployed, server: Server) -> str:
    """The closing report of a retrain: what serves now, on what data, how it scored, what was refused."""
    lines = [f"deployed version {deployed.version} (was {deployed.previous}) in {deployed.seconds:.0f} s: "
             f"{len(deployed.results)} new model(s), serving at POST {server.url('inference')}/predictions/"
             f"{MODEL_NAME} from {deployed.archive.name}"]
    for result, registered in zip(deployed.results, deployed.registered, strict=True):
        assert result.meta is not None
        metrics, data = result.metrics, result.meta.data
        lines += [
            f"{result.symbol}: data {data['start']}..{data['end']} (trading days {data['first_date']}.."
            f"{data['last_date']}); MLflow run {result.run_id}; {registered} is the {registry.CHAMPION}",
            f"  test since {data['test_start']}:  MAPE {metrics['test_mape']:.3f} % vs naive "
            f"{metrics['naive_mape']:.3f} % (skill {metrics['skill_mape']:+.4f}), RMSE {metrics['test_rmse']:.4f} "
            f"vs naive {metrics['naive_rmse']:.4f}",
            f"  validation since {data['val_start']}: MAPE {metrics['val_mape']:.3f} % (skill "
            f"{metrics['val_skill_mape']:+.4f})",
            f"  ranges on the test period: CRPS {metrics['test_crps']:.3f} % vs naive-empirical "
            f"{metrics['naive_crps']:.3f} % (skill {metrics['skill_crps']:+.4f}, "
            f"EWMA's {metrics['ewma_skill_crps']:+.4f}), 80 % coverage {metrics['test_coverage_80']:.3f} "
            f"(EWMA {metrics['ewma_coverage_80']:.3f}), 90 % {metrics['test_coverage_90']:.3f}",
        ]
    lines += [f"REFUSED {reason}; its previous model (if any) keeps serving" for reason in deployed.refused.values()]
    lines.append(f"`make rollback` returns to version {deployed.previous}")
    return "\n".join(lines)
