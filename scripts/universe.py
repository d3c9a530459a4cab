"""`make universe`: the global net on the selection fold and both test folds, the per-ticker default on its sample,
then the tables.

    python scripts/universe.py [--folds universe2023 universe2024 universe2025] [--no-sample] [train.py overrides ...]

Each fold is one `train.py experiment=<fold>` (its own process, timed: wall time and peak memory are logged on
its MLflow run as `run_seconds` and `peak_rss_gb`); the sample is `train.py -m` over the fold's
`per_ticker_sample` with the per-ticker default's settings (the global net's own reset), two jobs at once. The
tables (`stockcast.eval.report.universe_section`) are printed; `make report` writes them into docs/results.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from mlflow import MlflowClient

from stockcast import ROOT
from stockcast.cli import user_errors_exit
from stockcast.config import load_config
from stockcast.eval.report import UNIVERSE, universe_section
from stockcast.universe import FOLDS, SAMPLED, SELECTION

# The per-ticker default (configs/train.yaml's own settings) over the fold's dates and data: what the global
# net's experiment changes, set back.
PER_TICKER_DEFAULT = ["data.unseen=[]", "serve_any_ticker=false", "logger.run_name=null", "data.batch_size=64",
                      "model.net.hidden=32", "model.net.spans=[]", "model.optimizer.lr=0.001", "trainer.max_epochs=100",
                      "trainer.limit_train_batches=1.0", "trainer.val_check_interval=1.0",
                      "callbacks.early_stopping.patience=8",
                      "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def train(arguments: list[str]) -> tuple[float, float]:
    """Run train.py with `arguments`; its wall seconds and peak resident memory (GB). A failure stops here."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *arguments], cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"train.py {' '.join(arguments)[:200]} failed (exit {process.returncode})")
    return time.perf_counter() - started, usage.ru_maxrss / 1e6  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    folds = [*SELECTION, *FOLDS]  # the selection fold's validation year is one of those the settings are chosen on
    parser.add_argument("--folds", nargs="+", choices=folds, default=folds)
    parser.add_argument("--no-sample", action="store_true", help="skip the per-ticker default's sample")
    parser.add_argument("overrides", nargs="*", help="train.py overrides for every run, e.g. trainer=ddp")
    args = parser.parse_args()
    cfg = load_config("train", [f"experiment={SAMPLED}", *args.overrides])
    client = MlflowClient(cfg.logger.tracking_uri)
    with user_errors_exit():
        for fold in args.folds:
            seconds, memory = train([f"experiment={fold}", *args.overrides])
            experiment = client.get_experiment_by_name(UNIVERSE)
            [run] = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{fold}'",
                                       order_by=["attributes.start_time DESC"], max_results=1)
            client.log_metric(run.info.run_id, "run_seconds", seconds)
            client.log_metric(run.info.run_id, "peak_rss_gb", memory)
            print(f"{fold}: {seconds / 60:.1f} min, peak RSS {memory:.2f} GB (run {run.info.run_id})", flush=True)
        if not args.no_sample and SAMPLED in args.folds:
            seconds, _ = train(["-m", f"experiment={SAMPLED}", f"stock={','.join(cfg.per_ticker_sample)}",
                                *PER_TICKER_DEFAULT, *args.overrides])
            print(f"per-ticker sample ({len(cfg.per_ticker_sample)} tickers): {seconds / 60:.1f} min", flush=True)
        print(universe_section(client))


if __name__ == "__main__":
    main()
