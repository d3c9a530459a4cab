"""`make archive [STOCK=VALE3,PETR4 | STOCK=all] [RUN_ID=...]`: package trained runs as model_store/lstm.mar.

The archive is one served set: every named ticker's newest finished run (or the given runs), each
answering its ticker; a pooled run answers each of its tickers that has no run of its own named.
"""

import argparse
import os

from stockcast import ROOT
from stockcast.cli import user_errors_exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-id", action="append", default=[],
                        help="MLflow run to archive (repeatable); with no --stock, only these")
    parser.add_argument("--stock", help="tickers separated by commas whose newest runs to archive, or 'all': every "
                                        "ticker with a finished single-ticker run (default: configs/train.yaml's "
                                        "stock unless --run-id is given)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with user_errors_exit():
        from stockcast.config import load_config
        from stockcast.serving.archive import archive
        from stockcast.serving.management import Management
        from stockcast.serving.server import Server
        from stockcast.serving.versions import new_version
        from stockcast.symbols import normalize_symbol
        from stockcast.tracking import existing_store, trained_symbols

        cfg = load_config("train")
        server = Server.default(ROOT)
        if args.stock == "all":
            symbols = trained_symbols(existing_store(cfg.logger.tracking_uri), cfg.logger.experiment_name)
        else:
            named = args.stock.split(",") if args.stock else [] if args.run_id else [cfg.stock]
            symbols = [normalize_symbol(stock) for stock in named]
        # A running server's versions are taken too: the version must be new to it.
        done = archive(cfg.logger.tracking_uri, cfg.logger.experiment_name, server.model_store, symbols,
                       args.run_id, version=new_version(Management(server)))
    shown = ", ".join(list(done.served.members)[:10]) + (", ..." if len(done.served.members) > 10 else "")
    print(f"archived {len(done.run_ids)} run(s) as {done.path.relative_to(ROOT)}, version {done.version}: "
          f"{len(done.served.members)} ticker(s) ({shown})"
          f"\n(a running TorchServe keeps the model it loaded: make stop serve; or deploy a new run without a "
          f"restart: make retrain)")


if __name__ == "__main__":
    main()
