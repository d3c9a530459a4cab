"""`replay`: the daily refresh and monitor (and retrain) over stored history, through a fake clock, in a
scratch folder of its own (`watch.replay`).

Extra arguments are Hydra overrides of configs/train.yaml for every training. Works in outputs/replay/<time>/:
model_store/ and serve/ are untouched, no TorchServe starts.
"""

from __future__ import annotations

import argparse
import datetime as dt

from stockcast import ROOT
from stockcast.admin import options

HELP = "the daily refresh + monitor (+ retrain) over stored history, through a fake clock"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stock", required=True, help="tickers separated by commas")
    parser.add_argument("--start", required=True, help="first replayed day, YYYY-MM-DD (the first model is trained "
                                                       "on the days before)")
    parser.add_argument("--end", required=True, help="last replayed day, YYYY-MM-DD")
    options.drift(parser)
    options.overrides(parser)


def run(args: argparse.Namespace) -> int:
    from stockcast.release.policy import DEFAULT
    from stockcast.release.retrain import train_config
    from stockcast.symbols import parse_date
    from stockcast.watch.drift import DriftRules
    from stockcast.watch.replay import replay, summary

    folder = ROOT / "outputs" / "replay" / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}"
    outcome = replay(args.stock.split(","), lambda stock: train_config([f"stock={stock}", *args.overrides]),
                     parse_date(args.start, "--start"), parse_date(args.end, "--end"), args.retrain,
                     DriftRules(window=args.window), DEFAULT, folder)
    print(summary(outcome))
    return 0
