"""Files replaced in one step: a reader, a restarting server or a crash sees the old file or the new one,
never half of either (price caches, the deploy journal and history, the startup archive)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """Yield a hidden path beside `target` to write; when the block ends without error it replaces `target`."""
    partial = target.with_name(f".{target.name}.partial")
    yield partial
    os.replace(partial, target)
