"""Version numbers of the archives in a model store: one increasing series for the served name.

TorchServe serves the model as `lstm` whatever its ticker, and a version number of a name can be
registered once, so versions must not repeat across tickers: a new archive takes 1 + the highest
version found in the store's archives (their `MAR-INF/MANIFEST.json`) or registered in the running
server. `make archive` writes `lstm.mar`, the archive a starting server loads; deployments write
`lstm-v<N>.mar`, so earlier versions stay on disk for a rollback.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path

from stockcast.errors import StockcastError
from stockcast.serving.management import Management
from stockcast.serving.settings import MODEL_NAME

MANIFEST = "MAR-INF/MANIFEST.json"


def startup_archive(model_store: Path) -> Path:
    """The archive `config.properties` loads when the server starts (`load_models=lstm=lstm.mar`)."""
    return model_store / f"{MODEL_NAME}.mar"


def versioned_name(version: int) -> str:
    return f"{MODEL_NAME}-v{version}.mar"


def as_version(value: str | int) -> int | None:
    """An integer version, or None for versions this scheme did not write (e.g. "1.0")."""
    text = str(value)
    return int(text) if text.isdigit() else None


def archive_version(path: Path) -> int | None:
    """The archive's integer `modelVersion`; None for another scheme's version or an unreadable file."""
    try:
        with zipfile.ZipFile(path) as mar:
            return as_version(json.loads(mar.read(MANIFEST))["model"]["modelVersion"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def archives(model_store: Path) -> dict[int, Path]:
    """version -> its archive in the store; `lstm-v<N>.mar` wins over a `lstm.mar` of the same version."""
    found: dict[int, Path] = {}
    for path in sorted(model_store.glob("*.mar")):
        version = archive_version(path)
        if version is not None and (version not in found or path.name == versioned_name(version)):
            found[version] = path
    return found


def next_version(model_store: Path, registered: Iterable[str | int] = ()) -> int:
    """1 + the highest version in the store's archives and among `registered` (the server's versions)."""
    taken = set(archives(model_store)) | {v for v in map(as_version, registered) if v is not None}
    return max(taken, default=0) + 1


def new_version(manager: Management) -> int:
    """The version of the next archive for this server: new to its model store and, if it runs, to the server."""
    try:
        registered = [version.version for version in manager.served().versions]
    except StockcastError:  # not running: the store alone decides
        registered = []
    return next_version(manager.server.model_store, registered)
