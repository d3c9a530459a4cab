"""`monitor`: score what the running server served as the closes arrive, publish the figures, and call drift
(`watch.live`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from stockcast import ROOT
from stockcast.admin import options
from stockcast.release.policy import DEFAULT
from stockcast.watch.drift import DriftRules

HELP = "score what was served as the closes arrive; exit 1 on drift (for cron)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rules = DriftRules()
    parser.description = (f"Drift: over the last --window scored forecasts the 80 % coverage outside "
                          f"[{rules.min_coverage}, {rules.max_coverage}] or skill_crps below the retrain gate's "
                          f"{DEFAULT.min_skill_crps}, or the served volatility beyond the training range by a factor "
                          f"{rules.vol_factor}. Exit status 1 on drift, 2 when refused.")
    parser.add_argument("--stock", help="tickers separated by commas (default: every ticker ever deployed)")
    parser.add_argument("--pushgateway", default=os.environ.get("STOCKCAST_PUSHGATEWAY"),
                        help="Prometheus Pushgateway URL for the latest figures (default: $STOCKCAST_PUSHGATEWAY; "
                             "none: no push)")
    options.drift(parser)


def run(args: argparse.Namespace) -> int:
    """0: no drift; 1: drift; 2: nothing deployed to monitor."""
    from stockcast.config import train_groups
    from stockcast.serving.server import Server
    from stockcast.watch.live import monitor
    from stockcast.watch.monitor import Settings

    stores = train_groups("paths", "logger")
    settings = Settings(DriftRules(window=args.window), DEFAULT, args.retrain)
    return monitor(Server.default(ROOT), Path(stores.paths.data_dir), stores.logger.tracking_uri,
                   args.stock.split(",") if args.stock else None, settings, args.pushgateway)
