"""The frame of a release command (retrain, deploy, rollback, remove), so each reads as what it changes.

Every one opens the same way (`opened`): take the server's admin lock, repair what a killed command
left, read the served default (there must be one), record it as deployed when nothing is recorded yet
(`release.history`), and read the set it serves. Each changes what is served in a journal (`journaled`),
and closes the same way (`Release.commit`): the journal's commit, then the settle (the new default
recorded, the startup archive and the kept versions tidied). `Release.serve` is the whole of a command
that only swaps in a set built from the served one.

The repair lives here too: undoing a left journal is the journal's own code, finishing a committed one
is this settle. Imports run one way: command -> switching -> journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mlflow import MlflowClient

from stockcast.cli import Say
from stockcast.release import history, journal, switching
from stockcast.release.journal import JOURNAL, Journal
from stockcast.release.lock import LOCK, exclusive
from stockcast.release.policy import Policy
from stockcast.serving.archive import ServedSet
from stockcast.serving.management import Management
from stockcast.serving.server import Server
from stockcast.serving.versions import new_version


@dataclass
class Release:
    """One release command under the lock: the server's management API, the MLflow store, the policy, and
    what was served when it opened (`look` reads it again)."""

    manager: Management
    tracking_uri: str
    policy: Policy
    say: Say
    served: switching.Current  # the registered versions and the default
    before: ServedSet  # the set the default serves
    deployed: list[int]  # every version that was a committed default (what a rollback may return to)
    _steps: Journal | None = field(default=None, repr=False)  # opened by `journaled`

    @cached_property
    def client(self) -> MlflowClient:
        """The command's one MLflow client, made when first used (a client creates a `sqlite:///` store)."""
        return MlflowClient(self.tracking_uri)

    @property
    def steps(self) -> Journal:
        """The command's journal: every change is recorded in it first, so it must be open (`journaled`)."""
        if self._steps is None:
            raise RuntimeError("a release command changed what is served outside `journaled`")
        return self._steps

    def look(self) -> None:
        """Read what is served again (the server may have changed during a retrain's trainings)."""
        self.served = switching.current(self.manager)
        self.before = switching.served_set(self.manager, self.served.default.version)

    @contextmanager
    def journaled(self, command: str) -> Iterator[Journal]:
        """The command's changes, undone newest first if the block raises (`release.journal`)."""
        with Journal(self.manager, command, self.tracking_uri, self.say) as steps:
            self._steps = steps
            yield steps

    def switch(self, after: ServedSet, version: int) -> Path:
        """Serve `after` as `version`, the aliases of the models that changed following (`switching.switch`)."""
        return switching.switch(self.manager, self.client, self.steps, self.served, self.before, after, version,
                                self.policy.ready_timeout, self.say)

    def commit(self, version: int | str, archive: Path | None) -> None:
        """The new default stands: commit the journal, then settle (record it, tidy up)."""
        self.steps.commit(archive, self.policy.keep)
        switching.settle(self.manager, str(version), archive, self.policy.keep, self.say)

    def serve(self, command: str, after: ServedSet) -> int:
        """The whole of a command that serves a set built from the served one: the next version, journaled
        as `command`, switched to and committed. Returns that version."""
        version = new_version(self.manager)
        with self.journaled(command):
            self.commit(version, self.switch(after, version))
        return version


@contextmanager
def opened(server: Server, doing: str, tracking_uri: str, policy: Policy, say: Say,
           client: MlflowClient | None = None) -> Iterator[Release]:
    """Open a release command (module docstring): the lock held until the block ends. `client`: one made
    already (a store checked to exist)."""
    manager = Management(server)
    with exclusive(server.run_dir / LOCK, policy.wait, doing):
        _repair(manager, say)
        served = switching.current(manager)
        deployed = history.deployed(server.run_dir, served.default.version)
        before = switching.served_set(manager, served.default.version)
        release = Release(manager, tracking_uri, policy, say, served, before, deployed)
        if client is not None:
            release.client = client
        yield release


def repair(server: Server, say: Say) -> bool:
    """Undo (or, after its commit, finish) what a killed command left; True if there was something. Every
    release command does it first under the lock; `scripts/admin.py repair` on its own."""
    return _repair(Management(server), say)


def _repair(manager: Management, say: Say) -> bool:
    entry = journal.left(manager.server)
    if entry is None:
        return False
    path = manager.server.run_dir / JOURNAL
    say(f"repairing an interrupted {journal.describe(entry)}")
    commit = journal.committed(entry)
    if entry.get("unreadable"):
        say(f"warning: {path} was unreadable, so nothing could be undone from it: check "
            "`make status` (versions, aliases, model store) by hand")
    elif commit is not None:
        default = [step for step in entry["steps"] if step["step"] == journal.Step.DEFAULT][-1]["version"]
        archive = commit["archive"]
        switching.settle(manager, default, None if archive is None else Path(archive), commit["keep"], say)
        say(f"finished: version {default} stays the default, as the command had committed")
    elif journal.undo(manager, entry, say):
        say("repaired: the served default, registered versions, model store and aliases are as before it")
    else:
        say("repaired as far as possible: undo what the warnings above name by hand")
    path.unlink(missing_ok=True)
    return True
