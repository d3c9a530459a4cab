"""How retrain and rollback decide and wait. Its own module so scripts/admin.py shows the defaults in
--help without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


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
