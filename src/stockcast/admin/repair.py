"""`repair`: undo (or finish) what a killed admin command left half done, under the admin lock
(`release.command.repair`); every other command does it first itself."""

from __future__ import annotations

import argparse

from stockcast import ROOT
from stockcast.admin import options

HELP = "undo what a killed retrain or rollback left half done"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.wait(parser, "admin command")


def run(args: argparse.Namespace) -> int:
    from stockcast.release.command import repair
    from stockcast.release.lock import LOCK, exclusive
    from stockcast.serving.server import Server

    server = Server.default(ROOT)
    with exclusive(server.run_dir / LOCK, options.policy(args).wait, "repair"):
        if not repair(server, print):
            print("nothing to repair: no admin command was left half done")
    return 0
