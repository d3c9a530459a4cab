"""The serving bundle: weights + net.py + metadata.json, loadable with torch alone.

This file imports torch and the standard library only: the archive carries it, so TorchServe's
handler and the evaluation load a bundle the same way.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS = "model.pt"
MODEL_FILE = "net.py"
METADATA = "metadata.json"


def write_bundle(folder: str | Path, net: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write the bundle into `folder`; `metadata["net"]` must hold ForecastNet's constructor kwargs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / WEIGHTS)
    shutil.copyfile(inspect.getfile(type(net)), folder / MODEL_FILE)  # the net's own source
    (folder / METADATA).write_text(json.dumps(metadata, indent=2, default=str))
    return folder


def load_bundle(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the net from the bundle's own `net.py` (not this package's), in eval mode."""
    folder = Path(folder)
    metadata = json.loads((folder / METADATA).read_text())
    spec = importlib.util.spec_from_file_location("stockcast_bundle_net", folder / MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.ForecastNet(**metadata["net"])
    net.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return net.eval(), metadata
