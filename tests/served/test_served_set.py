"""The served set: which bundle answers each ticker, as a deployment changes it and as an archive holds it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from stockcast.errors import StockcastError
from stockcast.serving.archive import ServedSet, write
from stockcast.serving.settings import RUNTIME
from stockcast.serving.versions import archive_version


def _bundle(folder: Path, symbol: str, stocks: list[str] | None = None, weights: bytes = b"w") -> Path:
    """A bundle folder as a run downloads it (its files' contents do not matter here)."""
    folder.mkdir(parents=True)
    metadata = {"symbol": symbol, "window": 20, "horizon": 10, "features": ["Close"],
                "data": {"first_date": "2024-01-02"}, **({"stocks": stocks} if stocks else {})}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    (folder / "model.pt").write_bytes(weights)
    (folder / "net.py").write_text("# net\n")
    return folder


def test_a_tickers_own_model_wins_over_a_pooled_one_in_either_order(tmp_path):
    pooled = ["AAPL", "MSFT", "VALE3.SA"]
    first = ServedSet().with_bundle(_bundle(tmp_path / "p", "AAPL+MSFT+VALE3.SA", pooled), 1)
    first = first.with_bundle(_bundle(tmp_path / "a", "AAPL"), 2)
    assert first.members == {"AAPL": "AAPL-v2", "MSFT": "AAPL+MSFT+VALE3.SA-v1", "VALE3.SA": "AAPL+MSFT+VALE3.SA-v1"}
    second = ServedSet().with_bundle(_bundle(tmp_path / "a2", "AAPL"), 1)
    second = second.with_bundle(_bundle(tmp_path / "p2", "AAPL+MSFT+VALE3.SA", pooled), 2)
    assert second.members == {"AAPL": "AAPL-v1", "MSFT": "AAPL+MSFT+VALE3.SA-v2", "VALE3.SA": "AAPL+MSFT+VALE3.SA-v2"}
    assert second.bundle_of("MSFT").version == "2" and second.changed(first) == ["AAPL", "MSFT", "VALE3.SA"]


def test_a_new_model_replaces_only_its_ticker_and_unused_bundles_go(tmp_path):
    served = ServedSet().with_bundle(_bundle(tmp_path / "a", "AAPL"), 1).with_bundle(_bundle(tmp_path / "m", "MSFT"), 1)
    newer = served.with_bundle(_bundle(tmp_path / "a2", "AAPL"), 2)
    assert newer.members == {"AAPL": "AAPL-v2", "MSFT": "MSFT-v1"} and set(newer.bundles) == {"AAPL-v2", "MSFT-v1"}
    assert newer.changed(served) == ["AAPL"]
    back = newer.with_member("AAPL", served)
    assert back.members == served.members and back.changed(served) == []
    assert newer.without("MSFT").members == {"AAPL": "AAPL-v2"} and newer.without("MSFT").changed(newer) == ["MSFT"]


def test_an_archive_holds_the_set_and_copies_unchanged_bundles_byte_for_byte(tmp_path):
    store = tmp_path / "store"
    first = ServedSet().with_bundle(_bundle(tmp_path / "a", "AAPL", weights=b"apple"), 1)
    first = first.with_bundle(_bundle(tmp_path / "v", "VALE3.SA", weights=b"vale"), 1)
    path = write(first, store, 1, "lstm-v1.mar")
    read = ServedSet.read(path)
    assert read.members == first.members and read.sources == {"AAPL-v1": path, "VALE3.SA-v1": path}
    second = read.with_bundle(_bundle(tmp_path / "a2", "AAPL", weights=b"apple 2"), 2)
    newer = write(second, store, 2, "lstm-v2.mar")
    assert archive_version(newer) == 2 and ServedSet.read(newer).members == {"AAPL": "AAPL-v2",
                                                                            "VALE3.SA": "VALE3.SA-v1"}
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(newer) as new:
        assert new.read("bundles/VALE3.SA-v1/model.pt") == old.read("bundles/VALE3.SA-v1/model.pt") == b"vale"
        assert new.read("bundles/AAPL-v2/model.pt") == b"apple 2" and "bundles/AAPL-v1/model.pt" not in new.namelist()
        calendar = json.loads(new.read("portfolio.json"))["calendar"]
        assert calendar["stocks"] == {"AAPL": "XNYS", "VALE3.SA": "BVMF"}
        runtime = sorted(path.name for path in RUNTIME.glob("*.py"))
        shipped = {f"stockcast/runtime/{name}" for name in runtime} | {"stockcast/__init__.py", "handler.py"}
        assert shipped <= set(new.namelist()) and not any(name.endswith(".pyc") for name in new.namelist())
        for name in runtime:  # the package as it is in this checkout, the handler also at the root for TorchServe
            assert new.read(f"stockcast/runtime/{name}") == (RUNTIME / name).read_bytes(), name
        assert new.read("handler.py") == (RUNTIME / "handler.py").read_bytes()


def test_the_set_never_becomes_empty_and_an_old_archive_is_named(tmp_path):
    served = ServedSet().with_bundle(_bundle(tmp_path / "a", "AAPL"), 1)
    with pytest.raises(StockcastError, match="at least one ticker must stay served"):
        write(served.without("AAPL"), tmp_path / "store", 2, "lstm-v2.mar")
    old = tmp_path / "old.mar"
    with zipfile.ZipFile(old, "w") as mar:
        mar.writestr("MAR-INF/MANIFEST.json", "{}")
    with pytest.raises(StockcastError, match="an archive from before portfolios"):
        ServedSet.read(old)
