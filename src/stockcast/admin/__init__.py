"""Operate the served tickers of a running TorchServe (`make serve`) without restarting it.

    scripts/admin.py retrain [--stock PETR4[,VALE3...] | --all] [--start 2020-01-01] [--end 2025-07-28] [overrides]
    scripts/admin.py deploy --run RUN_ID [--run RUN_ID ...]
    scripts/admin.py status
    scripts/admin.py rollback [--stock PETR4] [--to VERSION]
    scripts/admin.py remove --stock PETR4
    scripts/admin.py repair
    scripts/admin.py refresh [--stock PETR4,VALE3]
    scripts/admin.py monitor [--stock PETR4,VALE3] [--window 20] [--retrain] [--pushgateway URL]
    scripts/admin.py replay --stock VALE3,PETR4 --start 2024-01-01 --end 2025-11-07 [--retrain] [overrides]
    scripts/admin.py daily [--cron "30 22 * * mon-fri"] [--now]

retrain: train each ticker with configs/train.yaml (overrides as for train.py), gate each on its own,
and deploy those that passed as the next version of the served set (every other ticker's model
unchanged), registered in MLflow with the `champion` alias. deploy: the same for runs trained
already. status: server health, registered versions, one row per served ticker. rollback: undo the
most recent deploy (the previous version becomes the default again), or with --stock return one
ticker to its previous model (or its model version --to). remove: stop serving a ticker. repair:
undo what a killed command left half done (the others do it first themselves; status reports it).
refresh: bring each served ticker's price cache up to its exchange's last session (watch/refresh.py).
monitor: recompute what each ticker was served since its model became the default, score the forecasts
whose closes arrived (coverage, CRPS and MAPE skill over the last 20 and 60 of them), log them to MLflow,
push them to a Pushgateway, print a table; drift (coverage outside its band, CRPS skill below the retrain
gate, the served volatility far outside the training range) exits 1, and --retrain retrains exactly the
drifted tickers. replay: the same loop, with the daily refresh, over stored history through a fake clock
(watch/replay.py). daily: refresh, then monitor, at the times a cron line names (UTC), or --now once
(watch/daily.py; compose.yaml's `daily` service). Exit status: 0 done, 2 refused or failed (nothing
changed), 3 retrain or deploy deployed some tickers and refused others, 1 status found the server down or
a command half done, or refresh failed for a ticker (its cache kept) or found Yahoo behind, or monitor
found drift; daily --now: the highest of its steps'.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from stockcast.admin import daily, deploy, monitor, refresh, remove, repair, replay, retrain, rollback, status
from stockcast.cli import user_errors_exit

# One module per command, named as the command, in --help's order: each has HELP (its line in --help), its
# docstring (the command's --help description), add_arguments(parser) and run(args) -> exit status.
COMMANDS = (retrain, deploy, rollback, remove, status, repair, refresh, monitor, replay, daily)


def parser() -> argparse.ArgumentParser:
    """The command line: the module docstring above the subcommands, one per module of COMMANDS."""
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = cli.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        subparser = commands.add_parser(command.__name__.rpartition(".")[2], help=command.HELP,
                                        description=command.__doc__)
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return cli


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names (default: the process's arguments); its exit status (module docstring)."""
    cli = parser()
    args, overrides = cli.parse_known_args(argv)
    if overrides and ("overrides" not in args or any(override.startswith("-") for override in overrides)):
        cli.error(f"unrecognized arguments: {' '.join(overrides)}")
    args.overrides = overrides
    # `kill` as Ctrl-C: SystemExit unwinds through the deployment, which undoes its steps on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with user_errors_exit():
        return args.run(args)
