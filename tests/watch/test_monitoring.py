"""The stack's monitoring against real servers: Prometheus (Debian's package, as `.ci/run` installs it) loads
monitoring/prometheus/ as compose.yaml mounts it, scrapes a real TorchServe, evaluates the alert rules, and
every query of the Grafana dashboard returns a series."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stockcast.serving.client import call
from stockcast.serving.private_server import free_ports
from tests.conftest import PROMETHEUS
from tests.serving import PRICES, ROOT, predict, running_server

PROMETHEUS_DIR = ROOT / "monitoring" / "prometheus"
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "stockcast.json"

needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                      reason=PROMETHEUS)


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the provisioned dashboard."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel["targets"]]


@needs_prometheus
@pytest.mark.parametrize("what,path", [("config", PROMETHEUS_DIR / "prometheus.yml"),
                                       ("rules", PROMETHEUS_DIR / "alerts.yml")])
def test_promtool_accepts_the_config_and_the_rules(what, path):
    check = subprocess.run(["promtool", "check", what, str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def scrape_config(folder: Path, metrics_url: str) -> Path:
    """monitoring/prometheus/ with TorchServe at `metrics_url` and a 1 s scrape and evaluation interval."""
    folder.mkdir(parents=True, exist_ok=True)
    for rules in ("alerts.yml", "drift_rules.yml"):
        shutil.copy(PROMETHEUS_DIR / rules, folder / rules)
    text = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    text = re.sub(r"(scrape|evaluation)_interval: \S+", r"\1_interval: 1s", text)
    text = text.replace("torchserve:8082", urllib.parse.urlparse(metrics_url).netloc)
    text = text.replace("pushgateway:9091", f"127.0.0.1:{free_ports(1)[0]}")  # none runs: that target is down
    path = folder / "prometheus.yml"
    path.write_text(text)
    return path


@contextmanager
def running_prometheus(config: Path, folder: Path) -> Iterator[str]:
    """Prometheus on a free loopback port, stopped on leaving even when a test fails; yields its URL."""
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    with open(folder / "prometheus.log", "wb") as log:
        process = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
                                    f"--web.listen-address={urllib.parse.urlparse(url).netloc}"],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"{url}/-/ready"):
            assert process.poll() is None and time.monotonic() < deadline, (folder / "prometheus.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return call("GET", url, timeout=2).status == 200
    except OSError:
        return False


def query(prometheus: str, promql: str) -> list[dict]:
    answer = call("GET", f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}").json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.fixture(scope="module")
def scraped(trained_run, tmp_path_factory) -> Iterator[str]:
    """Prometheus that scraped a real TorchServe for a few seconds of forecasts, and one refused request."""
    result, _ = trained_run
    folder = tmp_path_factory.mktemp("monitoring")
    with running_server(result, folder / "torchserve") as server, \
            running_prometheus(scrape_config(folder / "prometheus", server.url("metrics")), folder) as prometheus:
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                assert predict(server, {"prices": PRICES}).status == 200
                time.sleep(0.05)

        client = threading.Thread(target=traffic)
        client.start()
        try:
            assert predict(server, {"prices": [1.0]}).status == 400
            deadline = time.monotonic() + 60
            while not all(query(prometheus, expr) for _, expr in dashboard_queries()):
                assert client.is_alive() and time.monotonic() < deadline, "the panels' queries stayed empty"
                time.sleep(1)
        finally:
            stop.set()
            client.join()
        yield prometheus


@needs_prometheus
@pytest.mark.parametrize("title,expr", dashboard_queries())
def test_every_dashboard_query_returns_a_series(scraped, title, expr):
    assert query(scraped, expr), f"{title}: {expr}"


@needs_prometheus
def test_forecasts_are_counted_per_ticker_by_the_handler(scraped):
    series = query(scraped, "sum by (Ticker) (rate(stockcast_forecasts_total[1m]))")
    assert [(s["metric"]["Ticker"], float(s["value"][1]) > 0) for s in series] == [("VALE3.SA", True)]


@needs_prometheus
def test_the_alert_rules_evaluate_without_errors_and_none_fires(scraped):
    time.sleep(1.5)  # one more evaluation round after the scrapes the queries saw
    groups = call("GET", f"{scraped}/api/v1/rules").json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 4 + 6 and all(rule["health"] == "ok" for rule in rules), rules  # alerts.yml, drift_rules.yml
    assert [rule["name"] for rule in rules if rule["state"] != "inactive"] == []
