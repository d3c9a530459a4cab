"""`make archive`: a finished training run's bundle -> `model_store/lstm.mar`, self-contained for TorchServe.

The archive holds the handler, the bundle's `net.py` and `model.pt`, and its `metadata.json` extended
with the model version and the exchanges' trading sessions. The version is the next of the model
store's one series (`versions.py`), since the served name stays `lstm` whatever the ticker.
Archiving records nothing in MLflow: a model version is registered when one is deployed
(`scripts/admin.py retrain`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stockcast import bundle as bundle_module
from stockcast.bundle import METADATA, MODEL_FILE, WEIGHTS
from stockcast.errors import StockcastError
from stockcast.serving.sessions import trading_calendar
from stockcast.serving.settings import MODEL_NAME
from stockcast.serving.versions import next_version
from stockcast.tracking import existing_store, find_run


@dataclass(frozen=True)
class Archived:
    """What `make archive` produced."""

    path: Path
    version: int
    run_id: str
    symbol: str


def archive(tracking_uri: str, experiment: str, symbol: str, model_store: Path, handler: Path, model_config: Path,
            run_id: str | None = None, version: int | None = None, file_name: str = f"{MODEL_NAME}.mar") -> Archived:
    """Find the run and write it as `<model_store>/<file_name>` (replaced atomically), as `version`
    (default: the next after the store's archives)."""
    client = existing_store(tracking_uri)
    run = find_run(client, experiment, symbol, run_id)
    version = version or next_version(model_store)
    model_store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_store, prefix=".archive-") as work:
        bundle = Path(client.download_artifacts(run.info.run_id, run.data.tags["bundle"], work))
        metadata = json.loads((bundle / METADATA).read_text())
        metadata["model_version"] = str(version)
        metadata["archived"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        first_day = dt.date.fromisoformat(metadata["data"]["first_date"])
        metadata["calendar"] = trading_calendar(metadata.get("stocks") or [metadata["symbol"]], first_day)
        (bundle / METADATA).write_text(json.dumps(metadata, indent=1))
        _package(bundle, version, handler, model_config, Path(work))
        target = model_store / file_name
        os.replace(Path(work) / f"{MODEL_NAME}.mar", target)
    return Archived(target, version, run.info.run_id, metadata["symbol"])


def _package(bundle: Path, version: int, handler: Path, model_config: Path, export_path: Path) -> None:
    """torch-model-archiver, in process."""
    from model_archiver.model_archiver_config import ModelArchiverConfig
    from model_archiver.model_archiver_error import ModelArchiverError
    from model_archiver.model_packaging import generate_model_archive

    config = ModelArchiverConfig(model_name=MODEL_NAME, handler=str(handler), version=str(version),
                                 serialized_file=str(bundle / WEIGHTS), model_file=str(bundle / MODEL_FILE),
                                 extra_files=",".join(map(str, (bundle / METADATA, bundle_module.__file__,
                                                            handler.with_name("forecast_request.py")))),
                                 config_file=str(model_config),
                                 export_path=str(export_path), force=True)
    try:
        generate_model_archive(config)
    except ModelArchiverError as err:
        raise StockcastError(f"torch-model-archiver failed: {err}") from None
