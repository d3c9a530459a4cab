"""`scripts/admin.py rollback`: make an earlier version the served default of a running TorchServe again.

The version is `--to`, or the one that served before the current default (`policy.rollback_target`); one
that was unregistered is registered again from its archive in the model store. Its ticker's `champion`
alias moves back with it. Only versions that were deployed (a committed default: they passed the gate,
or the server was started with them) are candidates; an archive left by a killed retrain is not. A
failure undoes every step already done, a kill is undone by the next admin command (`ops.journal`).
"""

from __future__ import annotations

from mlflow import MlflowClient

from stockcast.errors import StockcastError
from stockcast.ops import deploy, journal, registry
from stockcast.ops.deploy import Say
from stockcast.ops.journal import Journal
from stockcast.ops.lock import LOCK, exclusive
from stockcast.ops.policy import DEFAULT, Policy, rollback_target
from stockcast.serving.management import Management
from stockcast.serving.server import Server
from stockcast.serving.versions import archives, as_version


def rollback(server: Server, tracking_uri: str, to: int | None = None, policy: Policy = DEFAULT,
             say: Say = print) -> str:
    """Make `to` (default: the highest version below the current default) the default again, registering
    it from its archive if it was unregistered; its ticker's alias moves back to it. Returns the version."""
    manager = Management(server)
    with exclusive(server.run_dir / LOCK, policy.wait, f"rollback to {to or 'the previous version'}"):
        journal.repair(server, say)
        served = deploy.current(manager)
        on_disk = archives(server.model_store)
        known = sorted(set(on_disk) | {v for v in (as_version(s.version) for s in served.versions) if v is not None})
        deployed = deploy.deployed(server.run_dir, served.default.version)
        target = rollback_target(as_version(served.default.version) or 0, [v for v in known if v in deployed], to)
        if target not in known:
            raise StockcastError(f"unknown version {target}: registered "
                                 f"{', '.join(v.version for v in served.versions)}; archives in "
                                 f"{server.model_store}: {', '.join(map(str, sorted(on_disk))) or 'none'}")
        if target not in deployed:
            raise StockcastError(f"version {target} was never deployed (it did not pass the gate, or its retrain "
                                 f"was stopped): deployed versions are {', '.join(map(str, deployed))}")
        if str(target) == served.default.version:
            say(f"version {target} is already the default: nothing to do")
            return str(target)
        client = MlflowClient(tracking_uri)
        with Journal(server, f"rollback to {target}", tracking_uri, say) as steps:
            deploy.activate(manager, steps, served, str(target), on_disk.get(target), policy.ready_timeout, say)
            symbol = manager.description(str(target))["stock"]
            found = registry.version_of_archive(client, symbol, str(target))
            if found is None:
                say(f"MLflow: no version of {registry.model_name(symbol)} was deployed as {target} (archived by "
                    f"`make archive`?): the {registry.CHAMPION} alias stays where it is")
            else:
                deploy.crown(client, steps, symbol, found.version)
                say(f"MLflow: {found.name} version {found.version} is the {registry.CHAMPION} again")
            steps.commit(on_disk.get(target), policy.keep)
            deploy.tidy(manager, on_disk.get(target), policy.keep, say)
    return str(target)
