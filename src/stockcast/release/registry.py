"""The MLflow model registry side of a deployment: one registered model per model, `champion` = deployed.

A registered model per ticker (`stockcast-PETR4.SA`; a pooled model `stockcast-VALE3.SA+PETR4.SA`)
keeps each ticker's history readable; its `champion` alias is the version serving now, and the
version's `archive_version` tag is the version it was deployed with (the bundle's `model_version`).
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

CHAMPION = "champion"
PREFIX = "stockcast-"


def model_name(symbol: str) -> str:
    return f"{PREFIX}{symbol}"


def create_version(client: MlflowClient, symbol: str, run_id: str, start: str, end: str,
                   archive_version: int) -> tuple[ModelVersion, bool]:
    """A new version of the ticker's registered model for the run's bundle; True when the registered
    model itself was created (an undo then deletes it too)."""
    name = model_name(symbol)
    created = not client.search_registered_models(f"name = '{name}'")
    if created:
        client.create_registered_model(name, description=f"stockcast forecasters of {symbol}; alias "
                                                          f"{CHAMPION}: the version deployed")
    run = client.get_run(run_id)
    source = f"{run.info.artifact_uri}/{run.data.tags['bundle']}"
    version = client.create_model_version(name, source, run_id=run_id, tags={
        "start": start, "end": end, "archive_version": str(archive_version)})
    return version, created


def champion(client: MlflowClient, symbol: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(model_name(symbol), CHAMPION)
    except MlflowException:  # no such registered model, or no alias yet
        return None


def set_champion(client: MlflowClient, symbol: str, version: str | None) -> None:
    """Point the alias at `version`; None removes it (undoing a ticker's first deployment)."""
    if version is None:
        if champion(client, symbol) is not None:
            client.delete_registered_model_alias(model_name(symbol), CHAMPION)
    else:
        client.set_registered_model_alias(model_name(symbol), CHAMPION, version)


def version_of_archive(client: MlflowClient, symbol: str, archive_version: str) -> ModelVersion | None:
    """The registered version deployed as TorchServe version `archive_version`, if one was."""
    found = client.search_model_versions(
        f"name = '{model_name(symbol)}' and tags.archive_version = '{archive_version}'")
    return found[0] if found else None


def champions(client: MlflowClient) -> list[ModelVersion]:
    """Every ticker's champion, by registered model name."""
    models = client.search_registered_models(f"name LIKE '{PREFIX}%'", order_by=["name ASC"])
    found = (champion(client, model.name.removeprefix(PREFIX)) for model in models)
    return [version for version in found if version is not None]
