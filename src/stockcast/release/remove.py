"""`scripts/admin.py remove --stock X`: retire a ticker: the next version of the served set answers every
other ticker as before and refuses X (400, listing the served tickers). Its model's `champion` alias is
removed when no other ticker uses that model; `rollback` (without `--stock`) brings the ticker back.
"""

from __future__ import annotations

from stockcast.cli import Say
from stockcast.errors import StockcastError
from stockcast.release.command import opened
from stockcast.release.policy import DEFAULT, Policy
from stockcast.serving.server import Server
from stockcast.symbols import normalize_symbol


def remove(server: Server, tracking_uri: str, stock: str, policy: Policy = DEFAULT, say: Say = print) -> str:
    """Serve the set without `stock` as the next version; returns it."""
    symbol = normalize_symbol(stock)
    with opened(server, f"remove {symbol}", tracking_uri, policy, say) as release:
        if symbol not in release.before.members:
            raise StockcastError(f"{symbol} is not served: the served tickers are {', '.join(release.before.members)}")
        version = release.serve(f"remove {symbol}", release.before.without(symbol))
    say(f"{symbol} is no longer served (version {version}); `make rollback` serves it again")
    return str(version)
