"""Entry-point helpers: user errors become one line on stderr and a non-zero exit, no traceback; `Say`, where
commands write their progress lines (print, or a test's collector)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from stockcast.errors import StockcastError

Say = Callable[[str], None]  # one line of a command's progress


def user_error(err: BaseException | None) -> StockcastError | None:
    """The StockcastError behind `err`, also when Hydra's instantiate wrapped it."""
    while err is not None:
        if isinstance(err, StockcastError):
            return err
        err = err.__cause__
    return None


@contextmanager
def user_errors_exit(code: int = 2) -> Iterator[None]:
    try:
        yield
    except Exception as err:
        cause = user_error(err)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        raise SystemExit(code) from None
