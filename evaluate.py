"""Backtest a trained run walk-forward against baselines: `python evaluate.py stock=PETR4`."""

import sys

import hydra
from omegaconf import DictConfig

from stockcast.cli import user_errors_exit  # importing stockcast sets STOCKCAST_ROOT, which configs/paths reads
from stockcast.logs import capture_warnings, log_file


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    """Returns the LSTM's skill_mape over the backtest (averaged over a pooled run's tickers)."""
    capture_warnings()  # here, not at import: a launcher's worker process runs the job, not this module
    from stockcast.eval.evaluation import evaluate

    with user_errors_exit():
        results = evaluate(cfg)
    for result in results:
        print(f"evaluation {result.run_id} of run {result.evaluated_run_id} ({result.symbol}):")
        print(result.summary.to_markdown(floatfmt=".4g"))
        print(f"written to {result.output_dir} (plots, tables); MLflow run {result.run_id}")
    print(f"full log: {log_file()}")
    return sum(float(r.summary.loc["lstm", "skill_mape"]) for r in results) / len(results)


if __name__ == "__main__":
    sys.exit(main())
