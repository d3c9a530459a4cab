"""`make archive [RUN_ID=...] [STOCK=...]`: package a trained run into model_store/lstm.mar for TorchServe."""

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("STOCKCAST_ROOT", str(ROOT))

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from stockcast.cli import user_errors_exit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-id", help="MLflow run to archive (default: the newest finished run of the ticker)")
    parser.add_argument("--stock", help="ticker whose newest run to archive (default: configs/train.yaml's stock)")
    args = parser.parse_args()
    with user_errors_exit():
        from stockcast.serving.archive import archive
        from stockcast.serving.settings import training_defaults
        from stockcast.tickers import normalize_ticker

        training = training_defaults()
        symbol = normalize_ticker(args.stock) if args.stock else training.symbol
        done = archive(training.tracking_uri, training.experiment, symbol, ROOT / "model_store",
                       ROOT / "handlers" / "forecast_handler.py", ROOT / "model-config.yaml", run_id=args.run_id)
    print(f"archived run {done.run_id} ({done.symbol}) as {done.path.relative_to(ROOT)}, version {done.version}"
          f"\n(a running TorchServe keeps the model it loaded: make stop serve)")


if __name__ == "__main__":
    main()
