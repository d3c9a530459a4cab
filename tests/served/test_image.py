"""`make image-test`: the Dockerfile built from a fresh clone with no step before it, then run as a user would.

Not part of `make test` (an image build takes many minutes): it runs only with STOCKCAST_IMAGE_TEST=1. The
engine is Docker where one answers, else podman with the settings DEVELOPERS.md gives for a machine without
a Docker engine; where the base image cannot be pulled, a stand-in made from Debian's packages replaces it
(STOCKCAST_BASE_IMAGE names another). Prints the build time, the image size and the time to the first 200.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from stockcast.serving.client import call, post_json, with_bars
from stockcast.serving.private_server import free_ports
from tests.containers import Built, build_settings, only_with, podman_ready, sh
from tests.serving import PRICES, ROOT

pytestmark = only_with("STOCKCAST_IMAGE_TEST", "needs the container image build: make image-test, many minutes")

RUN_DIR = "/home/app/stockcast/serve"


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Iterator[str]:
    """The image built from a fresh clone of HEAD; it, its stages and layers are removed afterwards."""
    work = tmp_path_factory.mktemp("image")
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    name = "localhost/stockcast:image-test"
    podman_ready(work)
    with Built():
        started = time.monotonic()
        sh("build", *build_settings(work), "-t", name, str(clone), timeout=5400)
        size = int(sh("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())
        print(f"\nbuild: {time.monotonic() - started:.0f} s; image {name}: {size / 1e6:.0f} MB")
        yield name


@pytest.fixture(scope="module")
def container(image) -> Iterator[dict]:
    """`run -p <port>:8080 <image>` until the first forecast answers 200; removed on leaving."""
    port = free_ports(1)[0]
    started = time.monotonic()
    cid = sh("run", "-d", "-p", f"127.0.0.1:{port}:8080", image).stdout.strip()
    created = time.monotonic() - started  # podman on vfs storage copied the whole image here
    try:
        url, key = f"http://127.0.0.1:{port}", None
        deadline = time.monotonic() + 300
        while True:
            assert time.monotonic() < deadline, sh("logs", cid, check=False).stdout[-3000:]
            keys = sh("exec", cid, "cat", f"{RUN_DIR}/key_file.json", check=False)
            key = json.loads(keys.stdout)["inference"]["key"] if keys.returncode == 0 and keys.stdout else None
            try:
                if key and post_json(f"{url}/predictions/lstm", with_bars(PRICES), key).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        print(f"\nrun to the first 200: {time.monotonic() - started:.1f} s (`run` itself: {created:.1f} s)")
        yield {"id": cid, "url": url, "keys": json.loads(keys.stdout)}
    finally:
        sh("rm", "-f", cid, check=False)


def test_ping_and_a_forecast_with_the_inference_key(container):
    key = container["keys"]["inference"]["key"]
    assert call("GET", f"{container['url']}/ping", key).json() == {"status": "Healthy"}
    answer = post_json(f"{container['url']}/predictions/lstm", {**with_bars(PRICES), "stock": "VALE3"}, key)
    assert answer.status == 200 and answer.json()["stock"] == "VALE3.SA" and len(answer.json()["forecast"]) == 10


def test_a_request_without_a_token_is_refused(container):
    answer = post_json(f"{container['url']}/predictions/lstm", with_bars(PRICES))
    assert answer.status == 400 and answer.json()["type"] == "InvalidKeyException"  # TorchServe's refusal


def test_the_server_runs_as_a_user_not_root(container):
    assert sh("exec", container["id"], "id", "-u").stdout.strip() == "10001"


def test_the_images_health_check_passes(container, image):
    test = json.loads(sh("image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", image).stdout)
    assert test[0] == "CMD"
    assert sh("exec", "-w", RUN_DIR, container["id"], *test[1:], check=False).returncode == 0


def test_management_answers_inside_the_container_only(container):
    key = container["keys"]["management"]["key"]
    inside = ("import urllib.request as u; r = u.Request('http://127.0.0.1:8081/models', "
              f"headers={{'Authorization': 'Bearer {key}'}}); print(u.urlopen(r).status)")
    assert sh("exec", container["id"], "python", "-c", inside).stdout.strip() == "200"
    address = sh("inspect", "--format", "{{.NetworkSettings.IPAddress}}", container["id"]).stdout.strip()
    if address:  # the container's own network interface: only the inference API listens there
        with pytest.raises(OSError):
            call("GET", f"http://{address}:8081/models", key, timeout=3)


def test_sigterm_stops_it_within_10_seconds(container):
    started = time.monotonic()
    sh("stop", "--time", "10", container["id"])
    seconds = time.monotonic() - started
    code = int(sh("inspect", "--format", "{{.State.ExitCode}}", container["id"]).stdout.strip())
    print(f"\nstop: {seconds:.1f} s, exit code {code}")
    assert seconds < 10 and code != 137  # 137: killed after the grace period
