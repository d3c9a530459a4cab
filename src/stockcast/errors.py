"""The one exception type for mistakes a user can make (bad ticker, dates, data)."""


class StockcastError(Exception):
    """A user-facing error: entry points print its message and exit non-zero, no traceback."""
