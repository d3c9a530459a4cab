"""`make universe`: the global net on the selection fold and both test folds, the per-ticker default on its sample,
then the tables.

    python scripts/universe.py [--folds universe2023 ...] [--no-sample] [-v] [train.py overrides ...]

Each fold is one `train.py experiment=<fold>` (its own process, timed: wall time and peak memory are logged on
its MLflow run as `run_seconds` and `peak_rss_gb`), its console shown as it runs (a progress bar on a terminal,
a line a minute otherwise) and its full log in outputs/universe/<time>/<fold>/train.log. The sample is `train.py -m`
over the fold's `per_ticker_sample` with the per-ticker default's settings (the global net's own reset), two jobs
at once: its console goes to outputs/universe/<time>/sample.log, the count of tickers trained to this one. The figure
(each ticker's skill against the best baseline's; coverage by ticker) is logged on every fold's run and saved as
outputs/universe/<time>/universe_skill.png; the tables (`stockcast.eval.report.universe_section`) are printed, and
`make report` writes both into docs/results.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO

from mlflow import MlflowClient

from stockcast import ROOT
from stockcast.cli import user_errors_exit
from stockcast.config import load_config
from stockcast.eval.report import UNIVERSE, UNIVERSE_FIGURE, universe_figure, universe_section
from stockcast.progress import tracked
from stockcast.universe import FOLDS, SAMPLED, SELECTION

# The per-ticker default (configs/train.yaml's own settings) over the fold's dates and data: what the global
# net's experiment changes, set back.
PER_TICKER_DEFAULT = ["data.unseen=[]", "serve_any_ticker=false", "logger.run_name=null", "data.batch_size=64",
                      "model.net.hidden=32", "model.net.spans=[]", "model.optimizer.lr=0.001", "trainer.max_epochs=100",
                      "trainer.limit_train_batches=1.0", "trainer.val_check_interval=1.0",
                      "callbacks.early_stopping.patience=8",
                      "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
OUTPUT_DIR = ROOT / "outputs" / "universe"  # a folder per run: each fold's Hydra output folder, the sample's log


def train(arguments: list[str], output: IO[str] | None = None) -> tuple[float, float]:
    """Run train.py with `arguments`, its console to ours (or, with `output`, to that file); its wall seconds and
    peak resident memory (GB). A failure stops here."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *arguments], cwd=ROOT, stdout=output,
                               stderr=subprocess.STDOUT if output else None)
    return _waited(process, arguments, started)


def _waited(process: subprocess.Popen, arguments: list[str], started: float) -> tuple[float, float]:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"train.py {' '.join(arguments)[:200]} failed (exit {process.returncode})")
    return time.perf_counter() - started, usage.ru_maxrss / 1e6  # Linux reports kilobytes


def sample(arguments: list[str], count: int, log_path: os.PathLike) -> float:
    """The per-ticker sample's sweep, its console into `log_path`; progress counts the jobs that ended (train.py
    prints one `run ...` or `error: job ...` line per job), and the errors are shown. Its wall seconds."""
    started = time.perf_counter()
    with open(log_path, "w") as log_file:
        process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *arguments], cwd=ROOT, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})  # each job's end as it comes
        for line in tracked(_job_ends(process.stdout, log_file), "per-ticker sample, tickers trained", count):
            if line.startswith("error"):
                print(line, end="", flush=True)
    return _waited(process, arguments, started)[0]


def _job_ends(lines: IO[str] | None, log_file: IO[str]) -> Iterator[str]:
    for line in lines or ():
        log_file.write(line)
        if line.startswith(("run ", "error: job")):
            yield line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    folds = [*SELECTION, *FOLDS]  # the selection fold's validation year is one of those the settings are chosen on
    parser.add_argument("--folds", nargs="+", choices=folds, default=folds)
    parser.add_argument("--no-sample", action="store_true", help="skip the per-ticker default's sample")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="the DEBUG lines too (each price file read), as train.py's verbose=true")
    parser.add_argument("overrides", nargs="*", help="train.py overrides for every run, e.g. trainer=ddp")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s",
                        stream=sys.stdout)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per artifact read: noise
    overrides = [*args.overrides, *(["verbose=true"] if args.verbose else [])]
    cfg = load_config("train", [f"experiment={SAMPLED}", *args.overrides])
    client = MlflowClient(cfg.logger.tracking_uri)
    output_dir = OUTPUT_DIR / time.strftime("%Y-%m-%d_%H-%M-%S")
    output_dir.mkdir(parents=True)
    shown = output_dir.relative_to(ROOT)
    with user_errors_exit():
        runs = {}
        for fold in args.folds:
            print(f"{fold}: training (full log: {shown / fold / 'train.log'})", flush=True)
            seconds, memory = train([f"experiment={fold}", f"hydra.run.dir={output_dir / fold}", *overrides])
            experiment = client.get_experiment_by_name(UNIVERSE)
            [run] = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{fold}'",
                                       order_by=["attributes.start_time DESC"], max_results=1)
            runs[fold] = run.info.run_id
            client.log_metric(run.info.run_id, "run_seconds", seconds)
            client.log_metric(run.info.run_id, "peak_rss_gb", memory)
            print(f"{fold}: {seconds / 60:.1f} min, peak RSS {memory:.2f} GB (run {run.info.run_id})", flush=True)
        if not args.no_sample and SAMPLED in args.folds:
            log_path = output_dir / "sample.log"
            print(f"per-ticker sample ({len(cfg.per_ticker_sample)} tickers, 2 at once): training "
                  f"(full log: {shown / 'sample.log'})", flush=True)
            seconds = sample(["-m", f"experiment={SAMPLED}", f"stock={','.join(cfg.per_ticker_sample)}",
                              *PER_TICKER_DEFAULT, *overrides], len(cfg.per_ticker_sample), log_path)
            print(f"per-ticker sample ({len(cfg.per_ticker_sample)} tickers): {seconds / 60:.1f} min", flush=True)
        figure = universe_figure(client)
        figure.savefig(output_dir / UNIVERSE_FIGURE, dpi=110)
        for run_id in runs.values():
            client.log_figure(run_id, figure, UNIVERSE_FIGURE)
        print(universe_section(client))
        print(f"\nfull logs: {shown}/<fold>/train.log" + ("" if args.no_sample else f", {shown}/sample.log"))
        print(f"MLflow experiment {UNIVERSE!r} (make mlflow-ui): "
              + ", ".join(f"{fold} run {run_id}" for fold, run_id in runs.items()))
        print(f"figure: {shown / UNIVERSE_FIGURE}, logged on each fold's run (make report puts it and the tables into "
              "docs/results.md)")


if __name__ == "__main__":
    main()
