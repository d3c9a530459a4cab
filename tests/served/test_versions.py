"""One version series for the served name: from the store's archives and the server's registered versions."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from mlflow import MlflowClient

from stockcast.serving.archive import archive
from stockcast.serving.versions import archive_version, archives, next_version


def _mar(path: Path, version: str) -> Path:
    with zipfile.ZipFile(path, "w") as mar:
        mar.writestr("MAR-INF/MANIFEST.json", json.dumps({"model": {"modelName": "lstm", "modelVersion": version}}))
    return path


def test_next_version_follows_the_highest_archive_or_registered_version(tmp_path):
    assert next_version(tmp_path) == 1
    _mar(tmp_path / "lstm.mar", "4")
    _mar(tmp_path / "lstm-v2.mar", "2")
    _mar(tmp_path / "other.mar", "1.0")  # another scheme's version: ignored
    (tmp_path / "broken.mar").write_text("not a zip")
    assert next_version(tmp_path) == 5
    assert next_version(tmp_path, ["1", "7", "1.0"]) == 8


def test_a_versioned_archive_wins_over_lstm_mar_of_the_same_version(tmp_path):
    _mar(tmp_path / "lstm.mar", "3")
    assert archives(tmp_path) == {3: tmp_path / "lstm.mar"}
    _mar(tmp_path / "lstm-v3.mar", "3")
    _mar(tmp_path / "lstm-v1.mar", "1")
    assert archives(tmp_path) == {1: tmp_path / "lstm-v1.mar", 3: tmp_path / "lstm-v3.mar"}


def test_archiving_takes_the_next_version_and_registers_nothing_in_mlflow(trained_run, tmp_path):
    result, _ = trained_run
    store = tmp_path / "model_store"
    first = archive(result.tracking_uri, "stockcast", store, run_ids=[result.run_id])
    second = archive(result.tracking_uri, "stockcast", store, [result.symbol])
    assert (first.version, second.version, archive_version(store / "lstm.mar")) == (1, 2, 2)
    assert MlflowClient(result.tracking_uri).search_registered_models() == []
