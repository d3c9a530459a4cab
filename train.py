"""Train one forecaster: `python train.py stock=PETR4 model.net.hidden=64`, or sweep with `-m`."""

import sys

import hydra
from omegaconf import DictConfig

from stockcast.cli import user_errors_exit  # importing stockcast sets STOCKCAST_ROOT, which configs/paths reads
from stockcast.config import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    """Returns the metric named by `optimized_metric`, for sweepers."""
    from stockcast.pipeline import run  # heavy imports after Hydra has parsed the command line

    with user_errors_exit():
        result = run(cfg)
    print(f"run {result.run_id} ({result.symbol}): " + ", ".join(
        f"{name}={result.metrics[name]:.4f}"
        for name in ("test_mape", "naive_mape", "skill_mape", "test_crps", "naive_crps", "skill_crps",
                     "ewma_skill_crps", "test_coverage_80", "val_crps")))
    return result.metrics[cfg.optimized_metric]


if __name__ == "__main__":
    sys.exit(main())
