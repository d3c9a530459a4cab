"""`daily`: the refresh, then the monitor, at the times a cron line names (UTC), or once now (`watch.daily`;
compose.yaml's `daily` service).

Each step runs as its own admin process; with --now the exit status is the highest of the steps'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stockcast.errors import StockcastError
from stockcast.watch.daily import SCHEDULE, run_on, run_once, trigger

HELP = "refresh, then monitor, on a cron schedule (UTC) or once now"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cron", default=SCHEDULE,
                        help="minute hour day month weekday, in UTC (default '%(default)s')")
    parser.add_argument("--now", action="store_true", help="run the steps once now and exit")


def run(args: argparse.Namespace) -> int:
    """Each step runs as the entry point this process was started as (scripts/admin.py, stockcast-admin), so
    it imports only what it needs; with --now, the highest of the steps' exit statuses."""
    admin = Path(sys.argv[0]).resolve()
    if args.now:
        return run_once(admin)
    try:
        trigger(args.cron)
    except ValueError as err:
        raise StockcastError(f"--cron {args.cron!r}: {err}") from None
    run_on(args.cron, admin)
    return 0
