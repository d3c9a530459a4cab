"""Building and running this repository's images for `make image-test` and `make stack-test`.

The engine is Docker where one answers, else podman with the settings DEVELOPERS.md gives for a machine
without a Docker engine (runc, cgroupfs, native overlay storage); where the base image cannot be pulled, a
stand-in made from Debian's packages replaces it (STOCKCAST_BASE_IMAGE names another). Every image a test
builds is removed afterwards (`Built`).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# vfs, podman's fallback, copies every layer in full (1.6 GB per layer of this image): overlay does not.
PODMAN_FLAGS = ["--runtime", "runc", "--cgroup-manager=cgroupfs", "--storage-driver=overlay"]
STAND_IN = "localhost/stockcast-base:bookworm"
SUITE = "bookworm"  # python:3.11-slim-bookworm's Debian release
APT = Path("/etc/apt")


def only_with(variable: str, reason: str) -> list[pytest.MarkDecorator]:
    """A module's marks: `slow`, and skipped unless $variable is 1 (its make target sets it)."""
    return [pytest.mark.slow, pytest.mark.skipif(os.environ.get(variable) != "1", reason=reason)]


def engine() -> list[str]:
    configured = os.environ.get("STOCKCAST_CONTAINER_ENGINE")
    if configured:
        return shlex.split(configured)
    if docker_answers():
        return ["docker"]
    return ["podman", *PODMAN_FLAGS]


@functools.cache
def docker_answers() -> bool:
    """Whether a Docker engine answers (asked once: every engine command would ask again)."""
    return bool(shutil.which("docker")) and subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def sh(*args: str, check: bool = True, timeout: float = 600, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """The engine's command; its output is in the assertion when it fails."""
    done = subprocess.run([*engine(), *args], capture_output=True, text=stdin is None, input=stdin, timeout=timeout)
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


def pulls_images() -> bool:
    """Whether the base images come from a registry (Docker's python:3.11-slim-bookworm) or, on machines that
    cannot pull, from Debian's packages (the stand-in)."""
    return not os.environ.get("STOCKCAST_BASE_IMAGE") and engine() == ["docker"]


def base_image(work: Path) -> str:
    """python:3.11-slim-bookworm where Docker can pull it; else a stand-in with Python 3.11 from Debian."""
    if os.environ.get("STOCKCAST_BASE_IMAGE"):
        return os.environ["STOCKCAST_BASE_IMAGE"]
    if pulls_images():
        return "python:3.11-slim-bookworm"
    if sh("image", "exists", STAND_IN, check=False).returncode != 0:
        rootfs = work / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                        SUITE, str(rootfs), debian_mirror()], check=True, capture_output=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run([*engine(), "import", "-", STAND_IN], stdin=tar.stdout, check=True, capture_output=True)
        assert tar.wait() == 0
        shutil.rmtree(rootfs)
    return STAND_IN


# What podman needs on a machine without a Docker engine (DEVELOPERS.md); the test applies the config itself.
NEEDED = {"runc": "apt-get install -y runc", "iptables": "apt-get install -y iptables (netavark calls it)",
          "debootstrap": "apt-get install -y debootstrap (the stand-in base image)"}
CONTAINERS_CONF = "[containers]\n# the sandbox refuses podman's default ulimits: runc create fails on rlimit type 7\n" \
                  "default_ulimits = []\n"


def podman_ready(work: Path, tools: tuple[str, ...] = (), by_name: bool = False) -> None:
    """With podman: fail at once naming any command it needs that is missing (`tools` too, e.g. podman-compose;
    `by_name`: the network backend's DNS plugin, for containers that call each other by name), and point podman
    at a containers.conf of the settings it needs here ($CONTAINERS_CONF, which every podman this process starts,
    podman-compose's included, reads instead of the system's)."""
    if engine()[0] != "podman":
        return
    needed = {"podman": "apt-get install -y podman", **NEEDED, **{tool: "make install (the dev extra)"
                                                                  for tool in tools}}
    if pulls_images():
        needed.pop("debootstrap")
    missing = [f"{command} ({how})" for command, how in needed.items() if shutil.which(command) is None]
    if not missing and by_name:
        missing = name_resolution_missing()
    if missing:
        pytest.fail(f"podman needs: {', '.join(missing)}", pytrace=False)
    conf = work / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    os.environ["CONTAINERS_CONF"] = str(conf)


# The compose services find each other by name through the network backend's DNS plugin: without it `mlflow`
# does not resolve, and the stack fails many minutes in. Per backend (`podman info`): the plugin and its package.
DNS_PLUGINS = {"cni": (("/usr/lib/cni/dnsname", "/usr/libexec/cni/dnsname", "/opt/cni/bin/dnsname"),
                       "apt-get install -y golang-github-containernetworking-plugin-dnsname, or netavark and "
                       "aardvark-dns"),
               "netavark": (("/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns"),
                            "apt-get install -y aardvark-dns")}


def name_resolution_missing() -> list[str]:
    """What podman's network backend lacks to resolve the compose services by name (empty: nothing)."""
    backend = sh("info", "--format", "{{.Host.NetworkBackend}}", check=False).stdout.strip()
    paths, how = DNS_PLUGINS.get(backend, ((), ""))
    if not paths or any(Path(path).exists() for path in paths):
        return []
    return [f"a DNS plugin for its {backend} network backend, or the services cannot resolve each other by name "
            f"({how})"]


def build_settings(work: Path) -> list[str]:
    """The build's arguments: the base image; with podman, pip's CA bundle and find-links of this machine (a
    TLS proxy, the CPU torch wheel) mounted into the build, so torch comes from find-links and the rest from
    pip's index, as `make install` gets them here."""
    settings = ["--build-arg", f"BASE_IMAGE={base_image(work)}"]
    if engine() == ["docker"]:
        return settings
    settings += ["--isolation=chroot", "--network", "host", "--format", "docker"]  # docker format keeps HEALTHCHECK
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


class Built:
    """The images that appear while it is open (the builds' final images, their stages and layers, the
    stand-in base) are removed when it closes, newest first."""

    def __enter__(self) -> Built:
        self.before = self._images()
        return self

    def __exit__(self, *exc) -> None:
        made = [image for image in self._images() if image not in self.before]
        for image in made:
            sh("rmi", "--force", image, check=False)
        left = [image for image in made if image in self._images()]
        print(f"\nremoved {len(made) - len(left)} images built here" + (f"; left: {left}" if left else ""))

    @staticmethod
    def _images() -> list[str]:
        return sh("images", "--all", "--quiet", "--no-trunc").stdout.split()
