"""`make image-test`: the Dockerfile built from a fresh clone with no step before it, then run as a user would.

Not part of `make test` (an image build takes many minutes): it runs only with STOCKCAST_IMAGE_TEST=1. The
engine is Docker where one answers, else podman with the settings DEVELOPERS.md gives for a machine without
a Docker engine; where the base image cannot be pulled, a stand-in made from Debian's packages replaces it
(STOCKCAST_BASE_IMAGE names another). Prints the build time, the image size and the time to the first 200.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockcast.serving.client import call, post_json, with_bars
from stockcast.serving.private_server import free_ports
from tests.serving import PRICES, ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.environ.get("STOCKCAST_IMAGE_TEST") != "1",
                                 reason="needs the container image build: make image-test, many minutes")]

PODMAN = "podman --runtime runc --cgroup-manager=cgroupfs --storage-driver=overlay"  # vfs copies every layer
STAND_IN = "localhost/stockcast-base:bookworm"
SUITE = "bookworm"  # python:3.11-slim-bookworm's Debian release
APT = Path("/etc/apt")
RUN_DIR = "/home/app/stockcast/serve"


def engine() -> list[str]:
    configured = os.environ.get("STOCKCAST_CONTAINER_ENGINE")
    if configured:
        return shlex.split(configured)
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return ["docker"]
    return shlex.split(PODMAN)


def sh(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([*engine(), *args], capture_output=True, text=True, timeout=timeout)
    assert not check or done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def apt_sources(apt: Path = APT) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every `deb` entry in this machine's apt configuration: the one-line format of
    sources.list and sources.list.d/*.list, and the deb822 stanzas of sources.list.d/*.sources."""
    entries = []
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        for line in path.read_text().splitlines() if path.is_file() else []:
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # without [options]
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = {}
            for line in stanza.splitlines():
                key, colon, value = line.partition(":")
                if colon and not line.startswith(("#", " ", "\t")):
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                entries += [(uri, fields.get("suites", [])) for uri in fields.get("uris", [])]
    return entries


def debian_mirror(apt: Path = APT) -> str:
    """The mirror this machine's apt reads Debian's release `SUITE` from (no host written down here)."""
    found = [uri for uri, suites in apt_sources(apt) if SUITE in suites]
    assert found, f"no apt source for Debian {SUITE} in {apt}: set STOCKCAST_BASE_IMAGE to a Python 3.11 image"
    return found[0]


def pip_index() -> str:
    """The index pip installs from on this machine: PIP_INDEX_URL, else pip's configured `index-url`, else
    pip's own default."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        if key.rsplit(".", 1)[-1] == "index-url":
            return value.strip().strip("'\"")
    from pip._internal.models.index import PyPI  # pip's built-in default index

    return PyPI.simple_url


def base_image(work: Path) -> str:
    """python:3.11-slim-bookworm where Docker can pull it; else a stand-in with Python 3.11 from Debian."""
    if os.environ.get("STOCKCAST_BASE_IMAGE"):
        return os.environ["STOCKCAST_BASE_IMAGE"]
    if engine() == ["docker"]:
        return "python:3.11-slim-bookworm"
    if sh("image", "exists", STAND_IN, check=False).returncode != 0:
        rootfs = work / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                        SUITE, str(rootfs), debian_mirror()], check=True, capture_output=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run([*engine(), "import", "-", STAND_IN], stdin=tar.stdout, check=True, capture_output=True)
        assert tar.wait() == 0
    return STAND_IN


def build_settings(work: Path) -> list[str]:
    """podman: pip's CA bundle and find-links of this machine (a TLS proxy, the CPU torch wheel) mounted into the
    build; torch then comes from find-links and the rest from pip's index, as `make install` gets them here."""
    if engine() == ["docker"]:
        return []
    settings = ["--isolation=chroot", "--network", "host", "--format", "docker"]  # docker format keeps HEALTHCHECK
    conf = ["[global]"]
    for key, env in (("cert", "PIP_CERT"), ("find-links", "PIP_FIND_LINKS")):
        if os.environ.get(env):
            conf.append(f"{key} = {os.environ[env]}")
            settings += ["-v", f"{os.environ[env]}:{os.environ[env]}:ro"]
    (work / "pip.conf").write_text("\n".join(conf) + "\n")
    settings += ["-v", f"{work / 'pip.conf'}:/etc/pip.conf:ro"]
    if os.environ.get("PIP_FIND_LINKS"):
        settings += ["--build-arg", f"TORCH_INDEX_URL={pip_index()}"]
    return settings


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("image")
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    name = "localhost/stockcast:image-test"
    settings = [*build_settings(work), "--build-arg", f"BASE_IMAGE={base_image(work)}"]
    started = time.monotonic()
    sh("build", *settings, "-t", name, str(clone), timeout=5400)
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
