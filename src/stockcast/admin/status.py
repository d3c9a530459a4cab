"""`status`: the server's health, its registered versions, one row per served ticker (`release.status`)."""

from __future__ import annotations

import argparse

from stockcast import ROOT

HELP = "server health, served versions, MLflow champions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments: status only reads."""


def run(args: argparse.Namespace) -> int:
    """0: healthy; 1: the server is down or an admin command was left half done."""
    from stockcast.config import train_groups
    from stockcast.release.status import status
    from stockcast.serving.server import Server

    tracking_uri = train_groups("paths", "logger").logger.tracking_uri  # the training config's MLflow store
    text, healthy = status(Server.default(ROOT), tracking_uri)
    print(text)
    return 0 if healthy else 1
