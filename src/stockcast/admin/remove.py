"""`remove`: stop serving a ticker, every other one answered as before (`release.remove`)."""

from __future__ import annotations

import argparse

from stockcast import ROOT
from stockcast.admin import options

HELP = "stop serving a ticker"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.changes(parser)
    parser.add_argument("--stock", required=True, help="the ticker to retire")


def run(args: argparse.Namespace) -> int:
    from stockcast.config import train_groups
    from stockcast.release.remove import remove
    from stockcast.serving.server import Server

    tracking_uri = train_groups("paths", "logger").logger.tracking_uri  # the training config's MLflow store
    remove(Server.default(ROOT), tracking_uri, args.stock, options.policy(args))
    return 0
