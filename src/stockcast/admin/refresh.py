"""`refresh`: bring each served ticker's price cache up to its exchange's last session (`watch.refresh`).

One line per ticker; exit status 1 when any ticker failed (its cache is left as it was) or Yahoo still lacks its
last session, 2 when refused.
"""

from __future__ import annotations

import argparse

from stockcast import ROOT
from stockcast.admin import options

HELP = "download the days each price cache lacks, up to the last trading session (for cron)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.wait(parser, "refresh")
    parser.add_argument("--stock", help="tickers separated by commas (default: every ticker the running server "
                                        "answers; when it is down, every ticker with a cache CSV in the data "
                                        "folder, configs/paths' data_dir)")


def run(args: argparse.Namespace) -> int:
    """0: every cache is up to date; 1: some ticker failed or Yahoo is behind."""
    from stockcast.config import train_groups
    from stockcast.data.download import Downloader
    from stockcast.errors import StockcastError
    from stockcast.release.retrain import served_stocks
    from stockcast.serving.server import Server
    from stockcast.watch.refresh import refresh

    downloader = Downloader(train_groups("paths").paths.data_dir)
    try:  # a running server only names the tickers: the caches are refreshed either way
        stocks = args.stock.split(",") if args.stock else served_stocks(Server.default(ROOT))
    except StockcastError as err:
        stocks = downloader.cached_symbols()
        print(f"the served tickers are unknown ({err}); refreshing every cache in {downloader.data_dir}")
    if not stocks:
        raise StockcastError(f"no price cache in {downloader.data_dir} to refresh: name the tickers with --stock")
    return 1 if any(result.failed for result in refresh(downloader, stocks, print, args.wait)) else 0
