"""What `make bench` measures besides the load itself: the CPU the rest of the machine used during a run,
the in-process floors (the archived net's and handler's, and the bare peer's LSTM, on the requests the load
sends), the server's log volume, config and machine.

Each cell runs several times and reports medians, since a single run on a small shared machine varies up to 2x;
the CPU other processes used is reported beside it, so a noisy run can be told from a slow server.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch

from benchmarks.bare_peer import BareNet, first_bundle
from benchmarks.inprocess import interleaved_ms, worker
from benchmarks.load import PAYLOAD, Load, python_run, wrk_run
from stockcast.serving.client import call
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME, read_properties


@dataclass(frozen=True)
class Run(Load):
    """One load run, with the CPU other processes used meanwhile."""

    other_cpu: float  # percent of the whole machine used by processes other than server and client


@dataclass(frozen=True)
class Level:
    connections: int
    runs: list[Run]

    def median(self, field: str) -> float:
        return statistics.median(getattr(run, field) for run in self.runs)


@dataclass(frozen=True)
class Target:
    """A server under load: its predictions URL, its key, and its top process (its CPU is its process tree's)."""

    url: str
    key: str | None
    pid: int | None

    @classmethod
    def torchserve(cls, server: Server) -> Target:
        return cls(f"{server.url('inference')}/predictions/{MODEL_NAME}", server.key("inference"), server.pid())


def measure(target: Target, connections: int, seconds: int, use_wrk: bool, payload: Any = PAYLOAD) -> Run:
    """One run, with the CPU the rest of the machine used meanwhile."""
    served = _process_tree(target.pid)
    before_total, before_served = _busy_seconds(), _cpu_seconds(served)
    load = wrk_run if use_wrk else python_run
    client_before = _cpu_seconds([psutil.Process()]) + _children_cpu()
    figures = load(target.url, target.key, connections, seconds, payload)
    client = _cpu_seconds([psutil.Process()]) + _children_cpu() - client_before
    other = _busy_seconds() - before_total - (_cpu_seconds(served) - before_served) - client
    return Run(**vars(figures), other_cpu=max(0.0, 100 * other / (seconds * psutil.cpu_count())))


@dataclass(frozen=True)
class Floors:
    """In-process medians (ms, one torch thread as in a worker) on the requests the load sends."""

    net: dict[int, float]  # batch -> the archived net's forward pass
    bare: dict[int, float]  # batch -> the bare peer's LSTM forward pass
    handler: float  # one request through the archived handler: parse, forward, answer, JSON
    handler_batch: float  # the same per request, in a full batch (`batch` requests of the bodies in turn)
    batch: int  # the archive's batchSize


def floors(archive: Path, bodies: list[dict], batches: tuple[int, ...] = (1, 32)) -> Floors:
    """The floors of the archive's (first) net, its handler (one request, and a full batch of its batchSize) and the
    bare peer's net over `bodies` in turn, timed in turns."""
    encoded = [json.dumps(body).encode() for body in bodies]
    torch.manual_seed(0)
    bare = BareNet(first_bundle(archive)).eval()
    bare_rows = torch.cat([bare.rows(body) for body in bodies])
    with worker(archive) as loaded:
        net = next(iter(loaded.handler.portfolio.bundles.values())).net
        rows = torch.stack([loaded.instances(body)[0].history.float() for body in encoded])
        turn = itertools.cycle(encoded)
        full = loaded.batch_size
        calls = {"handler": lambda: loaded.handle([next(turn)]),
                 "handler_batch": lambda: loaded.handle([next(turn) for _ in range(full)])}
        for batch in batches:
            calls["net", batch] = functools.partial(net, _cycled(rows, batch))
            calls["bare", batch] = functools.partial(bare, _cycled(bare_rows, batch))
        found = interleaved_ms(calls)
    return Floors({batch: found["net", batch] for batch in batches}, {batch: found["bare", batch] for batch in batches},
                  found["handler"], found["handler_batch"] / full, full)


def _cycled(rows: torch.Tensor, size: int) -> torch.Tensor:
    """A batch of `size` of the windows, cycling through them."""
    return rows[torch.arange(size) % len(rows)]


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


def served_config(server: Server) -> dict[str, str]:
    """What the running server actually uses: the model's workers and batching, the queue, auth."""
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


def _process_tree(pid: int | None) -> list[psutil.Process]:
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
