"""A real TorchServe for tests (stockcast.serving.private_server: free loopback ports, always stopped), serving
archived runs, and the client loop `make bench` uses too, pointed at it, counting every answer."""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from stockcast.data.prices import COLUMNS, read_price_csv
from stockcast.pipeline import RunResult
from stockcast.runtime.store import STORE_ENV
from stockcast.serving.archive import archive
from stockcast.serving.client import Response, post_json
from stockcast.serving.client_loop import ClientLoop
from stockcast.serving.private_server import private_server
from stockcast.serving.server import Server
from stockcast.serving.versions import startup_archive

ROOT = Path(__file__).resolve().parents[1]
PRICES = [60.0 + 0.1 * day for day in range(30)]


@contextmanager
def running_server(result: RunResult | list[RunResult], folder: Path,
                   altered: Callable[[Path], None] | None = None) -> Iterator[Server]:
    """TorchServe serving the run(s) as version 1 (archived like `make archive` into `<folder>/model_store`, then
    `altered(archive)` where given), its price store `$STOCKCAST_PRICE_STORE` where set, else an empty folder of
    its own (not the checkout's data/)."""
    results = result if isinstance(result, list) else [result]
    done = archive(results[0].tracking_uri, "stockcast", folder / "model_store", run_ids=[r.run_id for r in results])
    if altered is not None:
        altered(done.path)
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get(STORE_ENV):
            (folder / "store").mkdir(exist_ok=True)
            patch.setenv(STORE_ENV, str(folder / "store"))
        with private_server(folder / "model_store", folder) as server:
            yield server


def predict(server: Server, payload: Any) -> Response:
    return post_json(f"{server.url('inference')}/predictions/lstm", payload, server.key("inference"))


def answered(server: Server, payload: Any) -> tuple[int, Any]:
    """A prediction's status and JSON body."""
    response = predict(server, payload)
    return response.status, response.json()


def sent_bars(frame: pd.DataFrame, rows: int = 100) -> dict[str, Any]:
    """The last `rows` bars of `frame` as a request sends them, with the last one's date."""
    last = frame.iloc[-rows:]
    return {"prices": last.Close.tolist(), "open": last.Open.tolist(), "high": last.High.tolist(),
            "low": last.Low.tolist(), "last_date": f"{frame.index[-1]:%Y-%m-%d}"}


def client_loop(server: Server, clients: int = 4) -> ClientLoop:
    """Clients posting PRICES until the block ends; each pauses 5 ms between requests, so the loop does not
    starve a training of the 2 CPUs it runs beside."""
    return ClientLoop(f"{server.url('inference')}/predictions/lstm", server.key("inference"), {"prices": PRICES},
                      clients, pause=0.005)


def recent_bars(sessions: list[str], behind: int = 0, rows: int = 120, stock: str = "VALE3.SA") -> pd.DataFrame:
    """`stock`'s real bars up to `behind` days before its last, relabelled to the trading sessions closed up to
    `behind` sessions before today (UTC): a price store's file as fresh as a refresh leaves it, offline."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    closed = [day for day in sessions if day < today]
    real = read_price_csv(ROOT / "prices" / f"{stock}.csv")
    frame = real.iloc[len(real) - behind - rows:len(real) - behind].copy()
    frame.index = pd.DatetimeIndex(closed[len(closed) - behind - rows:len(closed) - behind], name="Date")
    return frame


def store_file(frame: pd.DataFrame) -> bytes:
    """A price store's CSV of `frame`, in the shape the refresh writes (Date, Open, High, Low, Close, Volume)."""
    return frame[COLUMNS].to_csv(date_format="%Y-%m-%d", index_label="Date").encode()


def replace_stored(store: Path, symbol: str, frame: pd.DataFrame) -> None:
    """`frame` as `symbol`'s file of the price store `store`, replaced in one step as the refresh does."""
    partial = store / f".{symbol}.csv.partial"
    partial.write_bytes(store_file(frame))
    os.replace(partial, store / f"{symbol}.csv")


@contextmanager
def serving_a_store(result: RunResult, tmp_path_factory: pytest.TempPathFactory,
                    name: str) -> Iterator[tuple[Server, Path, dict[str, Any]]]:
    """TorchServe serving `result` over an empty price store; the store and the started archive's portfolio.json."""
    store = tmp_path_factory.mktemp(f"{name}_store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STORE_ENV, str(store))
        with running_server(result, tmp_path_factory.mktemp(name)) as server:
            with zipfile.ZipFile(startup_archive(server.model_store)) as mar:
                portfolio = json.loads(mar.read("portfolio.json"))
            yield server, store, portfolio
