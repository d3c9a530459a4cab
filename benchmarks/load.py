"""The HTTP load on the served model: wrk where installed, else a loop of Python clients
(stockcast.serving.client_loop, which the tests use too; slower than wrk: it measures less of the server).

A load sends one payload, or `InTurn` payloads one after the other on each connection (wrk; the Python clients
send the first): several windows, so no server can answer from a cache.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from stockcast.serving.client import with_bars
from stockcast.serving.client_loop import ClientLoop, headers

PAYLOAD = {**with_bars([60.0 + 0.1 * day for day in range(20)]), "stock": "VALE3.SA"}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}  # wrk's latency units


class InTurn(list):
    """Payloads sent in turn."""


@dataclass(frozen=True)
class Load:
    """One load's figures: throughput, latency percentiles (ms), failed requests."""

    rps: float
    p50: float
    p99: float
    errors: int


def python_run(url: str, key: str | None, connections: int, seconds: int,
               payload: Any = PAYLOAD) -> Load:
    """One run of the Python clients, one connection each (of `InTurn` payloads, the first)."""
    with ClientLoop(url, key, payload[0] if isinstance(payload, InTurn) else payload, connections) as loop:
        time.sleep(seconds)
    latencies = sorted(loop.latencies)
    return Load(len(latencies) / seconds, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)],
                loop.errors)


def wrk_run(url: str, key: str | None, connections: int, seconds: int,
            payload: Any = PAYLOAD) -> Load:
    """One wrk run; its errors are the non-2xx answers and the socket errors."""
    lines = (f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers(key).items())
    bodies = ", ".join(json.dumps(json.dumps(body)) for body in (payload if isinstance(payload, InTurn) else [payload]))
    lua = "\n".join(['wrk.method = "POST"', *lines, f"local bodies = {{{bodies}}}", "local turn = 0",
                     "request = function()", "  turn = turn % #bodies + 1",
                     "  return wrk.format(nil, nil, nil, bodies[turn])", "end"])
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:  # 0600: it holds the key
        script.write(lua)
        script.flush()
        out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
                              "-s", script.name, url], capture_output=True, text=True, check=True).stdout
    percentile = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", out,
                                                                    re.M)}
    if set(percentile) != {"50", "99"}:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return Load(rps, percentile["50"], percentile["99"], errors)
