"""Backtest the served portfolio risk over 2024 beside its peers: `python risk.py` (make risk)."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from stockcast.cli import user_errors_exit  # importing stockcast sets STOCKCAST_ROOT, which configs/paths reads
from stockcast.logs import capture_warnings, log_file


@hydra.main(version_base="1.3", config_path="configs", config_name="risk")
def main(cfg: DictConfig) -> None:
    capture_warnings()
    from hydra.core.hydra_config import HydraConfig

    from stockcast.eval.risk_backtest import backtest

    with user_errors_exit():
        result = backtest(cfg, Path(HydraConfig.get().runtime.output_dir))
    print(f"chosen on {cfg.validation.start[:4]} (the lowest mean FZ0 of the served 1-day 97.5 % VaR and ES): "
          f"{result.chosen}")
    print(result.tails.to_markdown(index=False, floatfmt=".4g"))
    print(f"\n{cfg.test.start[:4]}, {len(cfg.portfolios)} portfolios (MLflow run {result.run_id}, {cfg.run_name}):")
    print(result.summary.to_markdown(floatfmt=".3g"))
    print(result.tests.to_markdown(index=False, floatfmt=".3g"))
    print(f"written to {result.output_dir} (risk_var.png, the tables); full log: {log_file()}")


if __name__ == "__main__":
    sys.exit(main())
