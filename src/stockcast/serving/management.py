"""TorchServe's management API for the served model: its versions, the default one, and the switch.

What TorchServe 0.12 does, as measured on it: a second version of a name registers beside the first
(its workers start while the default keeps answering); `/predictions/lstm` goes to the default
version, chosen per request on arrival, so `set-default` swaps without a failed request; the
default version cannot be unregistered; and unregistering a version within moments of it being the
default fails the requests still in its workers (HTTP 500), so `unregister` drains first.
The archive's `model-config.yaml` (`minWorkers`) overrides the `initial_workers` of a registration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from stockcast.errors import StockcastError
from stockcast.serving.client import Response, call, ping
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME

if TYPE_CHECKING:  # the runtime imports torch, which describing a server does not need
    from stockcast.runtime.description import Description

# Seconds a version that stopped being the default keeps its workers before it is unregistered: its
# last batches finish (a forward pass takes about a millisecond).
DRAIN_SECONDS = 1.0


@dataclass(frozen=True)
class Version:
    """One registered version of the model, as TorchServe describes it."""

    version: str
    workers: list[str]  # each worker's status; READY ones answer
    pending: int  # requests queued for it

    @property
    def ready(self) -> bool:
        return bool(self.workers) and all(status == "READY" for status in self.workers)


@dataclass(frozen=True)
class Served:
    """The model's registered versions and the default one (None: the model is not registered)."""

    default: Version | None
    versions: list[Version]

    def get(self, version: str) -> Version | None:
        return next((v for v in self.versions if v.version == version), None)


def _version(description: dict) -> Version:
    return Version(description["modelVersion"], [worker["status"] for worker in description.get("workers", [])],
                   description.get("jobQueueStatus", {}).get("pendingRequests", 0))


class Management:
    """Calls to one server's management API with its management key (read from the key file each time)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def _call(self, method: str, path: str, timeout: float = 10.0) -> Response:
        base = self.server.url("management")
        try:
            return call(method, f"{base}{path}", self.server.key("management"), content_type="text/plain",
                        timeout=timeout)
        except OSError as err:
            raise StockcastError(f"TorchServe's management API is not answering at {base} ({err}): start the "
                                 "server first (make serve)") from None

    def _ok(self, answer: Response, doing: str) -> Response:
        if answer.status != 200:
            try:
                body = answer.json()
            except ValueError:
                body = {"message": answer.body.decode(errors="replace")}
            hint = (f" (keys from {self.server.key_file}: another server, or a stale file?)"
                    if body.get("type") == "InvalidKeyException" else "")
            raise StockcastError(f"TorchServe refused to {doing} (HTTP {answer.status}): "
                                 f"{str(body.get('message'))[:300]}{hint}")
        return answer

    def health(self) -> str:
        """`/ping` on the inference API ("Healthy", "Partial Healthy", ...)."""
        base = self.server.url("inference")
        try:
            answer = ping(base, self.server.key("inference"))
        except OSError as err:
            raise StockcastError(f"TorchServe is not answering at {base} ({err}): start it with `make serve`") from None
        return str(self._ok(answer, "answer /ping").json().get("status"))

    def served(self) -> Served:
        all_versions = self._call("GET", f"/models/{MODEL_NAME}/all")
        if all_versions.status == 404:
            return Served(None, [])
        versions = [_version(d) for d in self._ok(all_versions, f"describe model {MODEL_NAME}").json()]
        default = _version(self._ok(self._call("GET", f"/models/{MODEL_NAME}"), "describe the default").json()[0])
        return Served(default, versions)

    def description(self, version: str | None = None) -> Description:
        """The handler's description of a version (None: the default one): every ticker's model, window,
        features, training range, run id, metrics (`?customized=true`; its keys: `Description`)."""
        path = f"/models/{MODEL_NAME}" + (f"/{quote(version)}" if version else "")
        doing = f"describe version {version}" if version else f"describe the served model {MODEL_NAME}"
        return self._ok(self._call("GET", f"{path}?customized=true"), doing).json()[0]["customizedMetadata"]

    def register(self, archive_name: str, workers: int, timeout: float) -> None:
        """Register an archive of the model store (by file name) and start its workers."""
        query = f"url={quote(archive_name)}&model_name={MODEL_NAME}&initial_workers={workers}&synchronous=true"
        self._ok(self._call("POST", f"/models?{query}", timeout=timeout), f"register {archive_name}")

    def wait_ready(self, version: str, timeout: float) -> Version:
        deadline = time.monotonic() + timeout
        while True:
            found = self.served().get(version)
            if found is not None and found.ready:
                return found
            if time.monotonic() > deadline:
                state = found.workers if found else "not registered"
                raise StockcastError(f"the workers of version {version} did not become ready in {timeout:.0f} s "
                                     f"({state}): see {self.server.logs / 'model_log.log'}")
            time.sleep(0.5)

    def set_default(self, version: str) -> None:
        self._ok(self._call("PUT", f"/models/{MODEL_NAME}/{quote(version)}/set-default"),
                 f"make version {version} the default")

    def unregister(self, version: str, timeout: float = 30.0) -> None:
        """Drain, then unregister; a version that is not registered is fine (an undo may repeat it)."""
        deadline = time.monotonic() + timeout
        while (found := self.served().get(version)) is not None and found.pending and time.monotonic() < deadline:
            time.sleep(0.2)
        if found is None:
            return
        time.sleep(DRAIN_SECONDS)
        answer = self._call("DELETE", f"/models/{MODEL_NAME}/{quote(version)}", timeout=timeout)
        if answer.status != 404:
            self._ok(answer, f"unregister version {version}")
