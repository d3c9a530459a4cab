"""A real TorchServe for tests (stockcast.serving.private_server: free loopback ports, always stopped), serving
archived runs, and the client loop `make bench` uses too, pointed at it, counting every answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stockcast.pipeline import RunResult
from stockcast.serving.archive import archive
from stockcast.serving.client import Response, post_json
from stockcast.serving.client_loop import ClientLoop
from stockcast.serving.private_server import private_server
from stockcast.serving.server import Server

ROOT = Path(__file__).resolve().parents[1]
PRICES = [60.0 + 0.1 * day for day in range(30)]


@contextmanager
def running_server(result: RunResult | list[RunResult], folder: Path) -> Iterator[Server]:
    """TorchServe serving the run(s) as version 1 (archived like `make archive` into `<folder>/model_store`)."""
    results = result if isinstance(result, list) else [result]
    archive(results[0].tracking_uri, "stockcast", folder / "model_store", run_ids=[r.run_id for r in results])
    with private_server(folder / "model_store", folder) as server:
        yield server


def predict(server: Server, payload: Any) -> Response:
    return post_json(f"{server.url('inference')}/predictions/lstm", payload, server.key("inference"))


def client_loop(server: Server, clients: int = 4) -> ClientLoop:
    """Clients posting PRICES until the block ends; each pauses 5 ms between requests, so the loop does not
    starve a training of the 2 CPUs it runs beside."""
    return ClientLoop(f"{server.url('inference')}/predictions/lstm", server.key("inference"), {"prices": PRICES},
                      clients, pause=0.005)
