"""The HTTP load on the served model: wrk where installed, else (and in the tests) a loop of Python clients.

The Python loop is what the end-to-end and admin tests run while they swap versions, and the fallback of
`make bench` (slower than wrk: it measures less of the server).
"""

from __future__ import annotations

import collections
import http.client
import json
import re
import subprocess
import tempfile
import threading
import time
from typing import Any
from urllib.parse import urlparse

PAYLOAD = {"prices": [60.0 + 0.1 * day for day in range(20)], "stock": "VALE3.SA"}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _headers(key: str | None) -> dict[str, str]:
    return {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}


class ClientLoop:
    """Clients posting one request in a loop on keep-alive connections until the block ends, counting
    answers by status (exceptions by name), 200s by the model version that answered ("portfolio" for a
    portfolio request's), the distinct 200 bodies, and each latency (ms). The counts are complete once
    the block has ended."""

    def __init__(self, url: str, key: str | None, payload: Any, clients: int = 4, pause: float = 0.0) -> None:
        self._target = urlparse(url)
        self._body = json.dumps(payload).encode()
        self._headers = _headers(key)
        self.clients, self.pause = clients, pause  # pause: seconds each client sleeps between requests
        self.statuses: collections.Counter = collections.Counter()
        self.versions: collections.Counter = collections.Counter()
        self.bodies: set[bytes] = set()
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return self.requests - self.statuses[200]

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._target.hostname, self._target.port, timeout=30)

    def _client(self) -> None:
        statuses: collections.Counter = collections.Counter()
        versions: collections.Counter = collections.Counter()
        bodies: set[bytes] = set()
        latencies = []
        connection = self._connect()
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                connection.request("POST", self._target.path, self._body, self._headers)
                answer = connection.getresponse()
                data = answer.read()
                outcome, version = answer.status, None
                if answer.status == 200:
                    version = json.loads(data).get("model_version", "portfolio")
                    bodies.add(data)
            except (OSError, http.client.HTTPException, ValueError) as err:
                outcome, version = type(err).__name__, None
                connection.close()
                connection = self._connect()
            latencies.append((time.perf_counter() - start) * 1e3)
            statuses[outcome] += 1
            if version:
                versions[version] += 1
            if self.pause:
                time.sleep(self.pause)
        with self._lock:
            self.statuses.update(statuses)
            self.versions.update(versions)
            self.bodies |= bodies
            self.latencies.extend(latencies)

    def __enter__(self) -> ClientLoop:
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def python_run(url: str, key: str | None, connections: int, seconds: int,
               payload: Any = PAYLOAD) -> tuple[float, float, float, int]:
    """One run of the Python clients, one connection each: (requests/s, p50 ms, p99 ms, failed requests)."""
    with ClientLoop(url, key, payload, connections) as loop:
        time.sleep(seconds)
    latencies = sorted(loop.latencies)
    return len(latencies) / seconds, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)], loop.errors


def wrk_run(url: str, key: str | None, connections: int, seconds: int,
            payload: Any = PAYLOAD) -> tuple[float, float, float, int]:
    """One wrk run, same payload: (requests/s, p50 ms, p99 ms, non-2xx + socket errors)."""
    headers = (f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in _headers(key).items())
    lua = "\n".join(['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(payload))}", *headers])
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:  # 0600: it holds the key
        script.write(lua)
        script.flush()
        out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
                              "-s", script.name, url], capture_output=True, text=True, check=True).stdout
    percentile = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rps, percentile["50"], percentile["99"], errors
