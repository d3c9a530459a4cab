"""The archived handler in this process, as a TorchServe worker runs it: the floor a server is measured
against (its forward passes without any server), and the body of the peer server (benchmarks/peer.py)."""

from __future__ import annotations

import functools
import json
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from ts.context import Context, RequestProcessor

from stockcast.runtime import inference, preprocess
from stockcast.runtime.handler import ForecastHandler


class _Metrics:
    """TorchServe's metrics cache, as far as the handler uses it: nothing is recorded."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@dataclass
class Worker:
    """One archive's handler, initialized as TorchServe initializes it in a worker."""

    handler: ForecastHandler
    folder: Path

    @functools.cached_property
    def _settings(self) -> tuple[dict, dict]:
        """The manifest and model-config.yaml, read once (a worker reads them once, at load)."""
        return (json.loads((self.folder / "MAR-INF" / "MANIFEST.json").read_text()),
                yaml.safe_load((self.folder / "model-config.yaml").read_text()))

    @property
    def batch_size(self) -> int:
        """The archive's model-config.yaml batchSize: the most requests TorchServe hands a worker at once."""
        return int(self._settings[1].get("batchSize", 1))

    def context(self, count: int) -> Context:
        manifest, settings = self._settings
        context = Context("lstm", str(self.folder), manifest, count, None, "0.12.0", metrics=_Metrics(),
                          model_yaml_config=settings)
        context.request_processor = [RequestProcessor({}) for _ in range(count)]
        return context

    def instances(self, body: bytes | str) -> list[preprocess.Instance]:
        """The forecasts one request asks for, parsed as the handler parses them (the forward pass's input; by name,
        from the handler's price store)."""
        return preprocess.parse_batch([({"body": body}, {})], self.handler.portfolio, self.handler.store).instances

    @staticmethod
    def forward(instances: list[preprocess.Instance]) -> list[torch.Tensor]:
        """The handler's forward passes alone: the floor a server is measured against."""
        return inference.forecast(instances)

    def handle(self, bodies: list[bytes]) -> list[tuple[int, str]]:
        """One batch of request bodies -> (status, JSON body) each, as the worker answers them."""
        context = self.context(len(bodies))
        answers = self.handler.handle([{"body": body} for body in bodies], context)
        return [(context.get_response_status(i)[0], answer) for i, answer in enumerate(answers)]


@contextmanager
def worker(archive: Path) -> Iterator[Worker]:
    """The archive unpacked as TorchServe unpacks it and its handler initialized there (the runtime: this
    checkout's, which the archive ships)."""
    with tempfile.TemporaryDirectory(prefix="stockcast-worker-") as folder:
        with zipfile.ZipFile(archive) as mar:
            mar.extractall(folder)
        loaded = Worker(ForecastHandler(), Path(folder))
        loaded.handler.initialize(loaded.context(1))
        yield loaded


def forward_ms(call: Callable[[], Any], repeats: int = 300) -> float:
    """Median time (ms) of `call()` with one torch thread, as in a worker (see `interleaved_ms`)."""
    return interleaved_ms({"call": call}, repeats)["call"]


def interleaved_ms(calls: Mapping[Hashable, Callable[[], Any]], repeats: int = 300, rounds: int = 10) -> dict:
    """Median time (ms) of each call with one torch thread, as in a worker, after a warm-up: the CPU time of this
    thread (what the machine gave other processes meanwhile is not counted), the calls taking turns in `rounds`,
    so that what is left of a change in the machine's load reaches each alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times: dict = {name: [] for name in calls}
    try:
        with torch.inference_mode():
            for call in calls.values():
                for _ in range(30):
                    call()
            for _ in range(rounds):
                for name, call in calls.items():
                    for _ in range(max(1, repeats // rounds)):
                        start = time.thread_time()
                        call()
                        times[name].append((time.thread_time() - start) * 1e3)
    finally:
        torch.set_num_threads(threads)
    return {name: statistics.median(found) for name, found in times.items()}
