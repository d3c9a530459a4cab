"""Entry-point helper: user errors become one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from stockcast.errors import StockcastError


@contextmanager
def user_errors_exit(code: int = 2) -> Iterator[None]:
    try:
        yield
    except StockcastError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(code) from None
