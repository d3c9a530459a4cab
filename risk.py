"""Backtest the served portfolio risk over 2024 and 2025 beside its peers: `python risk.py` (make risk)."""

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
        results = backtest(cfg, Path(HydraConfig.get().runtime.output_dir))
    print(f"chosen on {cfg.validation.start[:4]} with {cfg.validation.marginals}'s marginals (the lowest mean FZ0 "
          f"of the served 1-day 97.5 % VaR and ES): {results[0].chosen}")
    print(results[0].tails.to_markdown(index=False, floatfmt=".4g"))
    for result in results:
        year = cfg.tests[result.run_name]
        print(f"\n{result.run_name}: {year.start}..{year.end}, {len(cfg[year.portfolios])} portfolios, "
              f"{year.marginals}'s marginals (MLflow run {result.run_id}); the goals:")
        print(result.goals.to_markdown(index=False))
        print(result.summary.to_markdown(floatfmt=".3g"))
        print(result.tests.to_markdown(index=False, floatfmt=".3g"))
        print(f"written to {result.output_dir}")
    print(f"full log: {log_file()}")


if __name__ == "__main__":
    sys.exit(main())
