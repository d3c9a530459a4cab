"""One admin command at a time per server: two deployments interleaving their steps would leave a
default version and a `champion` alias that belong to neither."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from stockcast.errors import StockcastError

LOCK = "admin.lock"  # in the server's run folder (serve/)


@contextmanager
def exclusive(path: Path, wait: float, doing: str) -> Iterator[None]:
    """Hold `path`'s lock (flock: the kernel frees it when the process dies, so no stale lock survives a
    crash); wait up to `wait` seconds for another holder, then refuse naming it. The holder writes what it
    does into the file, which a waiter only opens, never truncates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=max(wait, 0.0), on_acquired=lambda fd: _record(fd, doing))
    try:
        lock.acquire()
    except Timeout:
        holder = path.read_text().strip() or "unknown"
        raise StockcastError(f"another admin command holds {path} ({holder}); wait for it to finish, "
                             "or pass --wait SECONDS to queue behind it") from None
    try:
        yield
    finally:
        path.write_text("")
        lock.release()


def _record(fd: int, doing: str) -> None:
    """Write the new holder into the lock file (filelock calls this once the lock is taken)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{doing}, pid {os.getpid()}, since {dt.datetime.now():%Y-%m-%d %H:%M:%S}\n".encode(), 0)
