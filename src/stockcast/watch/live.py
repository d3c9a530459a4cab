"""`scripts/admin.py monitor`: the monitor's check (`watch.monitor.check`) on the running server's record.

The track record of every default the server was deployed with (`serve/deployed.json`) is recomputed from
the archives and the price caches; each ticker's figures go to MLflow (track `serve`) and, given its URL, to a
Prometheus Pushgateway, with the watched portfolios' served VaR scored (`watch.portfolio_risk`); a table is printed,
each drift said; the drifted tickers are retrained into the
running server (`release.retrain`, gated as ever) when the settings say so.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stockcast import ROOT
from stockcast.cli import Say
from stockcast.data.download import Downloader
from stockcast.release.retrain import retrain, summary, train_config
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_CONFIG
from stockcast.symbols import normalize_symbol
from stockcast.watch import portfolio_risk
from stockcast.watch.monitor import Settings, Status, check, history, table, vol_ratios
from stockcast.watch.publish import EXPERIMENT, log_figures, log_portfolio, push
from stockcast.watch.track_record import TrackRecord

TRACK = "serve"  # the MLflow track of the served figures (a replay logs under its own)
WATCHED = ROOT / "monitoring" / "portfolios.yaml"  # the portfolios whose served VaR is scored


def monitor(server: Server, data_dir: Path, tracking_uri: str, stocks: list[str] | None, settings: Settings,
            pushgateway: str | None = None, say: Say = print) -> int:
    """Check `stocks` (default: every ticker a recorded default served); the exit status: 0 no drift, 1 drift,
    2 nothing to monitor yet."""
    torch.set_num_threads(1)  # thousands of tiny baseline fits: threads only add overhead
    with TrackRecord(server.run_dir, server.model_store, Downloader(data_dir)) as track:
        symbols = [normalize_symbol(stock) for stock in stocks] if stocks else track.served_symbols()
        if not symbols:
            say(f"nothing to monitor: {server.run_dir / 'deployed.json'} records no deployed default yet (the "
                "first admin command records the one serving)")
            return 2

        def report(statuses: list[Status]) -> None:
            logged = sum(log_figures(tracking_uri, TRACK, symbol, history(track.origins(symbol)),
                                     vol_ratios(track.origins(symbol))) for symbol in symbols)
            say(table(statuses, settings.rules))
            risks = []
            scores = portfolio_risk.PortfolioScores(track, portfolio_risk.sampler(MODEL_CONFIG))
            listed = portfolio_risk.watched(WATCHED) if WATCHED.exists() else {}
            if not WATCHED.exists():
                say(f"no watched portfolios: {WATCHED} is absent, no portfolio's VaR is scored")
            for name, positions in listed.items():
                missing = sorted(set(positions) - set(track.served_symbols()))
                if missing:
                    say(f"portfolio {name}: not scored, {', '.join(missing)} never served")
                    continue
                risks.append(scores.status(name, positions))
                logged += log_portfolio(tracking_uri, TRACK, name, scores.days(name, positions))
            if risks:
                say(portfolio_risk.table(risks))
            say(f"MLflow: {logged} new values in experiment {EXPERIMENT} ({tracking_uri})")
            if pushgateway:
                try:
                    push(pushgateway, statuses, settings.rules.window, risks)
                    say(f"pushed the latest figures to {pushgateway}")
                except OSError as err:
                    say(f"warning: cannot push to {pushgateway}: {err}")
            for status in statuses:
                for drift in status.drifts:
                    say(f"DRIFT {drift.symbol} ({drift.reason}): {drift.message}")

        def retrain_drifted(drifted: list[Status]) -> None:
            tickers = sorted({status.symbol for status in drifted})
            say(f"retraining {', '.join(tickers)}")
            deployed = retrain([train_config([f"stock={ticker}"]) for ticker in tickers], server, settings.policy)
            say(summary(deployed, server))

        statuses = check(track, symbols, settings, report, retrain_drifted)
    return 1 if any(status.drifts for status in statuses) else 0
