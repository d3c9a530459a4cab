"""A day's bar: the request fields that carry it, and the one rule that makes its range hold its open and close.

Training's data checks (`data.prices.consistent_bars`) and the request checks (`runtime.fields`) apply the same
`widen`, each with its own array type's maximum and minimum; the bundle's net, which must stay self-contained,
writes it out again, and a test holds the two to the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from typing import TypeVar

# The request fields that carry a day's bar beside `prices` (the closes), and the features they fill.
BAR_FIELDS = {"open": "Open", "high": "High", "low": "Low"}

Values = TypeVar("Values")


def widen(high: Values, low: Values, held: Sequence[Values], maximum: Callable[[Values, Values], Values],
          minimum: Callable[[Values, Values], Values]) -> tuple[Values, Values]:
    """The day's [low, high] widened to hold each of `held` (its open and close, those known): an auto-adjusted
    close a hair above its high, or a feed's stale open, is the range the day really had, not a bad row."""
    return reduce(maximum, held, high), reduce(minimum, held, low)
