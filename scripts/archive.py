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
        from stockcast.errors import StockcastError
        from stockcast.serving.archive import archive
        from stockcast.serving.management import Management
        from stockcast.serving.server import Server
        from stockcast.serving.settings import HANDLER, MODEL_CONFIG, training_defaults
        from stockcast.serving.versions import next_version
        from stockcast.tickers import normalize_ticker

        training = training_defaults()
        symbol = normalize_ticker(args.stock) if args.stock else training.symbol
        server = Server.default(ROOT)
        try:  # a running server's versions are taken too: the version must be new to it
            registered = [version.version for version in Management(server).served().versions]
        except StockcastError:
            registered = []
        done = archive(training.tracking_uri, training.experiment, symbol, server.model_store, HANDLER, MODEL_CONFIG,
                       run_id=args.run_id, version=next_version(server.model_store, registered))
    print(f"archived run {done.run_id} ({done.symbol}) as {done.path.relative_to(ROOT)}, version {done.version}"
          f"\n(a running TorchServe keeps the model it loaded: make stop serve; or deploy a new run without a "
          f"restart: make retrain)")


if __name__ == "__main__":
    main()
