"""How retrain and rollback decide and wait: the thresholds and the choices made with them. Its own module,
torch-free, so scripts/admin.py shows the defaults in --help without importing torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stockcast.errors import StockcastError


@dataclass(frozen=True)
class Policy:
    """The defaults are scripts/admin.py's."""

    # The gate: skill_mape = 1 - test_mape / naive_mape must be at least this. -0.05: a model may be at
    # most 5 % (relative) worse than repeating the last close on the test period; daily prices are close
    # to a random walk, so demanding a positive skill would reject most honest models.
    min_skill: float = -0.05
    keep: int = 3  # earlier versions kept registered (instant rollback); older ones stay on disk
    wait: float = 0.0  # seconds to wait for another admin command's lock; 0 refuses at once
    ready_timeout: float = 180.0  # seconds for a new version's workers to load


DEFAULT = Policy()


def gate(metrics: dict[str, float], min_skill: float) -> str | None:
    """Why the model must not be deployed, or None."""
    bad = sorted(name for name, value in metrics.items() if not math.isfinite(value))
    if bad:
        return f"metrics are not finite: {', '.join(bad)}"
    if metrics["skill_mape"] < min_skill:
        return (f"skill_mape {metrics['skill_mape']:+.4f} is below the minimum {min_skill:+.4f} (test MAPE "
                f"{metrics['test_mape']:.3f} % vs the naive forecast's {metrics['naive_mape']:.3f} %)")
    return None


def rollback_target(current: int, known: list[int], to: int | None = None) -> int:
    """`to`, or else the highest known version below the current default: the one that served before it."""
    if to is not None:
        return to
    below = [version for version in known if version < current]
    if not below:
        raise StockcastError(f"no version below the default {current} to roll back to (known: {known})")
    return max(below)
