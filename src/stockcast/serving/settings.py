"""What the serving side shares with training: the model's served name and the training config's store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stockcast.config import load_config
from stockcast.tickers import normalize_ticker

# The name TorchServe serves the model under: POST /predictions/lstm.
MODEL_NAME = "lstm"


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
