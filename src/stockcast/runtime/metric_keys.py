"""The baselines every model is scored beside and the metric keys derived from their names, in one registry.

The keys are a contract: the quality gate, the monitor, `make report`, the served description, checks and
dashboards read them, so they stay exactly as runs have logged them. A training run logs a period's scores as
`{prefix}_{score}` (`metrics.compare_distributions`): the model's with prefix `test` or `val`, a baseline's with
its own prefix (`ewma_crps`, `val_ewma_crps`), and the CRPS skill against the naive-empirical reference as
`skill_crps`, `val_skill_crps`, `ewma_skill_crps`, `val_ewma_skill_crps`. The walk-forward evaluation names each
method by its key in configs/evaluate.yaml (`method`).
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL, VALIDATION = "test", "val"  # the model's prefixes in a training run: test and validation scores
NAIVE_POINT = "naive"  # the last close as the point forecast: naive_rmse, naive_mape (skill_mape's reference)


@dataclass(frozen=True)
class Baseline:
    """A range baseline: the prefix of its metrics in a training run, its name as a backtest method, its label."""

    prefix: str
    method: str
    label: str

    def key(self, score: str, validation: bool = False) -> str:
        """Its metric `score` in a training run: `ewma_crps`, `val_ewma_coverage_80`, `ewma_skill_crps`."""
        return f"{VALIDATION}_{self.prefix}_{score}" if validation else f"{self.prefix}_{score}"


NAIVE_EMPIRICAL = Baseline("naive", "naive_empirical", "naive-empirical")  # the reference of skill_crps
EWMA = Baseline("ewma", "ewma", "EWMA")  # RiskMetrics
RANGE_EWMA = Baseline("range_ewma", "range_ewma", "range EWMA")  # the EWMA of Garman-Klass range variances
HAR = Baseline("har", "har", "HAR")
PANEL_HAR = Baseline("panel_har", "panel_har", "panel HAR")  # runs over several tickers only
# Scored beside every run and served forecast, and their skills shown beside the model's.
WINDOW_BASELINES = (NAIVE_EMPIRICAL, EWMA, RANGE_EWMA, HAR)
PEERS = (EWMA, RANGE_EWMA, HAR)


def model_key(score: str, validation: bool = False) -> str:
    """The model's metric `score` in a training run: `test_crps`, `val_coverage_80`."""
    return f"{VALIDATION if validation else MODEL}_{score}"


def skill_key(baseline: Baseline | None = None, validation: bool = False) -> str:
    """The CRPS skill against the naive-empirical ranges of the model (None) or of a baseline."""
    if baseline is None:
        return f"{VALIDATION}_skill_crps" if validation else "skill_crps"
    return baseline.key("skill_crps", validation)
