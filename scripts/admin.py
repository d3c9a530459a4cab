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

import argparse
import os
import signal
import sys
from pathlib import Path

from stockcast import ROOT
from stockcast.cli import user_errors_exit
from stockcast.release.policy import Policy
from stockcast.watch.daily import SCHEDULE
from stockcast.watch.drift import DriftRules


def _shared(*arguments: tuple[str, dict]) -> argparse.ArgumentParser:
    """A parent parser with these (flag, options) arguments, for the commands that take them."""
    parent = argparse.ArgumentParser(add_help=False)
    for flag, options in arguments:
        parent.add_argument(flag, **options)
    return parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = Policy()

    def wait(other: str) -> argparse.ArgumentParser:
        return _shared(("--wait", {"type": float, "default": defaults.wait,
                                   "help": f"seconds to wait for another {other} to finish (default: refuse at once)"}))

    changes = [_shared(("--keep", {"type": int, "default": defaults.keep, "help": "earlier versions kept registered "
                                   "for an instant rollback (default %(default)s)"})), wait("admin command")]
    gated = _shared(
        ("--min-skill", {"type": float, "default": defaults.min_skill,
                         "help": "quality gate: lowest skill_mape deployed (default %(default)s: at most 5 %% worse "
                                 "than the naive forecast on the test period)"}),
        ("--min-coverage", {"type": float, "default": defaults.min_coverage,
                            "help": "range gate: lowest test 80 %% interval coverage deployed (default %(default)s)"}),
        ("--max-coverage", {"type": float, "default": defaults.max_coverage,
                            "help": "range gate: highest test 80 %% interval coverage deployed (default %(default)s)"}),
        ("--min-skill-crps", {"type": float, "default": defaults.min_skill_crps,
                              "help": "range gate: lowest skill_crps vs the naive-empirical ranges "
                                      "(default %(default)s)"}))
    retrain = commands.add_parser("retrain", help="train, gate and deploy tickers into the served set",
                                  description="Extra arguments are Hydra overrides of configs/train.yaml, "
                                              "e.g. trainer.max_epochs=20 model.net.hidden=32.",
                                  parents=[gated, *changes])
    which = retrain.add_mutually_exclusive_group()
    which.add_argument("--stock", help="ticker, or tickers separated by commas (default: configs/train.yaml's, VALE3)")
    which.add_argument("--all", action="store_true", help="every ticker the server answers now")
    retrain.add_argument("--start", help="first day of data, YYYY-MM-DD (default: configs/train.yaml's)")
    retrain.add_argument("--end", help="last day of data, YYYY-MM-DD (default: today)")
    deploy = commands.add_parser("deploy", help="gate and deploy runs trained already (train.py, a sweep)",
                                 parents=[gated, *changes])
    deploy.add_argument("--run", action="append", required=True, metavar="RUN_ID", help="MLflow run (repeatable)")
    rollback = commands.add_parser("rollback", help="undo the last deploy, or return one ticker to an earlier model",
                                   parents=changes)
    rollback.add_argument("--stock", help="return this ticker to its previous model; others stay as they are")
    rollback.add_argument("--to", type=int, help="version, or with --stock the ticker's model version (default: the "
                                                 "one before the current)")
    remove = commands.add_parser("remove", help="stop serving a ticker", parents=changes)
    remove.add_argument("--stock", required=True, help="the ticker to retire")
    commands.add_parser("status", help="server health, served versions, MLflow champions")
    commands.add_parser("repair", help="undo what a killed retrain or rollback left half done",
                        parents=[wait("admin command")])
    refresh = commands.add_parser(
        "refresh", help="download the days each price cache lacks, up to the last trading session (for cron)",
        description="One line per ticker; exit status 1 when any ticker failed (its cache is left as it was) or "
                    "Yahoo still lacks its last session, 2 when refused.", parents=[wait("refresh")])
    refresh.add_argument("--stock", help="tickers separated by commas (default: every ticker the running server "
                                         "answers; when it is down, every ticker with a cache CSV in the data "
                                         "folder, configs/paths' data_dir)")
    rules = DriftRules()
    monitor = commands.add_parser(
        "monitor", help="score what was served as the closes arrive; exit 1 on drift (for cron)",
        description=f"Drift: over the last --window scored forecasts the 80 % coverage outside "
                    f"[{rules.min_coverage}, {rules.max_coverage}] or skill_crps below the retrain gate's "
                    f"{defaults.min_skill_crps}, or the served volatility beyond the training range by a factor "
                    f"{rules.vol_factor}. Exit status 1 on drift, 2 when refused.")
    monitor.add_argument("--stock", help="tickers separated by commas (default: every ticker ever deployed)")
    monitor.add_argument("--pushgateway", default=os.environ.get("STOCKCAST_PUSHGATEWAY"),
                         help="Prometheus Pushgateway URL for the latest figures (default: $STOCKCAST_PUSHGATEWAY; "
                              "none: no push)")
    replay = commands.add_parser(
        "replay", help="the daily refresh + monitor (+ retrain) over stored history, through a fake clock",
        description="Extra arguments are Hydra overrides of configs/train.yaml for every training. Works in "
                    "outputs/replay/<time>/: model_store/ and serve/ are untouched, no TorchServe starts.")
    replay.add_argument("--stock", required=True, help="tickers separated by commas")
    replay.add_argument("--start", required=True, help="first replayed day, YYYY-MM-DD (the first model is trained "
                                                       "on the days before)")
    replay.add_argument("--end", required=True, help="last replayed day, YYYY-MM-DD")
    daily = commands.add_parser("daily", help="refresh, then monitor, on a cron schedule (UTC) or once now",
                                description="Each step runs as its own admin process; with --now the exit status "
                                            "is the highest of the steps'.")
    daily.add_argument("--cron", default=SCHEDULE, help="minute hour day month weekday, in UTC (default '%(default)s')")
    daily.add_argument("--now", action="store_true", help="run the steps once now and exit")
    for command in (monitor, replay):
        command.add_argument("--window", type=int, default=rules.window,
                             help="scored forecasts the coverage and skill drift rules look at (default %(default)s)")
        command.add_argument("--retrain", action="store_true", help="retrain (gated) exactly the drifted tickers")
    return parser


def main() -> None:
    parser = _parser()
    args, overrides = parser.parse_known_args()
    if overrides and (args.command not in ("retrain", "replay") or any(o.startswith("-") for o in overrides)):
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    # `kill` as Ctrl-C: SystemExit unwinds through the deployment, which undoes its steps on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with user_errors_exit():
        if args.command == "daily":  # each step is an admin process of its own, which imports what it needs
            from stockcast.watch.daily import run_on, run_once, trigger

            if args.now:
                sys.exit(run_once(Path(__file__).resolve()))
            try:
                trigger(args.cron)
            except ValueError as err:
                parser.error(f"--cron {args.cron!r}: {err}")
            run_on(args.cron, Path(__file__).resolve())
            return
        from stockcast.config import train_groups
        from stockcast.release.command import repair
        from stockcast.release.lock import LOCK, exclusive
        from stockcast.release.remove import remove
        from stockcast.release.retrain import deploy_runs, retrain, served_stocks, summary, train_config
        from stockcast.release.rollback import rollback
        from stockcast.release.status import status
        from stockcast.serving.server import Server

        server = Server.default(ROOT)
        stores = train_groups("paths", "logger")  # where prices and MLflow runs are kept
        if args.command == "refresh":  # the price caches: a running server only names the tickers
            from stockcast.data.download import Downloader
            from stockcast.errors import StockcastError
            from stockcast.watch.refresh import refresh

            downloader = Downloader(stores.paths.data_dir)
            try:
                stocks = args.stock.split(",") if args.stock else served_stocks(server)
            except StockcastError as err:
                stocks = downloader.cached_symbols()
                print(f"the served tickers are unknown ({err}); refreshing every cache in {downloader.data_dir}")
            if not stocks:
                parser.error(f"no price cache in {downloader.data_dir} to refresh: name the tickers with --stock")
            sys.exit(1 if any(result.failed for result in refresh(downloader, stocks, print, args.wait)) else 0)
        if args.command in ("monitor", "replay"):
            sys.exit(_monitor(args, server, stores) if args.command == "monitor" else _replay(args, overrides))
        options = ("min_skill", "min_coverage", "max_coverage", "min_skill_crps", "keep", "wait")
        policy = Policy(**{name: getattr(args, name) for name in options if hasattr(args, name)})
        if args.command == "retrain":
            named = [f"{key}={value}" for key, value in (("start", args.start), ("end", args.end)) if value]
            stocks = served_stocks(server) if args.all else args.stock.split(",") if args.stock else [None]
            cfgs = [train_config([*([f"stock={stock}"] if stock else []), *named, *overrides]) for stock in stocks]
            deployed = retrain(cfgs, server, policy)
            print(f"\n{summary(deployed, server)}")
            sys.exit(3 if deployed.refused else 0)
        tracking_uri = stores.logger.tracking_uri
        if args.command == "deploy":
            deployed = deploy_runs(args.run, tracking_uri, server, policy)
            print(f"\n{summary(deployed, server)}")
            sys.exit(3 if deployed.refused else 0)
        if args.command == "rollback":
            rollback(server, tracking_uri, args.to, args.stock, policy)
            return
        if args.command == "remove":
            remove(server, tracking_uri, args.stock, policy)
            return
        if args.command == "repair":
            with exclusive(server.run_dir / LOCK, policy.wait, "repair"):
                if not repair(server, print):
                    print("nothing to repair: no admin command was left half done")
            return
        text, healthy = status(server, tracking_uri)
    print(text)
    sys.exit(0 if healthy else 1)


def _monitor(args: argparse.Namespace, server, stores) -> int:
    """The track record of the server's deployed defaults, scored; MLflow, Pushgateway, table; 1 on drift."""
    import torch

    from stockcast.data.download import Downloader
    from stockcast.release.retrain import retrain, summary, train_config
    from stockcast.symbols import normalize_symbol
    from stockcast.watch.monitor import assess, history, table, vol_ratios
    from stockcast.watch.publish import log_figures, push
    from stockcast.watch.track_record import TrackRecord

    torch.set_num_threads(1)  # thousands of tiny baseline fits: threads only add overhead
    cfg, rules, policy = stores, DriftRules(window=args.window), Policy()
    with TrackRecord(server.run_dir, server.model_store, Downloader(cfg.paths.data_dir)) as track:
        stocks = [normalize_symbol(s) for s in args.stock.split(",")] if args.stock else track.served_symbols()
        if not stocks:
            print(f"nothing to monitor: {server.run_dir / 'deployed.json'} records no deployed default yet (the "
                  "first admin command records the one serving)")
            return 2
        statuses = [assess(track, symbol, rules, policy) for symbol in stocks]
        logged = sum(log_figures(cfg.logger.tracking_uri, "serve", s, history(track.origins(s)),
                                 vol_ratios(track.origins(s))) for s in stocks)
    print(table(statuses, rules))
    print(f"MLflow: {logged} new values in experiment stockcast-monitoring ({cfg.logger.tracking_uri})")
    if args.pushgateway:
        try:
            push(args.pushgateway, statuses, rules.window)
            print(f"pushed the latest figures to {args.pushgateway}")
        except OSError as err:
            print(f"warning: cannot push to {args.pushgateway}: {err}")
    drifts = [drift for status in statuses for drift in status.drifts]
    for drift in drifts:
        print(f"DRIFT {drift.symbol} ({drift.reason}): {drift.message}")
    drifted = sorted({drift.symbol for drift in drifts})
    if drifted and args.retrain:
        print(f"retraining {', '.join(drifted)}")
        print(summary(retrain([train_config([f"stock={symbol}"]) for symbol in drifted], server, policy), server))
    return 1 if drifts else 0


def _replay(args: argparse.Namespace, overrides: list[str]) -> int:
    """The replay, its tables and wall time."""
    import datetime as dt

    from stockcast.release.retrain import train_config
    from stockcast.symbols import parse_date
    from stockcast.watch.monitor import table
    from stockcast.watch.replay import over_time, replay

    rules = DriftRules(window=args.window)
    folder = ROOT / "outputs" / "replay" / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}"
    outcome = replay(args.stock.split(","), lambda stock: train_config([f"stock={stock}", *overrides]),
                     parse_date(args.start, "--start"), parse_date(args.end, "--end"), args.retrain, rules, Policy(),
                     folder)
    print(f"\n## At the end ({outcome.days} trading days replayed)\n\n{table(outcome.statuses, rules)}")
    print("\n## 80 % coverage and skill_crps over the last 60 scored forecasts, at each quarter's end\n\n"
          f"{over_time(outcome).to_markdown()}")
    print("\n## Events\n")
    for event in outcome.events:
        print(f"- {event.day:%Y-%m-%d} {event.symbol} {event.what}: {event.detail}")
    spans = ", ".join(f"{symbol} {first:%Y-%m-%d}..{last:%Y-%m-%d}"
                      for symbol, (_, first, last) in outcome.first_model.items())
    print(f"\nfirst model's scored origins (for evaluate.py backtest.start/end): {spans}")
    print(f"initial trainings {outcome.training_seconds:.0f} s; the daily loop {outcome.seconds:.1f} s wall time "
          f"({'with' if args.retrain else 'without'} retrains); scratch folder {outcome.folder}; MLflow track "
          f"{outcome.track}")
    return 0


if __name__ == "__main__":
    main()
