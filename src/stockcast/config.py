"""Compose the repo's Hydra configs outside `@hydra.main` (scripts), same files, same overrides."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "configs"


def load_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    """`configs/<name>.yaml` with Hydra overrides; `${hydra:...}` values are not available."""
    os.environ.setdefault("STOCKCAST_ROOT", str(ROOT))
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides or [])
