"""What the serving side shares with training: the model's served name and the training config's store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stockcast.config import ROOT, load_config
from stockcast.tickers import normalize_ticker

# The name TorchServe serves the model under: POST /predictions/lstm.
MODEL_NAME = "lstm"
# What an archive packs besides the training bundle: the handler and TorchServe's per-model settings.
HANDLER = ROOT / "handlers" / "forecast_handler.py"
MODEL_CONFIG = ROOT / "model-config.yaml"


@dataclass(frozen=True)
class Training:
    """The bits of `configs/train.yaml` the serving side reads."""

    tracking_uri: str
    experiment: str
    symbol: str
    data_dir: Path


def training_defaults() -> Training:
    """Compose the real training config, so archive reads the store train writes ($MLFLOW_TRACKING_URI included)."""
    cfg = load_config("train")
    return Training(cfg.logger.tracking_uri, cfg.logger.experiment_name, normalize_ticker(cfg.stock),
                    Path(cfg.paths.data_dir))
