"""`make bench`: load the served model with concurrent clients and compare with the in-process floor.

wrk (Debian's package) drives the load where installed, else a Python client (slower: it measures
less of the server). Each connection count runs `runs` times and reports medians, since a single
run on a small shared machine varies up to 2x; the CPU other processes used during a run is
reported beside it, so a noisy run can be told from a slow server.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psutil
import torch

from stockcast.bundle import load_bundle
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME

PAYLOAD = {"prices": [60.0 + 0.1 * day for day in range(20)], "stock": "VALE3.SA"}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Run:
    """One load run: throughput, latency percentiles (ms), failed requests, other processes' CPU."""

    rps: float
    p50: float
    p99: float
    errors: int
    other_cpu: float  # percent of the whole machine used by processes other than server and client


@dataclass(frozen=True)
class Level:
    connections: int
    runs: list[Run]

    def median(self, field: str) -> float:
        return statistics.median(getattr(run, field) for run in self.runs)


def wrk_run(url: str, key: str | None, connections: int, seconds: int) -> tuple[float, float, float, int]:
    """One wrk run: (requests/s, p50 ms, p99 ms, non-2xx + socket errors)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    lua = "\n".join(['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(PAYLOAD))}",
                     *(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items())])
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


def python_run(url: str, key: str | None, connections: int, seconds: int) -> tuple[float, float, float, int]:
    """The fallback client: one keep-alive connection per thread, same payload and measures as wrk."""
    target = urlparse(url)
    body = json.dumps(PAYLOAD).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        mine, failed = [], 0
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                connection.request("POST", target.path, body, headers)
                response = connection.getresponse()
                response.read()
                failed += response.status != 200
            except (OSError, http.client.HTTPException):
                failed += 1
                connection.close()
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            mine.append((time.perf_counter() - start) * 1e3)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return (len(latencies) / seconds, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)],
            errors[0])


def measure(server: Server, connections: int, seconds: int, use_wrk: bool) -> Run:
    """One run, with the CPU the rest of the machine used meanwhile."""
    served = _process_tree(server)
    before_total, before_served = _busy_seconds(), _cpu_seconds(served)
    url = f"{server.url('inference')}/predictions/{MODEL_NAME}"
    load = wrk_run if use_wrk else python_run
    client_before = _cpu_seconds([psutil.Process()]) + _children_cpu()
    rps, p50, p99, errors = load(url, server.key("inference"), connections, seconds)
    client = _cpu_seconds([psutil.Process()]) + _children_cpu() - client_before
    other = _busy_seconds() - before_total - (_cpu_seconds(served) - before_served) - client
    return Run(rps, p50, p99, errors, max(0.0, 100 * other / (seconds * psutil.cpu_count())))


def forward_floor(model_store: Path, batch: int, repeats: int = 300) -> float:
    """Median in-process forward time (ms) of the archived module, one thread as in a worker."""
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(model_store / f"{MODEL_NAME}.mar") as mar:
            mar.extractall(folder)
        net, metadata = load_bundle(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    window = 60 + torch.rand(batch, metadata["window"], len(metadata["features"]))
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 30):
            start = time.perf_counter()
            net(window)
            times.append((time.perf_counter() - start) * 1e3)
    torch.set_num_threads(threads)
    return statistics.median(times[30:])


def log_bytes(server: Server) -> int:
    return sum(path.stat().st_size for path in server.logs.glob("*") if path.is_file())


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(" [")[0] if \
        shutil.which("wrk") else "not installed (Python client)"
    return {"cpu": f"{psutil.cpu_count()} x {cpu}", "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
            "os": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "java": java[0] if java else "?", "load generator": wrk}


def _process_tree(server: Server) -> list[psutil.Process]:
    pid = server.pid()
    if pid is None:
        return []
    frontend = psutil.Process(pid)
    return [frontend, *frontend.children(recursive=True)]


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (Linux counts guest time inside user time)."""
    times = psutil.cpu_times()
    return sum(getattr(times, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq"))


def served_config(server: Server) -> dict[str, str]:
    """What the running server actually uses: the model's workers and batching, the queue, auth."""
    from stockcast.serving.client import call
    from stockcast.serving.server import read_properties

    model = call("GET", f"{server.url('management')}/models/{MODEL_NAME}", server.key("management")).json()[0]
    properties = read_properties(server.config)
    return {
        "workers": f"{len(model['workers'])} (torch threads per worker: 1)",
        "batching": f"batchSize {model['batchSize']}, maxBatchDelay {model['maxBatchDelay']} ms",
        "job_queue_size": properties.get("job_queue_size", "100 (TorchServe default)"),
        "token auth": "on" if server.key_file.exists() else "off",
        "logging": f"{server.log_config.name} (async, warnings + startup only, rotated)",
        "JVM": properties.get("vmargs", "TorchServe defaults"),
    }


def report(levels: list[Level], floor: dict[int, float], config: dict[str, str], host: dict[str, str],
           log_mb_per_minute: float, seconds: int, client: str) -> str:
    """The Markdown results section of BENCHMARKS.md."""
    runs = len(levels[0].runs)
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `make bench`: {client}, {runs} runs of {seconds} s "
             "per connection count, medians (errors: total over the runs).", "",
             "| connections | req/s | p50 ms | p99 ms | errors | other load % | req/s per run |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for level in levels:
        per_run = ", ".join(f"{run.rps:,.0f}" for run in level.runs)
        lines.append(f"| {level.connections} | {level.median('rps'):,.0f} | {level.median('p50'):.2f} | "
                     f"{level.median('p99'):.2f} | {sum(run.errors for run in level.runs)} | "
                     f"{level.median('other_cpu'):.0f} | {per_run} |")
    single = next(level for level in levels if level.connections == 1)
    busiest = max(levels, key=lambda level: level.median("rps"))
    per_core = 1e3 * 32 / floor[32]
    lines += ["", "In-process floor (the archived module, `torch.set_num_threads(1)` as in a worker):", "",
              "| batch | forward ms | per request ms | server / floor |", "|---:|---:|---:|---|",
              f"| 1 | {floor[1]:.3f} | {floor[1]:.3f} | single-client p50 is {single.median('p50') / floor[1]:.1f}x "
              "the forward pass |",
              f"| 32 | {floor[32]:.3f} | {floor[32] / 32:.4f} | best throughput ({busiest.median('rps'):,.0f} req/s at "
              f"{busiest.connections} connections) is {100 * busiest.median('rps') / (2 * per_core):.0f} % of "
              f"2 cores x {per_core:,.0f} req/s |", "",
              f"Log volume under load: {log_mb_per_minute:.2f} MB per minute (all files in the server's logs/).", "",
              "Config: " + "; ".join(f"{key} {value}" for key, value in config.items()) + ".", "",
              "Machine: " + "; ".join(f"{key} {value}" for key, value in host.items()) + "."]
    return "\n".join(lines)
