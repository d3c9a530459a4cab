"""Operate the served model of a running TorchServe (`make serve`) without restarting it.

    scripts/admin.py retrain [--stock PETR4] [--start 2020-01-01] [--end 2025-07-28] [hydra overrides ...]
    scripts/admin.py status
    scripts/admin.py rollback [--to VERSION]
    scripts/admin.py repair

retrain: train with configs/train.yaml (overrides as for train.py), gate, archive the next version
into model_store/, make it the served default of `lstm`, register it in MLflow with the `champion`
alias. status: server health, registered versions, each ticker's champion. rollback: an earlier
version becomes the default again, its alias moves back. repair: undo what a killed retrain or
rollback left half done (retrain and rollback do it first themselves; status reports it). Exit status:
0 done, 2 refused or failed (nothing changed), 1 status found the server down or a command half done.
"""

import argparse
import os
import signal
import sys

from stockcast import ROOT
from stockcast.cli import user_errors_exit
from stockcast.ops.policy import Policy


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = Policy()
    retrain = commands.add_parser("retrain", help="train, gate, archive and deploy as the new default",
                                  description="Extra arguments are Hydra overrides of configs/train.yaml, "
                                              "e.g. trainer.max_epochs=20 model.net.hidden=32.")
    retrain.add_argument("--stock", help="ticker (default: configs/train.yaml's, VALE3)")
    retrain.add_argument("--start", help="first day of data, YYYY-MM-DD (default: configs/train.yaml's)")
    retrain.add_argument("--end", help="last day of data, YYYY-MM-DD (default: today)")
    retrain.add_argument("--min-skill", type=float, default=defaults.min_skill,
                         help="quality gate: lowest skill_mape deployed (default %(default)s: at most 5 %% worse "
                              "than the naive forecast on the test period)")
    retrain.add_argument("--min-coverage", type=float, default=defaults.min_coverage,
                         help="range gate: lowest test 80 %% interval coverage deployed (default %(default)s)")
    retrain.add_argument("--max-coverage", type=float, default=defaults.max_coverage,
                         help="range gate: highest test 80 %% interval coverage deployed (default %(default)s)")
    retrain.add_argument("--min-skill-crps", type=float, default=defaults.min_skill_crps,
                         help="range gate: lowest skill_crps vs the naive-empirical ranges (default %(default)s)")
    rollback = commands.add_parser("rollback", help="make an earlier version the default again")
    rollback.add_argument("--to", type=int, help="version (default: the highest below the current default)")
    for command in (retrain, rollback):
        command.add_argument("--keep", type=int, default=defaults.keep,
                             help="earlier versions kept registered for an instant rollback (default %(default)s)")
        command.add_argument("--wait", type=float, default=defaults.wait,
                             help="seconds to wait for another admin command to finish (default: refuse at once)")
    commands.add_parser("status", help="server health, served versions, MLflow champions")
    repair = commands.add_parser("repair", help="undo what a killed retrain or rollback left half done")
    repair.add_argument("--wait", type=float, default=defaults.wait,
                        help="seconds to wait for another admin command to finish (default: refuse at once)")
    refresh = commands.add_parser(
        "refresh", help="download the days each price cache lacks, up to the last trading session (for cron)",
        description="One line per ticker; exit status 1 when any ticker failed (its cache is left as it was) or "
                    "Yahoo still lacks its last session, 2 when refused.")
    refresh.add_argument("--stock", help="tickers separated by commas (default: every ticker with a cache CSV in "
                                         "the data folder, configs/paths' data_dir)")
    refresh.add_argument("--wait", type=float, default=defaults.wait,
                         help="seconds to wait for another refresh to finish (default: refuse at once)")
    return parser


def main() -> None:
    parser = _parser()
    args, overrides = parser.parse_known_args()
    if overrides and (args.command != "retrain" or any(o.startswith("-") for o in overrides)):
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    # `kill` as Ctrl-C: SystemExit unwinds through the deployment, which undoes its steps on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with user_errors_exit():
        from stockcast.config import load_config
        from stockcast.ops.journal import repair
        from stockcast.ops.lock import LOCK, exclusive
        from stockcast.ops.retrain import retrain, summary, train_config
        from stockcast.ops.rollback import rollback
        from stockcast.ops.status import status
        from stockcast.serving.server import Server

        if args.command == "refresh":  # the price caches only: no server needed
            from stockcast.data.download import Downloader
            from stockcast.ops.refresh import refresh

            downloader = Downloader(load_config("train").paths.data_dir)
            stocks = args.stock.split(",") if args.stock else downloader.cached_symbols()
            if not stocks:
                parser.error(f"no price cache in {downloader.data_dir} to refresh: name the tickers with --stock")
            sys.exit(1 if any(result.failed for result in refresh(downloader, stocks, print, args.wait)) else 0)
        server = Server.default(ROOT)
        options = ("min_skill", "min_coverage", "max_coverage", "min_skill_crps", "keep", "wait")
        policy = Policy(**{name: getattr(args, name) for name in options if hasattr(args, name)})
        if args.command == "retrain":
            named = [f"{key}={value}" for key, value in (("stock", args.stock), ("start", args.start),
                                                         ("end", args.end)) if value]
            deployed = retrain(train_config([*named, *overrides]), server, policy)
            print(f"\n{summary(deployed, server)}")
            return
        tracking_uri = load_config("train").logger.tracking_uri
        if args.command == "rollback":
            rollback(server, tracking_uri, args.to, policy)
            return
        if args.command == "repair":
            with exclusive(server.run_dir / LOCK, policy.wait, "repair"):
                if not repair(server, print):
                    print("nothing to repair: no admin command was left half done")
            return
        text, healthy = status(server, tracking_uri)
    print(text)
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
