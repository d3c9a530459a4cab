"""The steps retrain, rollback and remove share to switch the served default: check what is served, write
the next served set, make a version the served default, move the changed models' aliases, keep the server's
startup archive in step, unregister versions beyond the kept count, and remember which versions were deployed
(`release.history`: the only ones a rollback may return to).

Every step that changes something is first recorded in the command's journal (`release.journal`), which
undoes them newest first when a later step fails or the command is killed, so a failed command leaves
the served default, the registered versions, the model store and the aliases as they were.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

from stockcast.cli import Say
from stockcast.errors import StockcastError
from stockcast.files import replacing
from stockcast.release import registry
from stockcast.release.history import remember
from stockcast.release.journal import Journal, Step
from stockcast.serving.archive import ServedSet, write
from stockcast.serving.management import Management, Served, Version
from stockcast.serving.settings import MODEL_NAME
from stockcast.serving.versions import archive_version, archives, as_version, startup_archive, versioned_name


@dataclass(frozen=True)
class Current(Served):
    """The served model with its default version, which every step here swaps or reads."""

    default: Version


def current(manager: Management) -> Current:
    """The served model, which must exist: a deployment swaps its default version."""
    served = manager.served()
    if served.default is None:
        raise StockcastError(f"TorchServe at {manager.server.url('management')} serves no model {MODEL_NAME}: "
                             "restart it with an archive (make archive, then make stop serve)")
    return Current(served.default, served.versions)


def served_set(manager: Management, version: str) -> ServedSet:
    """The set a version serves, read from its archive in the model store."""
    number = as_version(version)
    path = None if number is None else archives(manager.server.model_store).get(number)
    if path is None:
        raise StockcastError(f"version {version} has no archive in {manager.server.model_store}: the next served set "
                             "is built from it (make archive, then make stop serve)")
    return ServedSet.read(path)


def switch(manager: Management, client: MlflowClient, journal: Journal, served: Current, before: ServedSet,
           after: ServedSet, version: int, timeout: float, say: Say) -> Path:
    """Write `after` as the archive of `version`, make it the default, move the aliases of the models that
    changed, commit. The caller tidies up (`tidy`) once the journal is closed."""
    path = manager.server.model_store / versioned_name(version)
    journal.record(Step.ARCHIVED, path=str(path))
    write(after, manager.server.model_store, version, path.name)
    changed = before.changed(after)
    say(f"wrote {path.name}: {len(after.members)} ticker(s), changed {', '.join(changed) or 'none'}")
    activate(manager, journal, served, str(version), path, timeout, say)
    crown_set(client, journal, before, after, say)
    return path


def crown_set(client: MlflowClient, journal: Journal, before: ServedSet, after: ServedSet, say: Say) -> None:
    """Point each model's `champion` alias at the version `after` serves; a model `after` no longer serves
    loses its alias. A bundle archived by `make archive` has no registered version: its alias stays."""
    serving = {meta.symbol for meta in after.bundles.values()}
    for name, meta in after.bundles.items():
        if name in before.bundles:
            continue
        found = registry.version_of_archive(client, meta.symbol, str(meta.version))
        if found is None:
            say(f"MLflow: no version of {registry.model_name(meta.symbol)} was deployed as "
                f"{meta.version} (archived by `make archive`?): its {registry.CHAMPION} alias stays")
            continue
        crown(client, journal, meta.symbol, found.version)
        say(f"MLflow: {found.name} version {found.version} is the {registry.CHAMPION}")
    for symbol in sorted({meta.symbol for meta in before.bundles.values()} - serving):
        if registry.champion(client, symbol) is not None:
            crown(client, journal, symbol, None)
            say(f"MLflow: {registry.model_name(symbol)} is no longer served: its {registry.CHAMPION} alias is removed")


def activate(manager: Management, journal: Journal, served: Current, version: str, archive: Path, timeout: float,
             say: Say) -> None:
    """Register `archive` as `version` unless it is registered, wait for its workers, make it the default.

    The new version starts as many workers as the current default has (the archive's minWorkers wins).
    """
    if served.get(version) is None:
        journal.record(Step.SERVER_VERSION, version=version)
        manager.register(archive.name, len(served.default.workers) or 1, timeout)
    ready = manager.wait_ready(version, timeout)
    say(f"version {version} is registered, {len(ready.workers)} workers ready")
    previous = served.default.version
    journal.record(Step.DEFAULT, version=version, previous=previous)
    manager.set_default(version)
    say(f"version {version} is the default of {manager.server.url('inference')}/predictions/lstm "
        f"(was {previous})")


def crown(client: MlflowClient, journal: Journal, symbol: str, version: str | None) -> None:
    """Move the model's `champion` alias to its registered `version` (None: remove it)."""
    before = registry.champion(client, symbol)
    journal.record(Step.CHAMPION, symbol=symbol, before=before.version if before else None)
    registry.set_champion(client, symbol, version)


def serve_at_start(model_store: Path, archive: Path, say: Say) -> None:
    """Copy the new default over `lstm.mar`, so a restarted server (`load_models=lstm=lstm.mar`) serves
    it too; the archive it replaces is kept as `lstm-v<N>.mar` first when it has no such copy."""
    startup = startup_archive(model_store)
    if archive == startup:
        return
    replaced = archive_version(startup) if startup.exists() else None
    if replaced is not None and not (model_store / versioned_name(replaced)).exists():
        _copy(startup, model_store / versioned_name(replaced))
    _copy(archive, startup)
    say(f"{startup.name} is now a copy of {archive.name}: a restarted server serves it too")


def _copy(source: Path, target: Path) -> None:
    """Replace `target` atomically: a server starting meanwhile reads the old file or the new, never half."""
    with replacing(target) as partial:
        shutil.copyfile(source, partial)


def prune(manager: Management, keep: int, say: Say) -> None:
    """Unregister the oldest versions beyond the default and the `keep` newest others (they stay on disk:
    `rollback --to` registers one again)."""
    served = current(manager)
    others = sorted((v.version for v in served.versions if v.version != served.default.version),
                    key=lambda v: as_version(v) or 0, reverse=True)
    for version in others[keep:]:
        manager.unregister(version)
        say(f"unregistered version {version} (keeping {keep} earlier versions registered)")


def settle(manager: Management, version: str, archive: Path | None, keep: int, say: Say) -> None:
    """What follows a commit (and a repair of a committed command): record `version` as the default served,
    then tidy up."""
    remember(manager.server.run_dir, version)
    tidy(manager, archive, keep, say)


def tidy(manager: Management, archive: Path | None, keep: int, say: Say) -> None:
    """After a committed switch: keep the startup archive in step, unregister old versions. A failure here
    leaves the new default serving, so it is a warning, not an undo."""
    model_store = manager.server.model_store
    try:
        if archive is None:
            say(f"warning: the new default has no archive in {model_store}: a restarted server serves "
                f"{startup_archive(model_store).name} instead")
        else:
            serve_at_start(model_store, archive, say)
        prune(manager, keep, say)
    except (OSError, StockcastError) as err:
        say(f"warning: the new default serves, but tidying up failed: {err}")
