"""`scripts/admin.py remove --stock X`: retire a ticker: the next version of the served set answers every
other ticker as before and refuses X (400, listing the served tickers). Its model's `champion` alias is
removed when no other ticker uses that model; `rollback` (without `--stock`) brings the ticker back.
"""

from __future__ import annotations

from mlflow import MlflowClient

from stockcast.cli import Say
from stockcast.errors import StockcastError
from stockcast.release import deploy, history, journal
from stockcast.release.journal import Journal
from stockcast.release.lock import LOCK, exclusive
from stockcast.release.policy import DEFAULT, Policy
from stockcast.serving.management import Management
from stockcast.serving.server import Server
from stockcast.serving.versions import new_version
from stockcast.symbols import normalize_symbol


def remove(server: Server, tracking_uri: str, stock: str, policy: Policy = DEFAULT, say: Say = print) -> str:
    """Serve the set without `stock` as the next version; returns it."""
    symbol = normalize_symbol(stock)
    manager = Management(server)
    with exclusive(server.run_dir / LOCK, policy.wait, f"remove {symbol}"):
        journal.repair(server, say)
        served = deploy.current(manager)
        history.deployed(server.run_dir, served.default.version)
        before = deploy.served_set(manager, served.default.version)
        if symbol not in before.members:
            raise StockcastError(f"{symbol} is not served: the served tickers are {', '.join(before.members)}")
        version = new_version(manager)
        with Journal(server, f"remove {symbol}", tracking_uri, say) as steps:
            path = deploy.switch(manager, MlflowClient(tracking_uri), steps, served, before, before.without(symbol),
                                 version, policy.ready_timeout, say)
            steps.commit(path, policy.keep)
            deploy.settle(manager, str(version), path, policy.keep, say)
    say(f"{symbol} is no longer served (version {version}); `make rollback` serves it again")
    return str(version)
