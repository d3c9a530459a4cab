"""`rollback`: undo the last deploy, or return one ticker to an earlier model (`release.rollback`)."""

from __future__ import annotations

import argparse

from stockcast import ROOT
from stockcast.admin import options

HELP = "undo the last deploy, or return one ticker to an earlier model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.changes(parser)
    parser.add_argument("--stock", help="return this ticker to its previous model; others stay as they are")
    parser.add_argument("--to", type=int, help="version, or with --stock the ticker's model version (default: the "
                                               "one before the current)")


def run(args: argparse.Namespace) -> int:
    from stockcast.config import train_groups
    from stockcast.release.rollback import rollback
    from stockcast.serving.server import Server

    tracking_uri = train_groups("paths", "logger").logger.tracking_uri  # the training config's MLflow store
    rollback(Server.default(ROOT), tracking_uri, args.to, args.stock, options.policy(args))
    return 0
