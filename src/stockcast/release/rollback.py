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

from pathlib import Path

from stockcast.cli import Say
from stockcast.errors import StockcastError
from stockcast.release import history, switching
from stockcast.release.command import Release, opened
from stockcast.release.policy import DEFAULT, Policy, rollback_target
from stockcast.serving.archive import ServedSet
from stockcast.serving.server import Server
from stockcast.serving.versions import archives
from stockcast.symbols import normalize_symbol


def rollback(server: Server, tracking_uri: str, to: int | None = None, stock: str | None = None,
             policy: Policy = DEFAULT, say: Say = print) -> str:
    """Module docstring; returns the version serving afterwards."""
    doing = f"rollback {stock or ''} to {to or 'the previous version'}"
    with opened(server, doing, tracking_uri, policy, say) as release:
        if stock is not None:
            return _ticker(release, normalize_symbol(stock), to)
        default = release.served.default.version
        on_disk = archives(server.model_store)
        target = to or history.previous(server.run_dir, default)
        if target not in on_disk:
            raise StockcastError(f"unknown version {target}: archives in {server.model_store}: "
                                 f"{', '.join(map(str, sorted(on_disk))) or 'none'}")
        if target not in release.deployed:
            raise StockcastError(f"version {target} was never deployed (it did not pass the gate, or its retrain "
                                 f"was stopped): deployed versions are {', '.join(map(str, release.deployed))}")
        if str(target) == default:
            say(f"version {target} is already the default: nothing to do")
            return str(target)
        with release.journaled(f"rollback to {target}") as steps:
            switching.activate(release.manager, steps, release.served, str(target), on_disk[target],
                               policy.ready_timeout, say)
            after = ServedSet.read(on_disk[target])
            say(f"changed: {', '.join(release.before.changed(after)) or 'none'}")
            switching.crown_set(release.client, steps, release.before, after, say)
            release.commit(target, on_disk[target])
    return str(target)


def _ticker(release: Release, symbol: str, to: int | None) -> str:
    """The next served set with `symbol` answered by its model version `to` (default: the one before)."""
    before = release.before
    if symbol not in before.members:
        raise StockcastError(f"{symbol} is not served: the served tickers are {', '.join(before.members)}")
    held = model_versions(release.manager.server.model_store, release.deployed, symbol)
    current = int(str(before.bundle_of(symbol).version))
    target = rollback_target(current, sorted(held), to)
    if target not in held:
        raise StockcastError(f"{symbol} never served model version {target}: its deployed model versions are "
                             f"{', '.join(map(str, sorted(held)))}")
    if target == current:
        release.say(f"{symbol} is already answered by model version {target}: nothing to do")
        return release.served.default.version
    version = release.serve(f"rollback {symbol} to {target}", before.with_member(symbol, held[target]))
    release.say(f"{symbol} is answered by model version {target} again (served version {version})")
    return str(version)


def model_versions(model_store: Path, deployed: list[int], symbol: str) -> dict[int, ServedSet]:
    """The model versions that answered `symbol` in a deployed version, each with a set that holds it."""
    found: dict[int, ServedSet] = {}
    for version, path in archives(model_store).items():
        if version in deployed:
            served = ServedSet.read(path)
            if symbol in served.members:
                found.setdefault(int(str(served.bundle_of(symbol).version)), served)
    return found
