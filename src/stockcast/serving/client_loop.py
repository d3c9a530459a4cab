"""Clients posting one request in a loop, counting every answer: the load the end-to-end and admin tests keep on
a server while they swap versions, and `make bench`'s fallback where wrk is not installed.

Standard library only.
"""

from __future__ import annotations

import collections
import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse


def headers(key: str | None) -> dict[str, str]:
    """A JSON POST's headers, with the bearer token where there is a key."""
    return {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}


class ClientLoop:
    """Clients posting one request in a loop on keep-alive connections until the block ends, counting
    answers by status (exceptions by name), 200s by the model version that answered ("portfolio" for a
    portfolio request's), the distinct 200 bodies, each latency (ms) and each outcome with the monotonic time
    it arrived (`timeline`). With `rekey`, a refused key (a restarted TorchServe has new ones) is read again
    from it. The counts are complete once the block has ended."""

    def __init__(self, url: str, key: str | None, payload: Any, clients: int = 4, pause: float = 0.0,
                 rekey: Callable[[], str | None] | None = None) -> None:
        self._target = urlparse(url)
        self._body = json.dumps(payload).encode()
        self._headers = headers(key)
        self._rekey = rekey
        self.clients, self.pause = clients, pause  # pause: seconds each client sleeps between requests
        self.statuses: collections.Counter = collections.Counter()
        self.versions: collections.Counter = collections.Counter()
        self.bodies: set[bytes] = set()
        self.latencies: list[float] = []
        self.timeline: list[tuple[float, int | str]] = []
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
        assert self._target.hostname is not None, f"no host in {self._target.geturl()}"
        return http.client.HTTPConnection(self._target.hostname, self._target.port, timeout=30)

    def _client(self) -> None:
        statuses: collections.Counter = collections.Counter()
        versions: collections.Counter = collections.Counter()
        bodies: set[bytes] = set()
        latencies, timeline = [], []
        connection = self._connect()
        outcome: int | str  # the HTTP status, or the exception's name
        while not self._stop.is_set():
            start = time.perf_counter()
            refused = False  # a key a restarted server no longer knows: read again once the answer is recorded
            try:
                connection.request("POST", self._target.path, self._body, self._headers)
                answer = connection.getresponse()
                data = answer.read()
                outcome, version = answer.status, None
                if answer.status == 200:
                    version = json.loads(data).get("model_version", "portfolio")
                    bodies.add(data)
                else:
                    refused = self._rekey is not None and b"InvalidKeyException" in data
            except (OSError, http.client.HTTPException, ValueError) as err:
                outcome, version = type(err).__name__, None
                connection.close()
                connection = self._connect()
            latencies.append((time.perf_counter() - start) * 1e3)
            timeline.append((time.monotonic(), outcome))
            if refused and self._rekey:
                self._headers = headers(self._rekey())
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
            self.timeline.extend(timeline)

    def __enter__(self) -> ClientLoop:
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
