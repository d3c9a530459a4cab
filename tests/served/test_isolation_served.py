"""Every request isolated, against a real TorchServe: an archive whose net raises on one input and whose risk
arithmetic raises on one position answers those requests a 500 with an id its worker log carries, and their
batch neighbours (concurrent requests, the other instances of a portfolio) 200s; a broken stored file asked
30,000 times leaves the workers' memory flat."""

from __future__ import annotations

import re
import shutil
import statistics
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.serving import PRICES, answered, running_server

pytestmark = pytest.mark.slow

POISON = 13.125  # a last close the altered net raises on
FAILING_NET = f'''

_served_forward = ForecastNet.forward


def _failing_forward(self, prices, *args, **kwargs):  # a fault injected by tests/served/test_isolation_served.py
    if bool((prices[:, -1, 0] == {POISON}).any()):
        raise RuntimeError("an injected fault")
    return _served_forward(self, prices, *args, **kwargs)


ForecastNet.forward = _failing_forward
'''
FAILING_RISK = '''

_measures = measures


def measures(changes, shares, *args):  # a fault injected by tests/served/test_isolation_served.py
    if float(shares[0]) == 13:
        raise ZeroDivisionError("an injected fault")
    return _measures(changes, shares, *args)
'''


def _with_faults(mar: Path) -> None:
    """The archive's bundles' nets raise on a last close of POISON, its risk on a first position of 13 shares."""
    altered = mar.with_suffix(".altered")
    with zipfile.ZipFile(mar) as source, zipfile.ZipFile(altered, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            data = source.read(entry)
            if re.fullmatch(r"bundles/[^/]+/net\.py", entry.filename):
                data += FAILING_NET.encode()
            elif entry.filename == "stockcast/runtime/copula.py":
                data += FAILING_RISK.encode()
            target.writestr(entry, data)
    shutil.move(altered, mar)


@pytest.fixture(scope="module")
def served(trained_run, tmp_path_factory):
    store = tmp_path_factory.mktemp("isolation_store")
    (store / "VALE3.SA.csv").write_text("Date,Open,High,Low,Close\n2025-01-02,1,2,0.5,not a number\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOCKCAST_PRICE_STORE", str(store))
        with running_server(trained_run[0], tmp_path_factory.mktemp("isolation"), _with_faults) as server:
            yield server


def _logged(server, incident: str) -> bool:
    """Whether the workers' log (written asynchronously) names `incident` within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(incident in path.read_text(errors="replace") for path in server.logs.glob("model_log*.log")):
            return True
        time.sleep(0.2)
    return False


def test_a_failing_forward_pass_is_its_own_500_and_its_neighbours_answer(served):
    poisoned = {"prices": [*PRICES[:-1], POISON]}
    bodies = [poisoned if number % 6 == 0 else {"prices": PRICES} for number in range(48)]
    with ThreadPoolExecutor(16) as pool:  # concurrent: TorchServe batches them (batchSize 16)
        answers = list(pool.map(lambda body: answered(served, body), bodies))
    assert [status for status, _ in answers] == [500 if body is poisoned else 200 for body in bodies]
    status, portfolio = answered(served, {"instances": [{"prices": PRICES}, poisoned, {"prices": PRICES}]})
    good, bad, other = portfolio["predictions"]  # one forward pass shared by three, retried alone
    assert status == 200 and good == other == answers[1][1] and bad["code"] == 500
    incident = re.search(r"id (\w+) in its log", bad["message"]).group(1)
    assert "RuntimeError" in bad["message"] and _logged(served, incident), bad


def test_a_failing_risk_is_its_own_500_and_its_neighbours_answer(served):
    closes = [60 * (1 + 0.02 * ((day * 7919) % 13 - 6) / 6) for day in range(60)]
    instances = [{"prices": closes, "last_date": "2025-11-07"}, {"prices": closes[::-1], "last_date": "2025-11-07"}]
    bodies = [{"instances": instances, "risk": {"positions": [13 if number % 4 == 0 else 10, 5]}}
              for number in range(16)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda body: answered(served, body), bodies))
    assert [status for status, _ in answers] == [500 if number % 4 == 0 else 200 for number in range(16)], answers
    assert "ZeroDivisionError" in answers[0][1]["message"] and answers[1][1]["risk"]["var"]


def _workers_memory(server) -> int:
    """The memory the server's Python workers hold alone (USS), in bytes."""
    workers = [child for child in psutil.Process(server.pid()).children(recursive=True)
               if "model_service_worker" in " ".join(child.cmdline())]
    assert workers
    return sum(worker.memory_full_info().uss for worker in workers)


def test_a_broken_file_asked_30000_times_leaves_the_workers_memory_flat(served):
    """A fresh worker's USS grows over its first 20,000 or so asks whatever is asked, and one sample moves by
    megabytes (the allocator's arenas), so the growth is the trend of 11 samples over asks 20,001 to 30,000:
    measured 0.13 to 4 MiB per 10,000 asks, the more after this module's other tests (7 MiB over asks 10,001
    to 20,000, less warm); the bound is 8 MiB, where keeping the error as an exception object grew Python's
    heap by 27 MB per 9,000 asks. The 1 MiB bound over asks 1,001 to 10,000 is measured on the archived
    handler in process (tests/runtime/test_failure.py), where the allocator's moves do not count."""
    broken = {"instances": [{"stock": "VALE3"}] * 100}  # 100 asks a request

    def ask(body, requests: int) -> None:
        with ThreadPoolExecutor(4) as pool:
            for status, answer in pool.map(lambda _: answered(served, body), range(requests)):
                assert status == 200 and all("forecast" in item or "VALE3.SA.csv cannot be read" in item["message"]
                                             for item in answer["predictions"])

    ask({"instances": [{"prices": PRICES}] * 100}, 100)  # the workers warmed up by 10,000 forecasts
    ask(broken, 200)  # asks 1 to 20,000: a fresh worker's memory grows over its first 20,000 or so, whatever asked
    samples = []
    for asked in range(20_000, 30_001, 1_000):  # the trend of 11 samples over asks 20,001 to 30,000: the noise of
        samples.append((asked, _workers_memory(served)))  # one sample is as large as the bound
        if asked < 30_000:
            ask(broken, 10)
    grown = statistics.linear_regression(*zip(*samples, strict=True)).slope * 10_000
    print(f"the workers' USS grew {grown / 2**20:.2f} MiB per 10,000 asks of a broken file (asks 20,001 to 30,000)")
    assert grown < 8 * 2**20
