"""When the monitor calls a served model drifted. Its own module, torch-free, so scripts/admin.py shows the
defaults in --help without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriftRules:
    """When `scripts/admin.py monitor` calls a served model drifted; the defaults are admin.py's and those of
    monitoring/prometheus/drift_rules.yml. Its CRPS skill floor is the retrain gate's (Policy.min_skill_crps):
    a model that would not be deployed today should not keep serving."""

    window: int = 20  # the last N scored origins (forecasts whose closes have all arrived) of the serving model
    # The 80 % interval's coverage band, wider than the gate's 0.70..0.90: 20 origins of overlapping 10-day
    # targets hold far fewer independent hits than a year's test period.
    min_coverage: float = 0.65
    max_coverage: float = 0.92
    # Input drift: the served window's volatility beyond the training period's range (its lowest and highest
    # EWMA volatility) by this factor: far outside, not merely a new extreme.
    vol_factor: float = 1.5
