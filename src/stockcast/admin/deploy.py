"""`deploy`: gate and deploy runs trained already (train.py, a sweep) into the running server, as `retrain`
does without its training (`release.retrain.deploy_runs`)."""

from __future__ import annotations

import argparse

from stockcast import ROOT
from stockcast.admin import options

HELP = "gate and deploy runs trained already (train.py, a sweep)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.gate(parser)
    options.changes(parser)
    parser.add_argument("--run", action="append", required=True, metavar="RUN_ID", help="MLflow run (repeatable)")


def run(args: argparse.Namespace) -> int:
    """0: every run deployed; 3: some refused (the others deployed)."""
    from stockcast.config import train_groups
    from stockcast.release.retrain import deploy_runs, summary
    from stockcast.serving.server import Server

    server = Server.default(ROOT)
    tracking_uri = train_groups("paths", "logger").logger.tracking_uri  # the training config's MLflow store
    deployed = deploy_runs(args.run, tracking_uri, server, options.policy(args))
    print(f"\n{summary(deployed, server)}")
    return 3 if deployed.refused else 0
