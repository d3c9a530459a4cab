"""`scripts/admin.py rollback`: undo the most recent deploy, or return one ticker to an earlier model.

Without `--stock`: the version that served before the current default (`history.previous`; or `--to`)
becomes the default again (repeated, it walks back through the defaults); one that was unregistered
is registered again from its archive in the model store. With `--stock PETR4`: the next version of
the served set answers PETR4 with its previous model (or the model version `--to`), every other
ticker unchanged. Either way the `champion` aliases follow. Only versions that were deployed (a
committed default: they passed the gate, or the server was started with them) are candidates; an
archive left by a killed retrain is not. A failure undoes every step already done, a kill is undone
by the next admin command (`release.journal`).
"""

from __future__ import annotations

from mlflow import MlflowClient

from stockcast.cli import Say
from stockcast.errors import StockcastError
from stockcast.release import deploy, history, journal
from stockcast.release.journal import Journal
from stockcast.release.lock import LOCK, exclusive
from stockcast.release.policy import DEFAULT, Policy, rollback_target
from stockcast.serving.archive import ServedSet
from stockcast.serving.management import Management, Served
from stockcast.serving.server import Server
from stockcast.serving.versions import archives, new_version
from stockcast.symbols import normalize_symbol


def rollback(server: Server, tracking_uri: str, to: int | None = None, stock: str | None = None,
             policy: Policy = DEFAULT, say: Say = print) -> str:
    """Module docstring; returns the version serving afterwards."""
    manager = Management(server)
    doing = f"rollback {stock or ''} to {to or 'the previous version'}"
    with exclusive(server.run_dir / LOCK, policy.wait, doing):
        journal.repair(server, say)
        served = deploy.current(manager)
        deployed = history.deployed(server.run_dir, served.default.version)
        before = deploy.served_set(manager, served.default.version)
        client = MlflowClient(tracking_uri)
        if stock is not None:
            return _ticker(manager, client, served, before, deployed, normalize_symbol(stock), to, tracking_uri, policy,
                           say)
        on_disk = archives(server.model_store)
        target = to or history.previous(server.run_dir, served.default.version)
        if target not in on_disk:
            raise StockcastError(f"unknown version {target}: archives in {server.model_store}: "
                                 f"{', '.join(map(str, sorted(on_disk))) or 'none'}")
        if target not in deployed:
            raise StockcastError(f"version {target} was never deployed (it did not pass the gate, or its retrain "
                                 f"was stopped): deployed versions are {', '.join(map(str, deployed))}")
        if str(target) == served.default.version:
            say(f"version {target} is already the default: nothing to do")
            return str(target)
        with Journal(server, f"rollback to {target}", tracking_uri, say) as steps:
            deploy.activate(manager, steps, served, str(target), on_disk[target], policy.ready_timeout, say)
            after = ServedSet.read(on_disk[target])
            say(f"changed: {', '.join(before.changed(after)) or 'none'}")
            deploy.crown_set(client, steps, before, after, say)
            steps.commit(on_disk[target], policy.keep)
            deploy.settle(manager, str(target), on_disk[target], policy.keep, say)
    return str(target)


def _ticker(manager: Management, client: MlflowClient, served: Served, before: ServedSet, deployed: list[int],
            symbol: str, to: int | None, tracking_uri: str, policy: Policy, say: Say) -> str:
    """The next served set with `symbol` answered by its model version `to` (default: the one before)."""
    if symbol not in before.members:
        raise StockcastError(f"{symbol} is not served: the served tickers are {', '.join(before.members)}")
    history = model_versions(manager, deployed, symbol)
    current = int(before.bundle_of(symbol)["model_version"])
    target = rollback_target(current, sorted(history), to)
    if target not in history:
        raise StockcastError(f"{symbol} never served model version {target}: its deployed model versions are "
                             f"{', '.join(map(str, sorted(history)))}")
    if target == current:
        say(f"{symbol} is already answered by model version {target}: nothing to do")
        return served.default.version
    version = new_version(manager)
    with Journal(manager.server, f"rollback {symbol} to {target}", tracking_uri, say) as steps:
        after = before.with_member(symbol, history[target])
        path = deploy.switch(manager, client, steps, served, before, after, version, policy.ready_timeout, say)
        steps.commit(path, policy.keep)
        deploy.settle(manager, str(version), path, policy.keep, say)
    say(f"{symbol} is answered by model version {target} again (served version {version})")
    return str(version)


def model_versions(manager: Management, deployed: list[int], symbol: str) -> dict[int, ServedSet]:
    """The model versions that answered `symbol` in a deployed version, each with a set that holds it."""
    history: dict[int, ServedSet] = {}
    for version, path in archives(manager.server.model_store).items():
        if version in deployed:
            found = ServedSet.read(path)
            if symbol in found.members:
                history.setdefault(int(found.bundle_of(symbol)["model_version"]), found)
    return history
