"""Train one forecaster: `python train.py stock=PETR4 model.net.hidden=64`, or sweep with `-m`.

In a sweep (`-m stock=A,B,C`), a job refused for bad input (a ticker with too little history) prints
its error and returns NaN, so the other jobs still run (a raised error would stop the launcher's pool).
"""

import math
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

# importing stockcast sets STOCKCAST_ROOT, which configs/paths reads
from stockcast.cli import user_error, user_errors_exit
from stockcast.config import register_resolvers
from stockcast.logs import capture_warnings, log_file

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    """Returns the metric named by `optimized_metric`, for sweepers."""
    capture_warnings()  # here, not at import: a launcher's worker process runs the job, not this module
    from stockcast.pipeline import run  # heavy imports after Hydra has parsed the command line

    if HydraConfig.get().mode == RunMode.MULTIRUN:
        try:
            result = run(cfg)
        except Exception as err:
            if user_error(err) is None:
                raise
            print(f"error: job {HydraConfig.get().job.num} ({cfg.stock}): {user_error(err)}", file=sys.stderr)
            return math.nan
    else:
        with user_errors_exit():
            result = run(cfg)
    if not result.run_id:  # a DDP rank other than 0: rank 0 logged the run and prints it
        return result.metrics[cfg.optimized_metric]
    print(f"run {result.run_id} ({result.symbol}): " + ", ".join(
        f"{name}={result.metrics[name]:.4f}"
        for name in ("test_mape", "naive_mape", "skill_mape", "test_crps", "naive_crps", "skill_crps",
                     "ewma_skill_crps", "test_coverage_80", "val_crps")))
    print(f"full log: {log_file()}; MLflow run {result.run_id} (make mlflow-ui), its plots forecast_test.png, ...")
    return result.metrics[cfg.optimized_metric]


if __name__ == "__main__":
    sys.exit(main())
