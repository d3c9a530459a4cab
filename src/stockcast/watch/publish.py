"""Where the monitor's figures go besides the printed table: MLflow (their history) and a Prometheus Pushgateway
(the latest, for the dashboard and the alert rules in monitoring/prometheus/drift_rules.yml), the watched
portfolios' VaR figures beside the tickers'.

MLflow: experiment `stockcast-monitoring`, one run per ticker, model version and track (`serve`, or a
replay's own), found again by its tags; each figure is stepped by the day it was computed on (days since
1970-01-01, the metric's timestamp that day), and a run's tag `logged_through` keeps a daily monitor from
logging a day twice.

Pushgateway: a plain HTTP PUT of the text exposition format to `<url>/metrics/job/stockcast_monitor`, which
replaces the job's previous push (a ticker no longer served disappears); no client library needed. The
metric names are a contract with the alert rules and the dashboard: keep them stable.
"""

from __future__ import annotations

import urllib.request

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric

from stockcast.metrics import ZONES
from stockcast.tracking import prepare_store
from stockcast.watch.monitor import FIGURES, REASONS, Status
from stockcast.watch.portfolio_risk import LEVEL, ZONE_DAYS, RiskStatus

EXPERIMENT = "stockcast-monitoring"
JOB = "stockcast_monitor"
EPOCH = pd.Timestamp("1970-01-01")


def log_figures(tracking_uri: str, track: str, symbol: str, figures: pd.DataFrame,
                vol_ratios: pd.DataFrame) -> int:
    """Log the figures (one row per day, a `model_version` column) and the served windows' volatility ratios
    (`model_version`, `vol_ratio`, indexed by origin date) newer than each run's `logged_through`; the number
    of values logged."""
    client = MlflowClient(prepare_store(tracking_uri, EXPERIMENT))
    store = client.get_experiment_by_name(EXPERIMENT)
    assert store is not None  # prepare_store created it
    experiment = store.experiment_id
    logged = 0
    for version in sorted(set(figures["model_version"]) | set(vol_ratios["model_version"]), key=str):
        tags = {"symbol": symbol, "model_version": str(version), "track": track}
        found = client.search_runs([experiment], " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items()))
        run = found[0] if found else client.create_run(experiment, run_name=f"{symbol} v{version} ({track})", tags=tags)
        since = pd.Timestamp(run.data.tags.get("logged_through", "1900-01-01"))
        own = figures[(figures["model_version"] == version) & (figures.index > since)].drop(columns="model_version")
        vols = vol_ratios[(vol_ratios["model_version"] == version) & (vol_ratios.index > since)]
        metrics = [_metric(name, value, day) for day, row in own.iterrows() for name, value in row.items()
                   if pd.notna(value)]
        metrics += [_metric("input_vol_ratio", ratio, day) for day, ratio in vols["vol_ratio"].items()]
        client.log_batch(run.info.run_id, metrics=metrics)  # MLflow splits it into batches its store takes
        newest = max([*own.index, *vols.index], default=None)
        if newest is not None:
            client.set_tag(run.info.run_id, "logged_through", f"{newest:%Y-%m-%d}")
        logged += len(metrics)
    return logged


def log_portfolio(tracking_uri: str, track: str, name: str, days: pd.DataFrame) -> int:
    """Log a watched portfolio's scored days (date, var, pnl, exception) newer than its run's `logged_through`,
    with the exceptions over the last ZONE_DAYS; the number of values logged."""
    client = MlflowClient(prepare_store(tracking_uri, EXPERIMENT))
    store = client.get_experiment_by_name(EXPERIMENT)
    assert store is not None  # prepare_store created it
    tags = {"portfolio": name, "track": track}
    found = client.search_runs([store.experiment_id], " and ".join(f"tags.{key} = '{value}'"
                                                                     for key, value in tags.items()))
    run = found[0] if found else client.create_run(store.experiment_id, run_name=f"portfolio {name} ({track})",
                                                   tags=tags)
    since = pd.Timestamp(run.data.tags.get("logged_through", "1900-01-01"))
    days = days.assign(exceptions=days.exception.astype(float).rolling(ZONE_DAYS, min_periods=1).sum())
    new = days[days.date > since]
    metrics = [_metric(key, float(row[column]), row.date) for _, row in new.iterrows()
               for key, column in (("var_99", "var"), ("pnl", "pnl"), ("exception", "exception"),
                                   (f"exceptions_{ZONE_DAYS}", "exceptions"))]
    client.log_batch(run.info.run_id, metrics=metrics)
    if not new.empty:
        client.set_tag(run.info.run_id, "logged_through", f"{new.date.iloc[-1]:%Y-%m-%d}")
    return len(metrics)


def _metric(name: str, value: float, day: pd.Timestamp) -> Metric:
    return Metric(name, float(value), int(day.tz_localize("UTC").timestamp() * 1000), (day - EPOCH).days)


def exposition(statuses: list[Status], window: int, risks: list[RiskStatus] | None = None) -> str:
    """The latest figures of each ticker's serving version, and of each watched portfolio's VaR, in Prometheus'
    text format."""
    gauges: dict[str, list[str]] = {}

    def add(name: str, value: float | None, **labels: str) -> None:
        if value is not None and pd.notna(value):
            text = ",".join(f'{key}="{value}"' for key, value in labels.items())
            gauges.setdefault(name, []).append(f"{name}{{{text}}} {float(value):.10g}")

    for status in statuses:
        ticker = {"ticker": status.symbol, "model_version": status.model_version}
        for label, suffix in {str(window): f"last{window}", "60": "60", "all": "all"}.items():
            for figure in FIGURES:
                add(f"stockcast_{figure}", status.latest.get(f"{figure}_{suffix}"), **ticker, window=label)
        add("stockcast_scored_origins", status.scored, **ticker)
        add("stockcast_input_vol_ratio", status.vol_ratio, **ticker)
        for bound, value in zip(("low", "high"), status.vol_range, strict=True):
            add("stockcast_input_vol_bound", value, **ticker, bound=bound)
        drifted = {drift.reason for drift in status.drifts}
        for reason in REASONS:
            add("stockcast_drift", float(reason in drifted), ticker=status.symbol, reason=reason)
    for risk in risks or []:
        portfolio = {"portfolio": risk.name}
        add("stockcast_portfolio_scored_days", risk.scored, **portfolio)
        add("stockcast_portfolio_var_exceptions", risk.exceptions, **portfolio, level=f"{LEVEL:g}",
            window=str(ZONE_DAYS))
        add("stockcast_portfolio_kupiec_p", risk.kupiec_p, **portfolio, level=f"{LEVEL:g}", window=str(ZONE_DAYS))
        add("stockcast_portfolio_var", risk.last_var, **portfolio, level=f"{LEVEL:g}")
        for zone in ZONES if risk.zone else ():
            add("stockcast_portfolio_zone", float(risk.zone == zone), **portfolio, zone=zone)
    return "".join(f"# TYPE {name} gauge\n" + "\n".join(lines) + "\n" for name, lines in gauges.items())


def push(url: str, statuses: list[Status], window: int, risks: list[RiskStatus] | None = None,
         timeout: float = 10.0) -> None:
    """Replace the job's metrics in the Pushgateway at `url` (raises OSError when it cannot)."""
    body = exposition(statuses, window, risks).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/metrics/job/{JOB}", data=body,
                                     method="PUT", headers={"Content-Type": "text/plain; version=0.0.4"})
    with urllib.request.urlopen(request, timeout=timeout):
        pass
