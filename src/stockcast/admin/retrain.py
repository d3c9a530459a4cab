"""`retrain`: train tickers with configs/train.yaml, gate each on its own, and deploy those that passed into
the running server (`release.retrain`).

Extra arguments are Hydra overrides of configs/train.yaml, e.g. trainer.max_epochs=20 model.net.hidden=32.
"""

from __future__ import annotations

import argparse

from stockcast import ROOT
from stockcast.admin import options

HELP = "train, gate and deploy tickers into the served set"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.gate(parser)
    options.changes(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stock", help="ticker, or tickers separated by commas (default: configs/train.yaml's, VALE3)")
    which.add_argument("--all", action="store_true", help="every ticker the server answers now")
    parser.add_argument("--start", help="first day of data, YYYY-MM-DD (default: configs/train.yaml's)")
    parser.add_argument("--end", help="last day of data, YYYY-MM-DD (default: today)")
    options.overrides(parser)


def run(args: argparse.Namespace) -> int:
    """0: every ticker deployed; 3: some refused (the others deployed)."""
    from stockcast.release.retrain import retrain, served_stocks, summary, train_config
    from stockcast.serving.server import Server

    server = Server.default(ROOT)
    named = [f"{key}={value}" for key, value in (("start", args.start), ("end", args.end)) if value]
    stocks = served_stocks(server) if args.all else args.stock.split(",") if args.stock else [None]
    cfgs = [train_config([*([f"stock={stock}"] if stock else []), *named, *args.overrides]) for stock in stocks]
    deployed = retrain(cfgs, server, options.policy(args))
    print(f"\n{summary(deployed, server)}")
    return 3 if deployed.refused else 0
