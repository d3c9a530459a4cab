"""A deployment's steps on disk, so that a command killed at any moment (kill -9, a power cut) is repaired.

`Journal` writes `serve/deploy.journal` before each step that changes something (atomically: a reader
sees the old list or the new one). A failure inside the block undoes the steps newest first and
removes the file; a killed process leaves the file behind, and the next admin command, under the
lock, undoes the same steps from it (`repair`) before doing anything else. `status` shows a left
journal and exits non-zero until then. The same undo code serves both cases; finishing a committed
journal instead is the command frame's (`release.command.repair`), which imports this module, never
the reverse.

A step is recorded before it is carried out (its undo tolerates "never happened"), except the MLflow
model version, whose number is only known once it exists. After `commit` the new default stands: a
journal killed later is rolled forward (the startup archive and the kept versions tidied), not back.

`STOCKCAST_KILL_AT=<step>` kills the process with SIGKILL right after that step is recorded: the
fault-injection hook the kill tests use.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from mlflow import MlflowClient

from stockcast.cli import Say
from stockcast.errors import StockcastError
from stockcast.files import replacing
from stockcast.release import registry
from stockcast.serving.management import Management
from stockcast.serving.server import Server

JOURNAL = "deploy.journal"  # in the server's run folder (serve/)
KILL_AT = "STOCKCAST_KILL_AT"
JOURNAL_TAG = "admin_journal"  # on the MLflow run a retrain trains: the journal's id


class Step(StrEnum):
    """The kinds of step a journal records; the values are what journal files on disk hold."""

    TRAINING = "training"  # a retrain's training run (undo: mark it FAILED)
    MLFLOW_VERSION = "mlflow_version"  # a registered model version (undo: delete it, and a new registered model)
    ARCHIVED = "archived"  # the next served set's archive in the model store (undo: delete the file)
    SERVER_VERSION = "server_version"  # a version registered with TorchServe (undo: unregister it)
    DEFAULT = "default"  # the served default switched (undo: switch back)
    CHAMPION = "champion"  # a model's champion alias moved (undo: move it back)
    COMMITTED = "committed"  # the new default stands: a kill after it is rolled forward, not back


class Journal:
    """The steps of one admin command, undone newest first if the block raises (Ctrl-C and SIGTERM too)."""

    def __init__(self, manager: Management, command: str, tracking_uri: str, say: Say) -> None:
        self.manager, self.say = manager, say
        self.path = manager.server.run_dir / JOURNAL
        started = dt.datetime.now()
        self.id = f"{started:%Y%m%dT%H%M%S}-{os.getpid()}"
        self.entry: dict[str, Any] = {"id": self.id, "command": command, "pid": os.getpid(),
                                      "started": started.isoformat(timespec="seconds"), "tracking_uri": tracking_uri,
                                      "steps": []}

    def __enter__(self) -> Journal:
        self._write()
        return self

    def record(self, step: Step, **data: Any) -> None:
        """Note `step` (with what undoing it needs) before it is carried out."""
        self.entry["steps"].append({"step": step, **data})
        self._write()
        if os.environ.get(KILL_AT) == step:
            os.kill(os.getpid(), signal.SIGKILL)

    def commit(self, archive: Path | None, keep: int) -> None:
        """The new default stands from here on: a later kill is rolled forward, not back."""
        self.record(Step.COMMITTED, archive=None if archive is None else str(archive), keep=keep)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is not None and committed(self.entry) is None:
            undo(self.manager, self.entry, self.say)
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(self.path) as partial:
            partial.write_text(json.dumps(self.entry, indent=1))


def left(server: Server) -> dict[str, Any] | None:
    """The journal of a command that was killed, or None."""
    path = server.run_dir / JOURNAL
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:  # unreadable: nothing was recorded in it that could be undone
        return {"id": "?", "command": "unknown", "pid": "?", "started": "?", "tracking_uri": None, "steps": [],
            "unreadable": True}


def describe(entry: dict[str, Any]) -> str:
    steps = [step["step"] for step in entry["steps"]]
    return (f"`{entry['command']}` (pid {entry['pid']}, started {entry['started']}) stopped after "
            f"{', '.join(steps) or 'no step'}")


def undo(manager: Management, entry: dict[str, Any], say: Say) -> bool:
    """Undo the recorded steps newest first; one that fails is reported and the rest still undone.
    True when every step was undone."""
    client = MlflowClient(entry["tracking_uri"]) if entry.get("tracking_uri") else None
    undone = True
    for step in reversed(entry["steps"]):
        try:
            _undo_step(step, entry["id"], manager, client, say)
        except Exception as err:  # keep undoing the rest; the original error is what the user sees
            say(f"warning: could not undo {step['step']} ({err}): do it by hand")
            undone = False
    return undone


def _undo_step(step: dict[str, Any], journal_id: str, manager: Management, client: MlflowClient | None,
               say: Say) -> None:
    match Step(step["step"]):
        case Step.CHAMPION:
            registry.set_champion(_recorded(client), step["symbol"], step["before"])
        case Step.DEFAULT:
            default = manager.served().default
            if default is not None and default.version == step["version"]:
                manager.set_default(step["previous"])
                say(f"version {step['previous']} is the default again")
        case Step.SERVER_VERSION:
            if step["version"] in {version.version for version in manager.served().versions}:
                manager.unregister(step["version"])
                say(f"unregistered version {step['version']}")
        case Step.MLFLOW_VERSION:
            _recorded(client).delete_model_version(step["name"], step["version"])
            if step["created"]:
                _recorded(client).delete_registered_model(step["name"])
        case Step.ARCHIVED:
            Path(step["path"]).unlink(missing_ok=True)
        case Step.TRAINING:
            mlflow = _recorded(client)
            experiment = mlflow.get_experiment_by_name(step["experiment"])
            if experiment is None:
                return
            running = f"attributes.status = 'RUNNING' and tags.{JOURNAL_TAG} = '{journal_id}'"
            for run in mlflow.search_runs([experiment.experiment_id], running):  # the killed training's run
                mlflow.set_tag(run.info.run_id, "killed", "the admin command was killed; marked FAILED by repair")
                mlflow.set_terminated(run.info.run_id, "FAILED")
                say(f"MLflow run {run.info.run_id} of the killed training is marked FAILED")
        case Step.COMMITTED:  # nothing to undo: a committed journal is finished, not undone
            pass


def committed(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The journal's commit step (the new default stands), or None."""
    return next((step for step in entry["steps"] if step["step"] == Step.COMMITTED), None)


def _recorded(client: MlflowClient | None) -> MlflowClient:
    """The MLflow store a step in MLflow was recorded in: the journal holds its tracking URI then."""
    if client is None:
        raise StockcastError("the journal records an MLflow step but no tracking URI")
    return client
