"""`scripts/admin.py status`: what the server serves, what the model store holds, each ticker's champion.

Read-only and lock-free: it may run while a retrain holds the lock (it then shows the state between
steps). The tickers of registered versions come from their handlers' descriptions, i.e. from the
archives TorchServe actually loaded.
"""

from __future__ import annotations

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from stockcast.errors import StockcastError
from stockcast.ops import journal, registry
from stockcast.serving.management import Management, Served
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME
from stockcast.serving.versions import archives, as_version
from stockcast.tracking import existing_store


def status(server: Server, tracking_uri: str) -> tuple[str, bool]:
    """The report, and whether the server is healthy, serves the model and no admin command was left
    half done (killed: its journal is still there)."""
    lines, served = _server_lines(server)
    lines += _champion_lines(tracking_uri, served.default.version if served and served.default else None)
    interrupted = journal.left(server)
    if interrupted is not None:
        lines.append(f"INTERRUPTED: {journal.describe(interrupted)}; `make repair` (or the next retrain or "
                     "rollback) undoes it")
    return "\n".join(lines), bool(served and served.default) and interrupted is None


def _server_lines(server: Server) -> tuple[list[str], Served | None]:
    manager = Management(server)
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
        try:
            described = manager.description(version.version)
            symbol, run_id = described["stock"], described.get("mlflow_run_id")
        except (StockcastError, KeyError, IndexError):
            symbol, run_id = "?", "?"
        mark = "*" if version.version == served.default.version else " "
        workers = ", ".join(version.workers) or "none"
        kept = on_disk.get(as_version(version.version))
        lines.append(f"  {mark} version {version.version:>3}  {symbol:<12} workers {len(version.workers)} ({workers}), "
                     f"{version.pending} queued  {kept.name if kept else 'no archive on disk'}  run {run_id}")
    spare = sorted(set(on_disk) - {as_version(v.version) for v in served.versions})
    if spare:
        lines.append(f"  archives in {server.model_store.name}/ not registered: {', '.join(map(str, spare))} "
                     "(`make rollback TO=<version>` registers one again)")
    return lines, served


def _champion_lines(tracking_uri: str, served_version: str | None) -> list[str]:
    try:
        client = existing_store(tracking_uri)
        found = [(version, client.get_run(version.run_id)) for version in registry.champions(client)]
    except (StockcastError, MlflowException) as err:
        return [f"MLflow {tracking_uri}: cannot read the registry: {getattr(err, 'message', err)}"]
    lines = [f"MLflow champions ({tracking_uri}):"]
    if not found:
        lines.append("  none yet: `make retrain` registers one")
    for version, run in found:
        lines.append(_champion_line(version, run.data.metrics, served_version))
    return lines


def _champion_line(version: ModelVersion, metrics: dict[str, float], served_version: str | None) -> str:
    archived = version.tags.get("archive_version", "?")
    where = ("TorchServe is down" if served_version is None else
             "served now" if archived == served_version else "not the served default")
    scores = (f"test MAPE {metrics['test_mape']:.3f} % vs naive {metrics['naive_mape']:.3f} % (skill "
              f"{metrics['skill_mape']:+.4f})" if {"test_mape", "naive_mape", "skill_mape"} <= set(metrics) else
              "no test metrics")
    return (f"  {version.name} version {version.version} = TorchServe version {archived} ({where}): data "
            f"{version.tags.get('start', '?')}..{version.tags.get('end', '?')}, {scores}, run {version.run_id}")
