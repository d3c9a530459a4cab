"""MLflow helpers: a sqlite store that exists before first use, and params from a Hydra config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def prepare_store(tracking_uri: str) -> str:
    """Create the folder of a `sqlite:///` store (MLflow only creates the file); return the URI."""
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return tracking_uri


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
