"""A TorchServe of one's own, for the tests and `make bench`: the committed config.properties with free loopback
ports, its own run folder and temp folder, so a developer's `make serve` on the default ports and /tmp is
never touched. Leaving `private_server` stops it even when the block fails, and kills whatever it left.
"""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from stockcast import ROOT
from stockcast.serving.server import Server


def free_ports(count: int) -> list[int]:
    """`count` loopback ports nothing listens on (the OS's choice; free until someone binds them)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def server_config(folder: Path, source: Path = ROOT / "config.properties") -> Path:
    """A committed config.properties (the root one unless `source`) with free loopback ports instead of its
    own; a management API sharing the inference port (deploy/kserve's) keeps sharing it."""
    inference, management, metrics, grpc_inference, grpc_management = free_ports(5)
    text = source.read_text()
    if _address(text, "management") == _address(text, "inference"):
        management = inference
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


def _address(text: str, api: str) -> str | None:
    found = re.search(rf"^{api}_address=(.*)$", text, flags=re.MULTILINE)
    return found.group(1).strip() if found else None


def _leftovers(server: Server) -> list[psutil.Process]:
    """Processes of this server only: the frontend names its config, workers their socket in its temp folder."""
    marks = (str(server.config), str(server.temp_dir))
    return [process for process in psutil.process_iter(["cmdline"])
            if any(mark in " ".join(process.info["cmdline"] or []) for mark in marks)]


@contextmanager
def private_server(model_store: Path, folder: Path, config: Path = ROOT / "config.properties",
                   auth: bool = True) -> Iterator[Server]:
    """TorchServe serving `model_store`'s lstm.mar, its config (`config` on free ports) and run folder under
    `folder`; `auth=False` for a config that turns token authorization off."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ts-", dir="/tmp"))  # short: it holds the workers' unix sockets
    server = Server(server_config(folder, config), folder / "run", model_store, ROOT / "log4j2.xml",
                    temp_dir=temp_dir)
    try:
        server.start(auth=auth, timeout=180)
        yield server
    finally:
        server.stop(timeout=30)
        left = _leftovers(server)
        for process in left:
            process.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)
        if left:
            raise RuntimeError(f"TorchServe processes survived stop: {left}")
