"""An unexpected exception while serving one request: that request's own 500, never its batch neighbours'.

The answer carries a short message and an id; the worker's log carries the same id beside the traceback. Work
shared by several forecasts (a forward pass, a batch's checks) that fails is done again for each alone
(`shared`), so that only the forecasts it fails on get the error.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import TypeVar

from stockcast.runtime.body import BadRequest

Item = TypeVar("Item")
Result = TypeVar("Result")
_log = logging.getLogger(__name__)


class ServerError(BadRequest):
    """The server failed on one request or forecast (not the client's fault): its own 500."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR


def failed(err: BaseException, doing: str) -> ServerError:
    """`err`, raised while `doing` one request's work, logged with its traceback under a fresh id: its answer."""
    incident = uuid.uuid4().hex[:12]
    _log.error("request failed while %s (id %s)", doing, incident, exc_info=err)
    return ServerError(f"the server failed while {doing} ({type(err).__name__}; id {incident} in its log)")


def shared(work: Callable[[Sequence[Item]], Sequence[Result]], items: Sequence[Item],
           doing: str) -> list[Result | ServerError]:
    """`work(items)` done once for all; where it raises, done again for each item alone, an item it still fails
    on getting its own ServerError."""
    try:
        return list(work(items))
    except Exception as err:
        if len(items) == 1:
            return [failed(err, doing)]
        return [shared(work, [item], doing)[0] for item in items]
