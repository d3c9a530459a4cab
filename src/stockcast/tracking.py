"""MLflow helpers: a store that exists before any job logs to it, and the runs to serve or evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from stockcast.errors import StockcastError


def prepare_store(tracking_uri: str, experiment_name: str | None = None,
                  artifact_location: str | None = None) -> str:
    """Create a `sqlite:///` store's folder, tables and experiment; return the URI.

    Done once before parallel sweep jobs start: jobs racing to create the same tables or
    experiment fail ("table metrics already exists"). A local `artifact_location` belongs to the local
    store: on a tracking server (http://...) the experiment gets the server's artifact store, which every
    client reaches (a path would name a folder on whichever machine or container created it).
    """
    local = tracking_uri.startswith("sqlite:///")
    if local:
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if experiment_name:
        client = MlflowClient(tracking_uri)
        if client.get_experiment_by_name(experiment_name) is None:
            client.create_experiment(experiment_name, artifact_location=artifact_location if local else None)
    return tracking_uri


def existing_store(tracking_uri: str) -> MlflowClient:
    """A client of a store that exists: MLflow would create an empty `sqlite:///` store on first use."""
    store = tracking_uri.removeprefix("sqlite:///")
    if store != tracking_uri and not Path(store).is_file():
        raise StockcastError(f"no MLflow store at {store}: train a model first (make train)")
    return MlflowClient(tracking_uri)


class PrepareMlflowStore(Callback):
    """Hydra callback: prepare the configured store before a run or a sweep launches its jobs."""

    def _prepare(self, config: DictConfig) -> None:
        logger = config.get("logger")
        if logger and "tracking_uri" in logger:
            prepare_store(logger.tracking_uri, logger.get("experiment_name"), logger.get("artifact_location"))

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._prepare(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._prepare(config)


def trained_symbols(client: MlflowClient, experiment: str) -> list[str]:
    """Every ticker with a finished single-ticker run that logged a serving bundle, sorted."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise StockcastError(f"no experiment {experiment!r} in the MLflow store {client.tracking_uri}: train first")
    symbols: set[str] = set()
    token = None
    while True:
        page = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED' and tags.bundle != ''",
                                  max_results=1000, page_token=token)
        symbols |= {run.data.tags["symbol"] for run in page if "," not in run.data.tags.get("stocks", "")}
        token = page.token
        if not token:
            return sorted(symbols)


def find_run(client: MlflowClient, experiment: str, symbol: str, run_id: str | None = None) -> Run:
    """`run_id`'s run, or the newest FINISHED run of `symbol` that logged a serving bundle."""
    return find_runs(client, experiment, symbol, run_id)[0]


def find_runs(client: MlflowClient, experiment: str, symbol: str, run_id: str | None = None,
              count: int = 1) -> list[Run]:
    """`run_id`'s run, or the newest `count` FINISHED runs of `symbol` that logged a serving bundle.

    Training tags a run `bundle=<artifact path>` once its bundle is logged (its last step).
    """
    where = f"the MLflow store {client.tracking_uri}"
    try:
        if run_id:
            runs = [client.get_run(run_id)]
        else:
            found = client.get_experiment_by_name(experiment)
            if found is None:
                raise StockcastError(f"no experiment {experiment!r} in {where}: train a model first (make train)")
            found_runs = client.search_runs(
                [found.experiment_id], order_by=["attributes.start_time DESC"],
                filter_string=f"tags.symbol = '{symbol}' and attributes.status = 'FINISHED' and tags.bundle != ''")
            # A run the admin's quality gate refused is finished and has a bundle, but is no candidate.
            runs = [r for r in found_runs if not r.data.tags.get("gate", "").startswith("failed")][:count]
            if len(runs) < count:
                raise StockcastError(f"found {len(runs)} finished run(s) of {symbol} with a serving bundle in "
                                     f"{where}, need {count}: train first (make train), or pick a run with "
                                     "RUN_ID=...")
    except MlflowException as err:
        raise StockcastError(f"cannot read run {run_id or symbol!r} from {where}: {err.message}") from None
    for run in runs:
        if run.info.status != "FINISHED":
            raise StockcastError(f"run {run.info.run_id} is {run.info.status}, not FINISHED: only finished runs "
                                 "have a serving bundle")
        if not run.data.tags.get("bundle"):
            raise StockcastError(f"run {run.info.run_id} logged no serving bundle (it has no 'bundle' tag)")
    return runs
