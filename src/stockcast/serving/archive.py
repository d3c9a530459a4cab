"""`make archive`: a finished training run's bundle -> `model_store/lstm.mar`, self-contained for TorchServe.

The archive holds the handler, the bundle's `net.py` and `model.pt`, and its `metadata.json` extended
with the model version and the exchanges' trading sessions. The version is the run's version in the
MLflow model registry (`stockcast-<SYMBOL>`), so it increases with each newly archived run and leads
back to the run that produced it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from stockcast.bundle import METADATA, MODEL_FILE, WEIGHTS
from stockcast.errors import StockcastError
from stockcast.serving.sessions import trading_calendar
from stockcast.serving.settings import MODEL_NAME
from stockcast.tracking import find_run


@dataclass(frozen=True)
class Archived:
    """What `make archive` produced."""

    path: Path
    version: str
    run_id: str
    symbol: str


def model_version(client: MlflowClient, run: Run) -> str:
    """The run's version in the registry, registering it as the next version if it is new."""
    name = f"stockcast-{run.data.tags['symbol']}"
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'")
    if existing:
        return str(min(int(version.version) for version in existing))
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name, description=f"stockcast forecaster of {run.data.tags['symbol']}")
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}/{run.data.tags['bundle']}",
                                          run_id=run.info.run_id, description="archived for TorchServe")
    return str(version.version)


def archive(tracking_uri: str, experiment: str, symbol: str, model_store: Path, handler: Path, model_config: Path,
            run_id: str | None = None) -> Archived:
    """Find the run, version it, and write `<model_store>/lstm.mar` (replaced atomically)."""
    store = tracking_uri.removeprefix("sqlite:///")
    if store != tracking_uri and not Path(store).is_file():
        raise StockcastError(f"no MLflow store at {store}: train a model first (make train)")
    client = MlflowClient(tracking_uri)
    run = find_run(client, experiment, symbol, run_id)
    try:
        version = model_version(client, run)
    except MlflowException as err:
        raise StockcastError(f"cannot register run {run.info.run_id} in the model registry of {tracking_uri}: "
                             f"{err.message}") from None
    model_store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_store, prefix=".archive-") as work:
        bundle = Path(client.download_artifacts(run.info.run_id, run.data.tags["bundle"], work))
        metadata = json.loads((bundle / METADATA).read_text())
        metadata["model_version"] = version
        metadata["archived"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        first_day = dt.date.fromisoformat(metadata["data"]["first_date"])
        metadata["calendar"] = trading_calendar(metadata.get("stocks") or [metadata["symbol"]], first_day)
        (bundle / METADATA).write_text(json.dumps(metadata, indent=1))
        _package(bundle, version, handler, model_config, Path(work))
        target = model_store / f"{MODEL_NAME}.mar"
        os.replace(Path(work) / f"{MODEL_NAME}.mar", target)
    return Archived(target, version, run.info.run_id, metadata["symbol"])


def _package(bundle: Path, version: str, handler: Path, model_config: Path, export_path: Path) -> None:
    """torch-model-archiver, in process."""
    from model_archiver.model_archiver_config import ModelArchiverConfig
    from model_archiver.model_archiver_error import ModelArchiverError
    from model_archiver.model_packaging import generate_model_archive

    config = ModelArchiverConfig(model_name=MODEL_NAME, handler=str(handler), version=version,
                                 serialized_file=str(bundle / WEIGHTS), model_file=str(bundle / MODEL_FILE),
                                 extra_files=str(bundle / METADATA), config_file=str(model_config),
                                 export_path=str(export_path), force=True)
    try:
        generate_model_archive(config)
    except ModelArchiverError as err:
        raise StockcastError(f"torch-model-archiver failed: {err}") from None
