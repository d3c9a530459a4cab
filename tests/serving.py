"""A real TorchServe for tests, and the benchmark's client loop pointed at it, counting every answer.

The server runs on a config generated from the committed config.properties (ports swapped for free
loopback ones), with its own run folder and temp folder, so a developer's `make serve` on the default
ports and /tmp is never touched. Leaving the context stops it even when a test fails, and kills
whatever it left.
"""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from benchmarks.load import ClientLoop
from stockcast.pipeline import RunResult
from stockcast.serving.archive import archive
from stockcast.serving.client import Response, post_json
from stockcast.serving.server import Server
from stockcast.serving.settings import HANDLER, MODEL_CONFIG

ROOT = Path(__file__).resolve().parents[1]
PRICES = [60.0 + 0.1 * day for day in range(30)]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def server_config(folder: Path) -> Path:
    """The committed config.properties with free ports instead of 8080-8082 and 7070-7071."""
    inference, management, metrics, grpc_inference, grpc_management = _free_ports(5)
    text = (ROOT / "config.properties").read_text()
    for key, value in {"inference_address": f"http://127.0.0.1:{inference}",
                       "management_address": f"http://127.0.0.1:{management}",
                       "metrics_address": f"http://127.0.0.1:{metrics}",
                       "grpc_inference_port": grpc_inference, "grpc_management_port": grpc_management}.items():
        text, count = re.subn(rf"^{key}=.*$", f"{key}={value}", text, flags=re.MULTILINE)
        assert count == 1, key
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.properties"
    path.write_text(text)
    return path


def _leftovers(server: Server) -> list[psutil.Process]:
    """Processes of this server only: the frontend names its config, workers their socket in its temp folder."""
    marks = (str(server.config), str(server.temp_dir))
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if any(mark in cmdline for mark in marks):
            found.append(process)
    return found


@contextmanager
def running_server(result: RunResult, folder: Path) -> Iterator[Server]:
    """TorchServe serving the run as version 1 (archived like `make archive` into `<folder>/model_store`)."""
    archive(result.tracking_uri, "stockcast", result.symbol, folder / "model_store", HANDLER, MODEL_CONFIG,
            run_id=result.run_id)
    temp_dir = Path(tempfile.mkdtemp(prefix="ts-", dir="/tmp"))  # short: it holds the workers' unix sockets
    server = Server(server_config(folder), folder / "run", folder / "model_store", ROOT / "log4j2.xml",
                    temp_dir=temp_dir)
    try:
        server.start(timeout=120)
        yield server
    finally:
        server.stop(timeout=30)
        left = _leftovers(server)
        for process in left:
            process.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"TorchServe processes survived stop: {left}"


def predict(server: Server, payload: Any) -> Response:
    return post_json(f"{server.url('inference')}/predictions/lstm", payload, server.key("inference"))


def client_loop(server: Server, clients: int = 4) -> ClientLoop:
    """Clients posting PRICES until the block ends; each pauses 5 ms between requests, so the loop does not
    starve a training of the 2 CPUs it runs beside."""
    return ClientLoop(f"{server.url('inference')}/predictions/lstm", server.key("inference"), {"prices": PRICES},
                      clients, pause=0.005)
