"""The peer servers `make bench` measures TorchServe against, each started on a free loopback port for a block and
always stopped: benchmarks/peer.py (the same archived handler in one FastAPI process) and benchmarks/bare_peer.py
(2 uvicorn workers, an LSTM of the served net's size and nothing else)."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stockcast import ROOT

HANDLER = "benchmarks.peer"
BARE = "benchmarks.bare_peer"


def arguments(doc: str) -> argparse.Namespace:
    """A peer server's command line: the archive it serves, its port, and the price store a by-name request is
    answered from (the bare peer's)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, help="a price store: bodies without prices are answered from it")
    return parser.parse_args()


@dataclass(frozen=True)
class Peer:
    """A peer server running."""

    url: str  # its predictions URL
    pid: int  # its top process (uvicorn's workers are its children)


@contextmanager
def peer_server(module: str, archive: Path, store: Path | None = None) -> Iterator[Peer]:
    """`python -m <module> --archive <archive> --port <free port> [--store <store>]` for the block, once it accepts
    connections."""
    from stockcast.serving.private_server import free_ports

    [port] = free_ports(1)
    process = subprocess.Popen([sys.executable, "-m", module, "--archive", str(archive), "--port", str(port),
                                *(["--store", str(store)] if store else [])], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the peer server {module} did not start") from None
                time.sleep(0.5)
        yield Peer(f"http://127.0.0.1:{port}/predictions/lstm", process.pid)
    finally:
        process.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
