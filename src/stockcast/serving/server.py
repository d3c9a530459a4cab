"""Start TorchServe in the background from a fixed folder, wait until it serves the model, stop it.

TorchServe writes `key_file.json` and `logs/` into the folder it starts from, and keeps its pid file
(`.model_server.pid`) and the workers' sockets in the temp folder ($TMPDIR): one TorchServe per temp
folder. `make serve` uses `serve/` and the system temp folder; tests use private ones.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psutil

from stockcast.errors import StockcastError
from stockcast.serving.client import call, healthy, read_key
from stockcast.serving.settings import MODEL_NAME, read_properties

JAVA_MAIN = "org.pytorch.serve.ModelServer"
# The host of a TorchServe in another container (compose.yaml's admin: `torchserve`); its ports stay the config's.
HOST_ENV = "STOCKCAST_TORCHSERVE_HOST"
PORT_KEYS = ("inference_address", "management_address", "metrics_address", "grpc_inference_port",
             "grpc_management_port")


@dataclass(frozen=True)
class Server:
    """One TorchServe instance: its config, the folder it runs from, its model store and temp folder."""

    config: Path
    run_dir: Path
    model_store: Path
    log_config: Path
    temp_dir: Path | None = None  # None: the system's ($TMPDIR or /tmp), as a plain `torchserve` uses
    host: str | None = None  # None: the config's addresses; else that host, on the config's ports

    @classmethod
    def default(cls, root: Path) -> Server:
        """`make serve`'s server, or with $STOCKCAST_TORCHSERVE_HOST the one on that host, whose run folder
        (key file, admin journal) and model store are shared at the same paths (compose.yaml's volumes)."""
        return cls(root / "config.properties", root / "serve", root / "model_store", root / "log4j2.xml",
                   host=os.environ.get(HOST_ENV) or None)

    @property
    def key_file(self) -> Path:
        return self.run_dir / "key_file.json"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @functools.cached_property
    def properties(self) -> dict[str, str]:
        """The config's settings, read on first use and kept (TorchServe reads its config once, at start)."""
        return read_properties(self.config)

    def url(self, api: str) -> str:
        """Base URL of the `inference`, `management` or `metrics` API."""
        address = urlparse(self.properties[f"{api}_address"].rstrip("/"))
        if self.host:
            address = address._replace(netloc=f"{self.host}:{address.port}")
        return urlunparse(address)

    def key(self, api: str) -> str | None:
        return read_key(self.key_file, api)

    def pid(self) -> int | None:
        """The running TorchServe frontend of this temp folder (any config), from TorchServe's pid file."""
        pid_file = Path(self.temp_dir or tempfile.gettempdir()) / ".model_server.pid"
        try:
            pid = int(pid_file.read_text().strip())
            return pid if JAVA_MAIN in psutil.Process(pid).cmdline() else None
        except (FileNotFoundError, ValueError, psutil.Error):
            return None

    def serves_this_config(self, pid: int) -> bool:
        try:
            return str(self.config.resolve()) in psutil.Process(pid).cmdline()
        except psutil.Error:
            return False

    def start(self, auth: bool = True, timeout: float = 180.0) -> None:
        """Launch in the background and return once /ping is healthy and every worker is READY."""
        archive = self.model_store / f"{MODEL_NAME}.mar"
        if not archive.is_file():
            raise StockcastError(f"no model archive at {archive}: run `make archive` first")
        java_home = os.environ.get("JAVA_HOME")
        if not (os.access(Path(java_home) / "bin" / "java", os.X_OK) if java_home else shutil.which("java")):
            raise StockcastError("TorchServe's frontend needs Java 17: install it (apt-get install -y "
                                 "openjdk-17-jre-headless) or set JAVA_HOME")
        pid = self.pid()
        if pid is not None:
            raise StockcastError(f"another TorchServe (pid {pid}) runs with this temp folder; TorchServe allows "
                                 "one per temp folder: stop it first (`torchserve --stop`)")
        self._check_ports()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.key_file.unlink(missing_ok=True)  # a stale key file would pass for the new server's
        command = [sys.executable, "-m", "ts.model_server", "--start", "--ts-config", str(self.config.resolve()),
                   "--model-store", str(self.model_store.resolve()), "--log-config", str(self.log_config.resolve()),
                   "--ncs"]
        if not auth:
            command.append("--disable-token-auth")
        with open(self.logs / "console.log", "ab") as console:
            launcher = subprocess.run(command, cwd=self.run_dir, env=self._env(), stdout=console,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        if launcher.returncode != 0:
            raise StockcastError(f"torchserve failed to start:\n{self._log_tail('console.log')}")
        try:
            self._wait_ready(auth, time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the frontend and its workers; False when none was running."""
        pid = self.pid()
        if pid is None:
            self.key_file.unlink(missing_ok=True)
            return False
        if not self.serves_this_config(pid):
            raise StockcastError(f"the running TorchServe (pid {pid}) was started with another config than "
                                 f"{self.config}: not stopping it (`torchserve --stop` would)")
        frontend = psutil.Process(pid)
        processes = [frontend, *frontend.children(recursive=True)]
        # `torchserve --stop` also deletes key_file.json from the folder it runs in: the run folder.
        subprocess.run([sys.executable, "-m", "ts.model_server", "--stop"], cwd=self.run_dir, env=self._env(),
                       capture_output=True)
        _, alive = psutil.wait_procs(processes, timeout=timeout)
        for process in alive:
            process.kill()
        psutil.wait_procs(alive, timeout=10)
        self.key_file.unlink(missing_ok=True)
        return True

    def ready(self) -> bool:
        """/ping answers Healthy (it needs the inference key) and the model's workers are all READY."""
        try:  # the key file may be half written while the server starts
            if not healthy(self.url("inference"), self.key("inference")):
                return False
            model = call("GET", f"{self.url('management')}/models/{MODEL_NAME}", self.key("management"), timeout=5)
        except (OSError, ValueError, KeyError):
            return False
        workers = model.json()[0].get("workers", []) if model.status == 200 else []
        return bool(workers) and all(worker["status"] == "READY" for worker in workers)

    def _wait_ready(self, auth: bool, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.pid() is None:  # the launcher wrote the pid file before it returned
                raise StockcastError(f"TorchServe exited while starting:\n{self._log_tail('ts_log.log')}")
            if (not auth or self.key_file.exists()) and self.ready():
                return
            time.sleep(0.5)
        raise StockcastError(f"TorchServe did not become ready in time:\n{self._log_tail('model_log.log')}")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.temp_dir is not None:  # the launcher's pid file ($TMPDIR) and Java's sockets (TEMP)
            env["TMPDIR"] = env["TEMP"] = str(self.temp_dir)
        return env

    def _check_ports(self) -> None:
        """Name a busy port here rather than leave Java's bind error in a log file."""
        for key in PORT_KEYS:
            value = self.properties.get(key, {"grpc_inference_port": "7070", "grpc_management_port": "7071"}.get(key))
            assert value is not None, f"{self.config} sets no {key}"  # the addresses have no default here
            port = int(value) if value.isdigit() else urlparse(value).port
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    raise StockcastError(f"port {port} ({key} in {self.config}) is already in use by another "
                                         "program: stop it or change the port")

    def _log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / name
        text = path.read_text(errors="replace") if path.exists() else f"({path} is empty)"
        tail = "\n".join(text.splitlines()[-lines:])
        return re.sub(r"Bearer \S+", "Bearer ***", tail)
