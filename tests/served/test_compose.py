"""compose.yaml: what it promises about the stack, read from the file, and parsed by a real compose tool
where one is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stockcast.serving.server import Server
from tests.serving import ROOT

COMPOSE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def stack() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_command() -> list[str] | None:
    """`docker compose`, or a podman-compose recent enough to have `config` (Debian 12's 1.0.3 has not)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("podman-compose", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if found and shutil.which("podman"):  # this venv's first: the `dev` extra pins it
        usage = subprocess.run([found, "--help"], capture_output=True, text=True).stdout
        if "config" in usage:
            return [found]
    return None


@pytest.mark.skipif(compose_command() is None,
                    reason="needs a compose tool: docker compose, or podman with podman-compose >= 1.1")
def test_a_compose_tool_parses_the_file_and_the_admin_service():
    tool = compose_command()
    assert tool is not None
    for args in (["config"], ["--profile", "admin", "config"]):
        parsed = subprocess.run([*tool, "-f", str(COMPOSE), *args], capture_output=True, text=True)
        assert parsed.returncode == 0, parsed.stderr
    assert "STOCKCAST_TORCHSERVE_HOST: torchserve" in parsed.stdout


def test_every_image_from_a_registry_is_pinned_by_version(stack):
    for name, service in stack["services"].items():
        image = service["image"]
        if "build" not in service:
            tag = image.rpartition(":")[2]
            assert ":" in image and tag not in {"latest", ""} and any(c.isdigit() for c in tag), (name, image)


def test_only_the_inference_api_is_published_beyond_the_hosts_loopback(stack):
    published = {name: port for name, service in stack["services"].items() for port in service.get("ports", [])}
    assert {name: port for name, port in published.items() if not port.startswith("127.0.0.1:")} == \
        {"torchserve": "8080:8080"}
    assert "8081" not in str(published) and "8082" not in str(published) and "pushgateway" not in published


def test_admin_shares_the_servers_model_store_and_key_folder_and_reaches_it_by_name(stack):
    torchserve, admin = stack["services"]["torchserve"], stack["services"]["admin"]
    assert {"model_store:/home/app/stockcast/model_store", "serve:/home/app/stockcast/serve"} <= \
        set(torchserve["volumes"]) & set(admin["volumes"])
    assert admin["environment"]["STOCKCAST_TORCHSERVE_HOST"] == "torchserve"
    assert admin["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert torchserve["environment"]["TS_MANAGEMENT_ADDRESS"].endswith(":8081")


def test_named_volumes_are_declared_and_mounted_files_exist(stack):
    for name, service in stack["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, volume)
            else:
                assert source in stack["volumes"], (name, volume)


def test_admin_finds_the_server_by_its_host_on_the_configs_ports(monkeypatch):
    assert Server.default(ROOT).url("management") == "http://127.0.0.1:8081"
    monkeypatch.setenv("STOCKCAST_TORCHSERVE_HOST", "torchserve")
    server = Server.default(ROOT)
    assert (server.url("inference"), server.url("management")) == ("http://torchserve:8080", "http://torchserve:8081")
    assert server.key_file == ROOT / "serve" / "key_file.json"  # compose's `serve` volume, shared with TorchServe
