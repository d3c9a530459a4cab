"""Talking to TorchServe with the standard library: JSON over HTTP, with the key from the key file.

Standard library only: the container's health check uses it on every probe.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_key(key_file: Path, kind: str) -> str | None:
    """The current `kind` key ("inference", "management" or "API"); None without a key file (auth off).

    Read on every call, so a key regenerated through TorchServe's token API is picked up at once.
    """
    try:
        keys = json.loads(key_file.read_text())
    except FileNotFoundError:
        return None
    return keys[kind]["key"]


def call(method: str, url: str, key: str | None = None, body: bytes | None = None,
         content_type: str = "application/json", timeout: float = 10.0) -> Response:
    """One HTTP request; HTTP errors come back as responses, connection failures raise OSError."""
    headers = {"Content-Type": content_type}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read())


def post_json(url: str, payload: Any, key: str | None = None, timeout: float = 10.0) -> Response:
    return call("POST", url, key, json.dumps(payload).encode(), timeout=timeout)


def ping(inference_url: str, key: str | None, timeout: float = 5.0) -> Response:
    """TorchServe's liveness, `GET /ping` on the inference API: token auth guards it too, with the inference key."""
    return call("GET", f"{inference_url}/ping", key, timeout=timeout)


def healthy(inference_url: str, key: str | None, timeout: float = 5.0) -> bool:
    """/ping answers Healthy; False when nothing answers."""
    try:
        answer = ping(inference_url, key, timeout)
        return answer.status == 200 and answer.json().get("status") == "Healthy"
    except (OSError, ValueError):
        return False


def with_bars(closes: list[float]) -> dict[str, list[float]]:
    """A forecast body for synthetic closes (load tests, examples): `prices` and a made-up bar around each close,
    opening at the previous close and ranging 0.5 % beyond both, for the models that read the day's range."""
    opens = closes[:1] + closes[:-1]
    return {"prices": closes, "open": opens, "high": [max(o, c) * 1.005 for o, c in zip(opens, closes, strict=True)],
            "low": [min(o, c) * 0.995 for o, c in zip(opens, closes, strict=True)]}
