"""How retrain and rollback decide and wait: the gate's thresholds and the choices made with them. Its own
module, torch-free, so scripts/admin.py shows the defaults in --help without importing torch."""

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
    # The range gate, for quantile models: the test period's 80 % interval must cover between these shares
    # of the actual closes (0.80 is calibrated; about +-0.05 is sampling noise over a year of origins with
    # overlapping 10-day targets), and skill_crps = 1 - test_crps / naive_crps must be at least min_skill_crps.
    min_coverage: float = 0.70
    max_coverage: float = 0.90
    min_skill_crps: float = -0.02
    keep: int = 3  # earlier versions kept registered (instant rollback); older ones stay on disk
    wait: float = 0.0  # seconds to wait for another admin command's lock; 0 refuses at once
    ready_timeout: float = 180.0  # seconds for a new version's workers to load


DEFAULT = Policy()


def gate(metrics: dict[str, float], policy: Policy, ranges: bool = True) -> str | None:
    """Why the model must not be deployed, or None. `ranges`: the model forecasts quantiles, so its
    coverage and CRPS skill are checked too (a point model's ranges are a single value)."""
    bad = sorted(name for name, value in metrics.items() if not math.isfinite(value))
    if bad:
        return f"metrics are not finite: {', '.join(bad)}"
    if metrics["skill_mape"] < policy.min_skill:
        return (f"skill_mape {metrics['skill_mape']:+.4f} is below the minimum {policy.min_skill:+.4f} (test MAPE "
                f"{metrics['test_mape']:.3f} % vs the naive forecast's {metrics['naive_mape']:.3f} %)")
    if not ranges:
        return None
    coverage = metrics["test_coverage_80"]
    if not policy.min_coverage <= coverage <= policy.max_coverage:
        return (f"test_coverage_80 {coverage:.3f} is outside [{policy.min_coverage:.2f}, {policy.max_coverage:.2f}]: "
                f"the 80 % ranges are {'too narrow' if coverage < policy.min_coverage else 'too wide'}")
    if metrics["skill_crps"] < policy.min_skill_crps:
        return (f"skill_crps {metrics['skill_crps']:+.4f} is below the minimum {policy.min_skill_crps:+.4f} (test "
                f"CRPS {metrics['test_crps']:.3f} % vs the naive-empirical ranges' {metrics['naive_crps']:.3f} %)")
    return None


def rollback_target(current: int, known: list[int], to: int | None = None) -> int:
    """A ticker's model version to return to: `to`, or else the highest of its `known` model versions below
    the `current` one."""
    if to is not None:
        return to
    below = [version for version in known if version < current]
    if not below:
        raise StockcastError(f"no model version below {current} to roll back to (known: {known})")
    return max(below)
