"""`scripts/admin.py status`: what the server serves, one row per served ticker, and each model's champion.

Read-only and lock-free: it may run while a retrain holds the lock (it then shows the state between
steps). The tickers come from the default version's own description, i.e. from the archive TorchServe
actually loaded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from stockcast.errors import StockcastError
from stockcast.release import journal, registry
from stockcast.serving.management import Management, Served
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME
from stockcast.serving.versions import archives, as_version
from stockcast.tracking import existing_store


def status(server: Server, tracking_uri: str) -> tuple[str, bool]:
    """The report, and whether the server is healthy, serves the model and no admin command was left
    half done (killed: its journal is still there)."""
    manager = Management(server)
    lines, served = _server_lines(manager)
    lines += _ticker_lines(manager, tracking_uri) if served and served.default else _champion_lines(tracking_uri)
    interrupted = journal.left(server)
    if interrupted is not None:
        lines.append(f"INTERRUPTED: {journal.describe(interrupted)}; `make repair` (or the next retrain or "
                     "rollback) undoes it")
    return "\n".join(lines), bool(served and served.default) and interrupted is None


def _server_lines(manager: Management) -> tuple[list[str], Served | None]:
    server = manager.server
    try:
        health, served = manager.health(), manager.served()
    except StockcastError as err:
        return [f"TorchServe: DOWN. {err}"], None
    pid = server.pid()
    lines = [f"TorchServe at {server.url('inference')}: {health}" + (f" (pid {pid})" if pid else "")]
    if served.default is None:
        lines.append(f"  serves no model {MODEL_NAME}: make archive, then make stop serve")
        return lines, served
    lines.append(f"  model {MODEL_NAME}: default version {served.default.version}, "
                 f"{len(served.versions)} registered (* = default)")
    on_disk = archives(server.model_store)
    for version in sorted(served.versions, key=lambda v: as_version(v.version) or 0, reverse=True):
        mark = "*" if version.version == served.default.version else " "
        workers = ", ".join(version.workers) or "none"
        number = as_version(version.version)
        kept = None if number is None else on_disk.get(number)
        lines.append(f"  {mark} version {version.version:>3}  workers {len(version.workers)} ({workers}), "
                     f"{version.pending} queued  {kept.name if kept else 'no archive on disk'}")
    spare = sorted(set(on_disk) - {as_version(v.version) for v in served.versions})
    if spare:
        lines.append(f"  archives in {server.model_store.name}/ not registered: {', '.join(map(str, spare))} "
                     "(`make rollback TO=<version>` registers one again)")
    return lines, served


def _ticker_lines(manager: Management, tracking_uri: str) -> list[str]:
    """One row per ticker the default version serves: its model, data, age, test skill and champion."""
    try:
        described = manager.description()
    except StockcastError as err:
        return [f"  cannot describe the default version: {err}"]
    champions, problem = _champions(tracking_uri, {ticker["model"] for ticker in described["stocks"].values()})
    lines = [f"  {len(described['stocks'])} ticker(s) served; requests without 'stock' get "
             f"{described['default_stock'] or 'a 400 (name one)'}",
             f"  {'ticker':<12} {'model':>5}  {'data':<23} {'trained':<10} {'age':>5}  {'skill_mape':>10} "
             f"{'skill_crps':>10}  MLflow {registry.CHAMPION}"]
    for symbol, ticker in described["stocks"].items():
        data = ticker["training_data"]
        trained = ticker.get("trained") or ""
        age = (dt.date.today() - dt.date.fromisoformat(trained[:10])).days if trained else None
        champion = champions.get(ticker["model"])
        if champion is None:
            crowned = "?" if problem else "none"
        else:
            serving = (champion.tags.get("archive_version") == ticker["model_version"]
                       and champion.run_id == ticker.get("mlflow_run_id"))
            where = "serving" if serving else "NOT serving"
            crowned = f"{champion.name} v{champion.version} ({where})"
        pooled_over = ticker.get("pooled_over") or []
        pooled = f" (pooled: {len(pooled_over)})" if pooled_over else ""
        lines.append(f"  {symbol:<12} {'v' + str(ticker['model_version']):>5}  "
                     f"{data.get('first_date', '?')}..{data.get('last_date', '?'):<11} {trained[:10]:<10} "
                     f"{'?' if age is None else f'{age} d':>5}  {_signed(ticker['test_metrics']['skill_mape']):>10} "
                     f"{_signed(ticker['range_metrics']['test']['skill_crps']):>10}  {crowned}{pooled}")
    if problem:
        lines.append(f"  MLflow {tracking_uri}: cannot read the registry: {problem}")
    return lines


def _champion_lines(tracking_uri: str) -> list[str]:
    """Without a served model: each model's champion in MLflow, what a deploy put in service last."""
    try:
        found = registry.champions(existing_store(tracking_uri))
    except (StockcastError, MlflowException) as err:
        return [f"MLflow {tracking_uri}: cannot read the registry: {getattr(err, 'message', err)}"]
    return [f"MLflow champions ({tracking_uri}): " + (", ".join(
        f"{version.name} v{version.version} (deployed as {version.tags.get('archive_version', '?')})"
        for version in found) or "none yet")]


def _champions(tracking_uri: str, models: set[str]) -> tuple[dict[str, Any], str | None]:
    try:
        client: MlflowClient = existing_store(tracking_uri)
        found = {model: registry.champion(client, model) for model in sorted(models)}
    except (StockcastError, MlflowException) as err:
        return {}, str(getattr(err, "message", err))
    return {model: version for model, version in found.items() if version is not None}, None


def _signed(value: float | None) -> str:
    return "?" if value is None else f"{value:+.4f}"
