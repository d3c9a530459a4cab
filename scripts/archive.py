"""`make archive [RUN_ID=...] [STOCK=...]`: package a trained run into model_store/lstm.mar for TorchServe."""

import argparse
import os

from stockcast import ROOT
from stockcast.cli import user_errors_exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-id", help="MLflow run to archive (default: the newest finished run of the ticker)")
    parser.add_argument("--stock", help="ticker whose newest run to archive (default: configs/train.yaml's stock)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with user_errors_exit():
        from stockcast.config import load_config
        from stockcast.serving.archive import archive
        from stockcast.serving.management import Management
        from stockcast.serving.server import Server
        from stockcast.serving.settings import HANDLER, MODEL_CONFIG
        from stockcast.serving.versions import new_version
        from stockcast.symbols import normalize_symbol

        cfg = load_config("train")
        server = Server.default(ROOT)
        # A running server's versions are taken too: the version must be new to it.
        done = archive(cfg.logger.tracking_uri, cfg.logger.experiment_name, normalize_symbol(args.stock or cfg.stock),
                       server.model_store, HANDLER, MODEL_CONFIG, run_id=args.run_id,
                       version=new_version(Management(server)))
    print(f"archived run {done.run_id} ({done.symbol}) as {done.path.relative_to(ROOT)}, version {done.version}"
          f"\n(a running TorchServe keeps the model it loaded: make stop serve; or deploy a new run without a "
          f"restart: make retrain)")


if __name__ == "__main__":
    main()
