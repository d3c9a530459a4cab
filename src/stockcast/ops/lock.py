"""One admin command at a time per server: two deployments interleaving their steps would leave a
default version and a `champion` alias that belong to neither."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stockcast.errors import StockcastError


@contextmanager
def exclusive(path: Path, wait: float, doing: str) -> Iterator[None]:
    """Hold an advisory lock on `path` (flock: the kernel frees it when the process dies, so no stale
    lock survives a crash); wait up to `wait` seconds for another holder, then refuse naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise StockcastError(f"another admin command holds {path} ({holder}); wait for it to finish, "
                                         "or pass --wait SECONDS to queue behind it") from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{doing}, pid {os.getpid()}, since {dt.datetime.now():%Y-%m-%d %H:%M:%S}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
