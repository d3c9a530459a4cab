"""A deployment's steps on disk, so that a command killed at any moment (kill -9, a power cut) is repaired.

`Journal` writes `serve/deploy.journal` before each step that changes something (atomically: a reader
sees the old list or the new one). A failure inside the block undoes the steps newest first and
removes the file; a killed process leaves the file behind, and the next admin command, under the
lock, undoes the same steps from it (`repair`) before doing anything else. `status` shows a left
journal and exits non-zero until then. The same undo code serves both cases.

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
from pathlib import Path
from types import TracebackType
from typing import Any

from mlflow import MlflowClient

from stockcast.cli import Say
from stockcast.files import replacing
from stockcast.release import deploy, registry
from stockcast.serving.management import Management
from stockcast.serving.server import Server

JOURNAL = "deploy.journal"  # in the server's run folder (serve/)
KILL_AT = "STOCKCAST_KILL_AT"
JOURNAL_TAG = "admin_journal"  # on the MLflow run a retrain trains: the journal's id


class Journal:
    """The steps of one admin command, undone newest first if the block raises (Ctrl-C and SIGTERM too)."""

    def __init__(self, server: Server, command: str, tracking_uri: str, say: Say) -> None:
        self.server, self.say = server, say
        self.path = server.run_dir / JOURNAL
        started = dt.datetime.now()
        self.id = f"{started:%Y%m%dT%H%M%S}-{os.getpid()}"
        self.entry: dict[str, Any] = {"id": self.id, "command": command, "pid": os.getpid(),
                                      "started": started.isoformat(timespec="seconds"), "tracking_uri": tracking_uri,
                                      "steps": []}

    def __enter__(self) -> Journal:
        self._write()
        return self

    def record(self, step: str, **data: Any) -> None:
        """Note `step` (with what undoing it needs) before it is carried out."""
        self.entry["steps"].append({"step": step, **data})
        self._write()
        if os.environ.get(KILL_AT) == step:
            os.kill(os.getpid(), signal.SIGKILL)

    def commit(self, archive: Path | None, keep: int) -> None:
        """The new default stands from here on: a later kill is rolled forward, not back."""
        self.record("committed", archive=None if archive is None else str(archive), keep=keep)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is not None and not _committed(self.entry):
            undo(self.server, self.entry, self.say)
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


def repair(server: Server, say: Say) -> bool:
    """Undo (or, after its commit, finish) what a killed command left; True if there was something."""
    entry = left(server)
    if entry is None:
        return False
    say(f"repairing an interrupted {describe(entry)}")
    if entry.get("unreadable"):
        say(f"warning: {server.run_dir / JOURNAL} was unreadable, so nothing could be undone from it: check "
            "`make status` (versions, aliases, model store) by hand")
    elif _committed(entry):
        steps = {step["step"]: step for step in entry["steps"]}
        archive = steps["committed"]["archive"]
        deploy.settle(Management(server), steps["default"]["version"], None if archive is None else Path(archive),
                      steps["committed"]["keep"], say)
        say(f"finished: version {steps['default']['version']} stays the default, as the command had committed")
    elif undo(server, entry, say):
        say("repaired: the served default, registered versions, model store and aliases are as before it")
    else:
        say("repaired as far as possible: undo what the warnings above name by hand")
    (server.run_dir / JOURNAL).unlink(missing_ok=True)
    return True


def undo(server: Server, entry: dict[str, Any], say: Say) -> bool:
    """Undo the recorded steps newest first; one that fails is reported and the rest still undone.
    True when every step was undone."""
    manager = Management(server)
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
    kind = step["step"]
    if kind == "champion":
        registry.set_champion(client, step["symbol"], step["before"])
    elif kind == "default":
        if manager.served().default.version == step["version"]:
            manager.set_default(step["previous"])
            say(f"version {step['previous']} is the default again")
    elif kind == "server_version":
        if step["version"] in {version.version for version in manager.served().versions}:
            manager.unregister(step["version"])
            say(f"unregistered version {step['version']}")
    elif kind == "mlflow_version":
        client.delete_model_version(step["name"], step["version"])
        if step["created"]:
            client.delete_registered_model(step["name"])
    elif kind == "archived":
        Path(step["path"]).unlink(missing_ok=True)
    elif kind == "training":
        experiment = client.get_experiment_by_name(step["experiment"])
        if experiment is None:
            return
        running = f"attributes.status = 'RUNNING' and tags.{JOURNAL_TAG} = '{journal_id}'"
        for run in client.search_runs([experiment.experiment_id], running):  # the killed training's run
            client.set_tag(run.info.run_id, "killed", "the admin command was killed; marked FAILED by repair")
            client.set_terminated(run.info.run_id, "FAILED")
            say(f"MLflow run {run.info.run_id} of the killed training is marked FAILED")


def _committed(entry: dict[str, Any]) -> bool:
    return any(step["step"] == "committed" for step in entry["steps"])
