"""`make stack-test`: compose.yaml's stack built from a fresh clone of HEAD, brought up, used end to end and
broken on purpose, then removed.

Not part of `make test` (builds four images and trains in a container: many minutes): it runs only with
STOCKCAST_STACK_TEST=1. The compose tool is `docker compose` where a Docker engine answers, else
podman-compose with podman's settings (tests/containers.py). Where images cannot be pulled,
deploy/compose/debian.yaml builds Prometheus and the Pushgateway from Debian's packages and leaves Grafana
out. The containers have no internet: the repository's price CSVs go into the `prices` volume, the offline
fallback of a user without Yahoo. The steps are the tests below, in order, on one stack; each prints what it
saw, and the summary is printed again at the end.
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import math
import os
import re
import shlex
import socket
import subprocess
import tarfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from stockcast.data.prices import read_price_csv
from stockcast.release import registry
from stockcast.serving.client import Response, call, post_json
from stockcast.serving.client_loop import ClientLoop
from stockcast.serving.sessions import trading_calendar
from tests.containers import (
    PODMAN_FLAGS,
    Built,
    build_settings,
    docker_answers,
    engine,
    only_with,
    podman_ready,
    pulls_images,
    sh,
)
from tests.serving import ROOT, recent_bars, store_file

pytestmark = only_with("STOCKCAST_STACK_TEST", "needs the images built and the stack up: make stack-test, many minutes")

PROJECT = "stockcast-stack-test"
DEBIAN = "deploy/compose/debian.yaml"
# What the test builds, as (tag, Dockerfile, target); the services of compose.yaml that run each image.
IMAGES = {"serve": ("localhost/stockcast:stack-test", "Dockerfile", None, ["torchserve"]),  # builds `train` too
          "train": ("localhost/stockcast-train:stack-test", "Dockerfile", "train", ["mlflow", "admin", "daily"]),
          "prometheus": ("localhost/stockcast-prometheus:stack-test", "deploy/compose/monitoring.Dockerfile",
                         "prometheus", ["prometheus"]),
          "pushgateway": ("localhost/stockcast-pushgateway:stack-test", "deploy/compose/monitoring.Dockerfile",
                          "pushgateway", ["pushgateway"])}
INFERENCE, MLFLOW, PROMETHEUS = "http://127.0.0.1:8080", "http://127.0.0.1:5000", "http://127.0.0.1:9090"
KEY_COMMAND = "import json; print(json.load(open('key_file.json'))['inference']['key'])"  # docs/containers.md
EARLIER_END = "2025-09-12"  # PETR4's new model ends here: the monitor then has its later closes to score
STACK_PORTS = (8080, 8081, 8082, 7070, 7071, 5000, 9090, 9091, 3000)
PUBLISHED = (8080, 5000, 9090)  # the ports compose.yaml publishes on the host (3000: Grafana, where it runs)
SUMMARY: list[str] = []


def say(line: str) -> None:
    print(line, flush=True)
    SUMMARY.append(line)


@dataclass
class Stack:
    files: list[Path]
    clone: Path
    seen: dict[str, Any] = field(default_factory=dict)  # what one step leaves for a later one to compare

    def compose_command(self, *args: str) -> list[str]:
        tool = ["docker", "compose"] if docker_answers() else ["podman-compose", "--podman-args",
                                                                 shlex.join(PODMAN_FLAGS)]
        return [*tool, "-p", PROJECT, *[arg for path in self.files for arg in ("-f", str(path))], *args]

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(self.compose_command(*args), capture_output=True, text=True, timeout=timeout,
                              cwd=self.clone)
        assert not check or done.returncode == 0, f"compose {args}: {done.stdout[-4000:]}{done.stderr[-4000:]}"
        return done

    def container(self, service: str) -> str:
        found = sh("ps", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}",
                   "--filter", f"label=com.docker.compose.service={service}").stdout.split()
        assert len(found) == 1, f"{service}: containers {found}"
        return found[0]

    def key(self) -> str:
        """The inference key, read as docs/containers.md says: `docker compose exec torchserve python -c ...`."""
        return self.compose("exec", "-T", "torchserve", "python", "-c", KEY_COMMAND).stdout.strip()

    def forecast(self, stock: str) -> Response:
        return post_json(f"{INFERENCE}/predictions/lstm", body(self.clone, stock), self.key())

    def admin(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return self.compose("--profile", "admin", "run", "--rm", "admin", *args, check=False, timeout=timeout)


def body(clone: Path, stock: str) -> dict[str, Any]:
    """What `make predict` sends: the last 100 days of closes with the day's open, high and low."""
    prices = read_price_csv(clone / "prices" / f"{stock}.SA.csv").tail(100)
    return {"stock": stock, "last_date": f"{prices.index[-1]:%Y-%m-%d}", "prices": prices["Close"].tolist(),
            **{name.lower(): prices[name].tolist() for name in ("Open", "High", "Low")}}


def overrides(work: Path) -> Path:
    """The test's own compose file: its images' tags (so a user's stockcast:latest is neither used nor
    replaced)."""
    services = {name: {"image": tag} for tag, _, _, names in IMAGES.values() for name in names
                if not (pulls_images() and name in ("prometheus", "pushgateway"))}
    path = work / "stack-test.yaml"
    path.write_text(yaml.safe_dump({"services": services}))
    return path


def build(clone: Path, work: Path) -> None:
    started = time.monotonic()
    settings = build_settings(work)  # makes the stand-in base where it has to
    say(f"base image and build settings: {time.monotonic() - started:.0f} s")
    for name, (tag, dockerfile, target, _) in IMAGES.items():
        if pulls_images() and name in ("prometheus", "pushgateway"):
            continue  # prom/ images from the registry, as compose.yaml names them
        started = time.monotonic()
        sh("build", *settings, "-f", str(clone / dockerfile), *(["--target", target] if target else []),
           "-t", tag, str(clone), timeout=5400)
        size = int(sh("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
        say(f"built {tag}: {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB")


def until(what: str, check, timeout: float, every: float = 2.0):
    """`check()`'s first truthy value, trying every `every` s for `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (OSError, AssertionError, ValueError, KeyError):
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(every)


def healthy(cid: str) -> bool:
    """Running, and its health check (where it has one) passing. podman runs health checks through systemd
    timers, which this machine lacks: the check is run here instead."""
    state = json.loads(sh("inspect", "--format", "{{json .State}}", cid).stdout)
    if not state.get("Running"):
        return False
    if engine() == ["docker"]:
        return state.get("Health", {"Status": "healthy"})["Status"] == "healthy"
    has_check = sh("inspect", "--format", "{{json .Config.Healthcheck}}", cid).stdout.strip() not in ("null", "")
    return not has_check or sh("healthcheck", "run", cid, check=False).returncode == 0


def running_services() -> list[str]:
    found = sh("ps", "--filter", f"label=com.docker.compose.project={PROJECT}", "--format",
               '{{index .Labels "com.docker.compose.service"}}').stdout.split()
    return sorted(found)


def all_healthy(stack: Stack, timeout: float = 300) -> list[str]:
    services = running_services()
    until("every service healthy", lambda: all(healthy(stack.container(s)) for s in services), timeout, 5)
    return services


def prometheus(query: str) -> list[dict]:
    answer = call("GET", f"{PROMETHEUS}/api/v1/query?query={urllib.parse.quote(query)}")
    assert answer.status == 200, answer.body
    return answer.json()["data"]["result"]


def no_nan(answer: Response) -> bool:
    return answer.status == 200 and not re.search(rb"\bNaN\b|Infinity", answer.body) and \
        all(math.isfinite(price) for price in answer.json()["forecast"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    started = time.monotonic()
    work = tmp_path_factory.mktemp("stack")
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    files = [clone / "compose.yaml", *([] if pulls_images() else [clone / DEBIAN]), overrides(work)]
    stack = Stack(files, clone)
    podman_ready(work, () if docker_answers() else ("podman-compose",), by_name=True)
    busy = [port for port in PUBLISHED if answers("127.0.0.1", port)]
    if busy:  # before 8 minutes of builds: a container publishing a busy port is created but never starts
        pytest.fail(f"ports the stack publishes are in use here: {busy} (a `make serve`? make stop)", pytrace=False)
    say(f"compose files: {', '.join(str(path.relative_to(work)) for path in files)}"
        + ("" if pulls_images() else "; Grafana left out (no Debian package, no registry to pull it from)"))
    with Built():
        build(clone, work)
        try:
            up(stack)
            seed_prices(stack)
            yield stack
        finally:
            down = stack.compose("down", "--volumes", "--remove-orphans", check=False, timeout=300)
            label = f"label=com.docker.compose.project={PROJECT}"
            left = [kind for kind in ("volume", "network")
                    if sh(kind, "ls", "--quiet", "--filter", label).stdout.strip()]
            say(f"step 9: compose down --volumes: exit {down.returncode}; volumes and networks left: {left or 'none'}")
    images = [tag for tag, *_ in IMAGES.values() if sh("image", "inspect", tag, check=False).returncode == 0]
    say(f"step 9: images of the test left: {images or 'none'}; wall time {time.monotonic() - started:.0f} s")
    print("\n## make stack-test\n" + "\n".join(SUMMARY))


STARTING = 60  # seconds after which a container still created is started by the test, to see its error


def up(stack: Stack) -> None:
    """`compose up -d`, watched: podman-compose starts the containers one after another and waits for one that
    never starts (a runtime refusing it). A container still created STARTING s in is started here: where that
    fails, or one has exited, the test stops with the container's own error."""
    started = time.monotonic()
    with subprocess.Popen(stack.compose_command("up", "-d", "--no-build"), cwd=stack.clone, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as run:
        while run.poll() is None:
            if time.monotonic() - started > STARTING:
                failed = {cid[:12]: error for cid, state in states().items()
                          if (error := start_error(cid, state)) is not None}
                if failed:
                    run.kill()
                    pytest.fail(f"containers not running {STARTING} s after compose up: {failed}", pytrace=False)
            assert time.monotonic() - started < 900, "compose up: not done within 900 s"
            time.sleep(2)
        output = run.stdout.read() if run.stdout else ""
    assert run.returncode == 0, f"compose up: exit {run.returncode}: {output[-4000:]}"


def start_error(cid: str, state: str) -> str | None:
    """Why a container is not running: an exited one's last log lines, a created one's error as `start` gives
    it (None once it runs)."""
    if state in ("exited", "dead"):
        return f"{state}: {sh('logs', '--tail', '5', cid, check=False).stderr[-500:]}"
    if state != "created":
        return None
    done = sh("start", cid, check=False, timeout=120)
    return None if done.returncode == 0 else f"start: {(done.stderr or done.stdout)[-500:]}"


def states() -> dict[str, str]:
    """The project's containers and their states (created, running, exited, ...)."""
    listed = sh("ps", "--all", "--filter", f"label=com.docker.compose.project={PROJECT}", "--format",
                "{{.ID}} {{.State}}", check=False).stdout.split("\n")
    return {line.split()[0]: line.split()[1].lower() for line in listed if len(line.split()) >= 2}


def seed_prices(stack: Stack) -> None:
    """The repository's price CSVs into the `prices` volume (the download cache, read when Yahoo cannot be
    reached), written as the image's user through the running `daily` container."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for path in sorted((stack.clone / "prices").glob("*.csv")):
            tar.add(path, arcname=path.name)
    sh("exec", "-i", stack.container("daily"), "tar", "-x", "-C", "/home/app/stockcast/data", stdin=archive.getvalue())
    listed = sh("exec", stack.container("daily"), "ls", "/home/app/stockcast/data").stdout.split()
    say(f"prices volume: {', '.join(listed)}")


def test_1_every_service_is_healthy_and_8080_answers_with_the_key(stack):
    services = all_healthy(stack)
    vale3 = until("a VALE3 forecast", lambda: (a := stack.forecast("VALE3")).status == 200 and a, 300)
    assert no_nan(vale3) and vale3.json()["stock"] == "VALE3.SA"
    stack.seen["VALE3"] = vale3.json()
    say(f"step 1: healthy: {', '.join(services)}; VALE3 on 8080 with the key from `compose exec`: model "
        f"{vale3.json()['model_version']}, day 1 median {vale3.json()['forecast'][0]:.2f}")


def test_2_retrain_in_the_stack_trains_against_its_mlflow_and_deploys_into_its_torchserve(stack):
    started = time.monotonic()
    done = stack.admin("retrain", "--stock", "PETR4", "--end", EARLIER_END)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    client = MlflowClient(MLFLOW)
    champion = client.get_model_version_by_alias(registry.model_name("PETR4.SA"), registry.CHAMPION)
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED" and "test_crps" in run.data.metrics
    assert "bundle" in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    stored = sh("exec", stack.container("mlflow"), "find", "/home/app/mlflow/artifacts", "-path",
                f"*{run.info.run_id}*bundle*", "-type", "f").stdout.split()
    assert stored, "the bundle is not in the MLflow server's artifacts volume"
    petr4 = stack.forecast("PETR4")
    assert no_nan(petr4) and str(petr4.json()["model_version"]) == champion.tags["archive_version"]
    assert champion.tags["end"] == EARLIER_END
    assert stack.forecast("VALE3").json() == stack.seen["VALE3"], "VALE3's answer changed"
    status = stack.admin("status")
    assert status.returncode == 0 and "PETR4.SA" in status.stdout, status.stdout + status.stderr
    stack.seen |= {"PETR4": petr4.json(), "run": run.info.run_id, "runs": runs(client)}
    say(f"step 2: admin retrain --stock PETR4 --end {EARLIER_END}: exit 0 in {seconds:.0f} s; run "
        f"{run.info.run_id[:8]} FINISHED, test_crps {run.data.metrics['test_crps']:.4f}, bundle in the artifacts "
        f"volume ({len(stored)} files); {champion.name} v{champion.version} is the champion; PETR4 answered by "
        f"model {petr4.json()['model_version']}, VALE3's answer unchanged")
    say("step 2: admin status:\n    " + "\n    ".join(status.stdout.strip().splitlines()))


def runs(client: MlflowClient) -> set[str]:
    return {run.info.run_id for experiment in client.search_experiments()
            for run in client.search_runs([experiment.experiment_id])}


def backdate_deploys(stack: Stack) -> list:
    """The stack's clock says today, and the offline prices end in November 2025: deploys recorded today leave
    the monitor no served day with closes after it. The deploy history (`deployed.json`, in the serve volume)
    is set back to the evening of PETR4's model's last day, in the same order, as if deployed then."""
    script = ("import json; h = json.load(open('deployed.json')); "
              f"h['defaults'] = [[v, '{EARLIER_END}T21:%02d:00+00:00' % (20 + i)] for i, (v, _) in "
              "enumerate(h['defaults'])]; json.dump(h, open('deployed.json', 'w')); print(json.dumps(h['defaults']))")
    return json.loads(stack.compose("exec", "-T", "torchserve", "python", "-c", script).stdout)


def test_3_the_daily_job_reaches_the_pushgateway_and_prometheus_scrapes_it(stack):
    backdated = backdate_deploys(stack)
    done = stack.compose("run", "--rm", "daily", "--now", check=False, timeout=1800)
    lines = done.stdout.strip().splitlines()
    assert "daily: monitor exited" in done.stdout, done.stdout[-4000:] + done.stderr[-4000:]
    pushed = sh("exec", stack.container("pushgateway"), "wget", "-q", "-O", "-",
                "http://127.0.0.1:9091/metrics").stdout
    coverage = [line for line in pushed.splitlines() if line.startswith("stockcast_coverage_80")]
    assert any('ticker="PETR4.SA"' in line and 'window="20"' in line for line in coverage), \
        done.stdout[-4000:] + done.stderr[-2000:]
    scraped = until("stockcast_coverage_80 in Prometheus", lambda: prometheus("stockcast_coverage_80"), 120, 5)
    up = {sample["metric"]["job"]: sample["value"][1] for sample in prometheus("up")}
    assert up.get("torchserve") == "1" and up.get("pushgateway") == "1", up
    stack.seen["runs"] = runs(MlflowClient(MLFLOW))  # the monitor's runs too
    say(f"step 3: deploy history set back to {backdated}")
    say(f"step 3: daily --now: exit {done.returncode} (refresh offline: the CSVs' last day; monitor as drift "
        f"says); the Pushgateway holds {'; '.join(coverage)}; Prometheus has {len(scraped)} series of it; up: {up}")
    say("step 3: daily --now printed (last lines):\n    " + "\n    ".join(lines[-14:]))


def test_4_torchserve_stopped_fires_the_torchserve_down_alert(stack):
    started = time.monotonic()
    stack.compose("stop", "torchserve")
    try:
        firing = until("TorchServeDown firing", lambda: prometheus('ALERTS{alertname="TorchServeDown",'
                                                                   'alertstate="firing"}'), 240, 5)
        say(f"step 4: TorchServe stopped: TorchServeDown firing after {time.monotonic() - started:.0f} s "
            f"(the shipped rule: for 1m, scraped every 15 s): {firing[0]['metric']}")
    finally:
        stack.compose("start", "torchserve")
    until("TorchServe back", lambda: stack.forecast("VALE3").status == 200, 300)


def test_5_down_and_up_again_keeps_the_served_version_the_runs_and_the_deploy_history(stack):
    before = {stock: stack.forecast(stock).json() for stock in ("VALE3", "PETR4")}
    assert before == {stock: stack.seen[stock] for stock in before}
    stack.compose("down", timeout=300)
    up(stack)
    all_healthy(stack)
    after = {stock: until(f"{stock} after up", lambda s=stock: (a := stack.forecast(s)).status == 200 and a.json(),
                          300) for stock in before}
    assert after == before, "the answers changed across down and up"
    assert stack.seen["runs"] <= runs(MlflowClient(MLFLOW))
    deployed = json.loads(stack.compose("exec", "-T", "torchserve", "cat", "deployed.json").stdout)
    assert deployed["served"], deployed
    say(f"step 5: down and up: VALE3 (model {after['VALE3']['model_version']}) and PETR4 (model "
        f"{after['PETR4']['model_version']}) answer the same numbers; all {len(stack.seen['runs'])} MLflow runs "
        f"still there; deployed.json: served {deployed['served']}")


def test_6_kill_9_under_load_restarts_serving_the_last_deployed_version(stack):
    cid = stack.container("torchserve")
    restarts = int(sh("inspect", "--format", "{{.RestartCount}}", cid).stdout.strip() or 0)
    pid = int(sh("inspect", "--format", "{{.State.Pid}}", cid).stdout.strip())
    url = f"{INFERENCE}/predictions/lstm"
    with ClientLoop(url, stack.key(), body(stack.clone, "PETR4"), clients=2, pause=0.01, rekey=stack.key) as load:
        time.sleep(3)
        killed = time.monotonic()
        os.kill(pid, 9)  # the container's main process (tini), from the host
        back = until("a 200 after the restart", lambda: stack.forecast("PETR4").status == 200 and time.monotonic(),
                     300, 0.5)
        time.sleep(10)
    assert int(sh("inspect", "--format", "{{.RestartCount}}", stack.container("torchserve")).stdout.strip()) > \
        restarts, "the restart policy did not restart the container"
    failed = [(at - killed, outcome) for at, outcome in sorted(load.timeline) if outcome != 200]
    after = [outcome for at, outcome in load.timeline if at >= back + 1]
    clean = {"ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "BadStatusLine",
             "TimeoutError", 503, 400}  # 400: the old key, refused once; then read again
    assert {outcome for _, outcome in failed} <= clean, failed
    assert after and set(after) == {200}, {outcome: after.count(outcome) for outcome in set(after)}
    kinds = [outcome for _, outcome in failed]
    span = f"from {failed[0][0]:.1f} to {failed[-1][0]:.1f} s after the kill" if failed else "none"
    assert stack.forecast("PETR4").json() == stack.seen["PETR4"], "a different model answers after the restart"
    say(f"step 6: kill -9 of pid {pid} under 2 clients: back after {back - killed:.1f} s; {len(failed)} requests "
        f"failed ({span}; "
        f"{', '.join(f'{o}: {kinds.count(o)}' for o in sorted(set(kinds), key=str))}); from 1 s after the first "
        f"200 on, {len(after)} requests, all 200; the same PETR4 model answers "
        f"({stack.seen['PETR4']['model_version']})")


def host_addresses() -> list[str]:
    """This machine's own IPv4 addresses beyond loopback, without the container bridges' gateways."""
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3].split("/")[0] for line in shown.splitlines()
            if not re.match(r"(lo|podman|cni-podman|docker|br-|veth)", line.split()[1])]


def answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def test_7_only_8080_listens_beyond_loopback_and_management_is_not_reachable_from_the_host(stack):
    addresses = host_addresses()
    assert addresses, "no address beyond loopback to try"
    beyond = {address: [port for port in STACK_PORTS if answers(address, port)] for address in addresses}
    loopback = [port for port in STACK_PORTS if answers("127.0.0.1", port)]
    assert all(ports == [8080] for ports in beyond.values()), beyond
    assert 8081 not in loopback and 8082 not in loopback and 9091 not in loopback, loopback
    bridge = sh("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                stack.container("torchserve")).stdout.split()
    inside = [address for address in bridge if answers(address, 8081)]
    try:
        remote = http.client.HTTPConnection(addresses[0], 8081, timeout=2)
        remote.request("GET", "/models")
        reached = remote.getresponse().status
    except OSError as err:
        reached = type(err).__name__
    say(f"step 7: ports answering on {', '.join(addresses)}: {beyond}; on 127.0.0.1: {loopback}; management "
        f"from the host's address: {reached}; the container's own address on the stack network "
        f"({', '.join(bridge)}) answers 8081: {bool(inside)} (the host's root shares that bridge)")


def write_store(stack: Stack, frame) -> None:
    """VALE3's file in the `prices` volume replaced in one step (written aside, then renamed), as the refresh
    replaces it, through the `daily` container (the image's user owns the volume)."""
    folder = "/home/app/stockcast/data"
    sh("exec", "-i", stack.container("daily"), "sh", "-c",
       f"cat > {folder}/.VALE3.SA.csv.new && mv -f {folder}/.VALE3.SA.csv.new {folder}/VALE3.SA.csv",
       stdin=store_file(frame))


def test_8_by_name_reads_the_prices_volume_and_a_new_bar_reaches_the_next_answer(stack):
    by_name = {"stock": "VALE3"}
    url = f"{INFERENCE}/predictions/lstm"
    stale = post_json(url, by_name, stack.key())
    seeded = read_price_csv(stack.clone / "prices" / "VALE3.SA.csv").index[-1]
    assert stale.status == 422 and f"last bar of VALE3.SA is {seeded:%Y-%m-%d}" in stale.json()["message"], \
        stale.body
    calendar = trading_calendar(["VALE3.SA"], dt.date(2018, 1, 2))
    sessions = calendar["exchanges"][calendar["stocks"]["VALE3.SA"]]["sessions"]
    write_store(stack, recent_bars(sessions, behind=1))
    before = until("a by-name answer", lambda: (a := post_json(url, by_name, stack.key())).status == 200 and a, 60)
    restarts = sh("inspect", "--format", "{{.RestartCount}}", stack.container("torchserve")).stdout.strip()
    newer = recent_bars(sessions)
    with ClientLoop(url, stack.key(), by_name, clients=2, pause=0.01) as load:
        time.sleep(2)
        write_store(stack, newer)
        time.sleep(3)
    after = post_json(url, by_name, stack.key())
    assert no_nan(before) and no_nan(after)
    assert after.json()["last_date"] == f"{newer.index[-1]:%Y-%m-%d}" > before.json()["last_date"]
    assert load.errors == 0 and load.requests > 0, load.timeline[-5:]
    assert sh("inspect", "--format", "{{.RestartCount}}", stack.container("torchserve")).stdout.strip() == restarts
    say(f"step 8: by name from the prices volume (read-only in torchserve): the seeded VALE3 (last bar "
        f"{seeded:%Y-%m-%d}) is a 422 ({stale.json()['message'][:90]}...); a file of bars to "
        f"{before.json()['last_date']} answers 200 ({before.json()['stale_sessions']} stale session); a new bar "
        f"({after.json()['last_date']}) written into the volume reached the next answer with no restart and "
        f"{load.errors} failed of {load.requests} by-name requests during the write")
