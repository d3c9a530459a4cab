"""What the serving side is configured by: the served name, what an archive packs, TorchServe's config file.

Standard library only: the container's health check reads the config on every probe.
"""

from __future__ import annotations

from pathlib import Path

from stockcast import ROOT

# The name TorchServe serves the model under: POST /predictions/lstm.
MODEL_NAME = "lstm"
# What an archive packs besides the training bundles: the runtime package (its handler TorchServe's entry point)
# and TorchServe's per-model settings.
RUNTIME = Path(__file__).parents[1] / "runtime"
HANDLER = RUNTIME / "handler.py"
MODEL_CONFIG = ROOT / "model-config.yaml"


def read_properties(path: Path) -> dict[str, str]:
    """`key=value` lines of a Java properties file (TorchServe's own parser does no more)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in (pair for pair in pairs if len(pair) == 2)}
