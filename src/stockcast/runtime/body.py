"""What TorchServe hands over -> the JSON object a client sent, or a `BadRequest`; how a message quotes it; and the
JSON text of an answer.

JSON in and out is most of what a request costs besides its forward pass, and orjson does it several times
faster, so it is used where installed; the standard library's json gives the same values without it. The first
of a request's two readings: the body here, then each forecast's fields (`fields`). No body may raise anything
but `BadRequest`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

try:
    import orjson
except ImportError:  # an archive moved to a server without it: the standard library
    orjson = None  # type: ignore[assignment]  # the optional module's usual stand-in; every use checks it

SEND_JSON = 'POST JSON like {"prices": [...]} with Content-Type: application/json'
_FORM = "application/x-www-form-urlencoded"
# orjson reads an integer beyond 64 bits as a float where json keeps it exact (and a message quotes it): any run of
# 19 digits sends the text to json alone (found as 19 zeros once every digit is made a zero: faster than a regex).
_ZEROED = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


class BadRequest(Exception):
    """What the client got wrong, as the message of its own 400 answer."""

    status = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_body(row: Mapping[str, Any], headers: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object a request sent, from TorchServe's request row and its headers; raises BadRequest.

    TorchServe hands the raw body over as "body" (bytes; str or parsed JSON when decode_input_request is
    on), a multipart form's fields by name, and an urlencoded form already split into fields.
    """
    if headers.get("explain") == "True":  # /explanations/..., /v1/models/<m>:explain, /v2/models/<m>/explain
        raise BadRequest("this model has no explanations: POST the prices to /predictions/<model> for a forecast")
    if "body" not in row and "data" not in row:
        content_type = _content_type(headers)
        if content_type == _FORM:
            raise BadRequest(f"the body came as a form (Content-Type: {_FORM}, what curl -d and HTML forms send): "
                             f"{SEND_JSON}")
        if content_type.startswith("multipart/"):
            raise BadRequest(f"the multipart body has no part named 'data' or 'body': {SEND_JSON}")
        raise BadRequest(f"no request body: {SEND_JSON}")
    body = row.get("body", row.get("data"))
    if isinstance(body, (bytes, bytearray)):
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequest(f"body is not UTF-8 text: {SEND_JSON}") from None
    if isinstance(body, str):
        if not body.strip():
            raise BadRequest(f"empty body: {SEND_JSON}")
        try:
            body = _loads(text=body)
        except RecursionError:
            raise BadRequest(f"body nests too deep: {SEND_JSON}") from None
        except ValueError as err:  # also integers of more digits than Python converts
            sent = _content_type(headers)
            raise BadRequest(f"body is not valid JSON ({str(err)[:100]})"
                             f"{f' (sent as {shown(sent)})' if sent else ''}: {SEND_JSON}") from None
    if not isinstance(body, dict):
        raise BadRequest(f'body must be a JSON object like {{"prices": [...]}}, got {json_type(body)}')
    return body


def _loads(text: str) -> Any:
    """json.loads(text), by orjson where it reads the text: it refuses what json reads differently (NaN, Infinity,
    numbers beyond a float's range, lone surrogates, deep nesting), which json then reads or words the error of."""
    if orjson is not None and _LONG_RUN not in text.encode(errors="surrogatepass").translate(_ZEROED):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def dumps(answer: Any) -> bytes:
    """An answer's JSON text (compact): orjson's where installed, else json's, the same values."""
    if orjson is not None:
        return orjson.dumps(answer)
    return json.dumps(answer, separators=(",", ":")).encode()


def _content_type(headers: Mapping[str, Any]) -> str:
    """The request's media type, lower case, without parameters; "" when it sent none."""
    value = next((value for name, value in headers.items() if name.lower() == "content-type"), "")
    return value.split(";")[0].strip().lower() if isinstance(value, str) else ""


def json_type(value: Any) -> str:
    """What kind of JSON value `value` is, as a message names it."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def shown(value: Any) -> str:
    """A value as a message quotes it: short whatever a client sent (a list or object only by its size)."""
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return f"an object of {len(value)} field(s)"
    text = repr(value[:41] if isinstance(value, str) else value)
    return text if len(text) <= 40 else f"{text[:37]}..."
