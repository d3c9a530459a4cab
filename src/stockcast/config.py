"""Compose the repo's Hydra configs outside `@hydra.main` (scripts), same files, same overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from stockcast import ROOT  # the checkout; importing stockcast also sets STOCKCAST_ROOT
from stockcast.serving.settings import MODEL_CONFIG

CONFIG_DIR = ROOT / "configs"


def head_quantiles(loss: str, quantiles: list[float] | None) -> list[float] | None:
    """`${head_quantiles:${model.loss},${model.quantiles}}`: the levels the net's head emits, none
    (a point head) for model.loss=mse. The loss sizes the head."""
    return None if loss == "mse" else quantiles


def register_resolvers() -> None:
    """The resolvers the configs use; call before composing (entry points, `load_config`, tests)."""
    OmegaConf.register_new_resolver("head_quantiles", head_quantiles, replace=True)


def load_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    """`configs/<name>.yaml` with Hydra overrides; `${hydra:...}` values are not available."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides or [])


def train_groups(*groups: str) -> DictConfig:
    """Groups of configs/train.yaml read from their own files (the ones its defaults list names), e.g.
    `train_groups("paths", "logger").logger.tracking_uri`: the value the composed training config holds, for
    entry points that need a value or two (where prices and runs are kept) and no training. Without overrides."""
    train = OmegaConf.load(CONFIG_DIR / "train.yaml")
    chosen = {key: value for item in train.defaults if not isinstance(item, str) for key, value in item.items()}
    return OmegaConf.create({group: OmegaConf.load(CONFIG_DIR / group / f"{chosen[group]}.yaml") for group in groups})


def risk_settings(model_config: Path = MODEL_CONFIG) -> dict[str, Any]:
    """model-config.yaml's `handler.risk`: the served risk model's settings (copula.Sampler.configured's
    mapping), which `make risk` chose on validation and the server, the monitor and the backtest read alike."""
    return dict((yaml.safe_load(model_config.read_text()).get("handler") or {}).get("risk") or {})
