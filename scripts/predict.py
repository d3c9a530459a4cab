"""`make predict [STOCK=PETR4]`: forecast a served ticker from its latest prices; prints a table, writes a PNG."""

import argparse
from pathlib import Path

from stockcast import ROOT
from stockcast.cli import user_errors_exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stock", help="a served ticker (default: the served default, VALE3)")
    args = parser.parse_args()
    with user_errors_exit():
        from stockcast.config import load_config
        from stockcast.predict import latest, save_chart, table
        from stockcast.serving.server import Server

        forecast, history = latest(Server.default(ROOT), Path(load_config("train").paths.data_dir), args.stock)
        path = save_chart(forecast, history, ROOT / "outputs" / f"forecast_{forecast.stock}.png")
    print(table(forecast))
    print(f"\nchart: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
