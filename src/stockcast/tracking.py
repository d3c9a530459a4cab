"""MLflow helpers: a store that exists before any job logs to it, and params from a Hydra config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


def prepare_store(tracking_uri: str, experiment_name: str | None = None,
                  artifact_location: str | None = None) -> str:
    """Create a `sqlite:///` store's folder, tables and experiment; return the URI.

    Done once before parallel sweep jobs start: jobs racing to create the same tables or
    experiment fail ("table metrics already exists").
    """
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if experiment_name:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        if client.get_experiment_by_name(experiment_name) is None:
            client.create_experiment(experiment_name, artifact_location=artifact_location)
    return tracking_uri


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


def flat_params(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as `group/key` params, without Hydra's `_target_`/`_partial_` plumbing."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not str(key).startswith("_"):
                    walk(value, f"{prefix}{key}/")
        else:
            flat[prefix.rstrip("/")] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat
