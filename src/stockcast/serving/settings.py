"""What the serving side is configured by: the served name, what an archive packs, TorchServe's config file.

Standard library only: the container's health check reads the config on every probe.
"""

from __future__ import annotations

from pathlib import Path

from stockcast import ROOT

# The name TorchServe serves the model under: POST /predictions/lstm.
MODEL_NAME = "lstm"
# What an archive packs besides the training bundles: the handler and TorchServe's per-model settings.
HANDLER = ROOT / "handlers" / "forecast_handler.py"
MODEL_CONFIG = ROOT / "model-config.yaml"


def shipped_code() -> list[Path]:
    """The code an archive carries at its root: the handler, its request modules beside it and `bundle.py`
    (torch, the standard library and `ts` only). A worker has that folder on its path: they import each
    other by module name."""
    return [*sorted(HANDLER.parent.glob("*.py")), Path(__file__).parents[1] / "bundle.py"]


def read_properties(path: Path) -> dict[str, str]:
    """`key=value` lines of a Java properties file (TorchServe's own parser does no more)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in (pair for pair in pairs if len(pair) == 2)}
