"""`make predict`: forecast the served ticker from its latest prices; prints a table, writes a PNG."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("STOCKCAST_ROOT", str(ROOT))

from stockcast.cli import user_errors_exit  # noqa: E402


def main() -> None:
    with user_errors_exit():
        from stockcast.serving.predict import describe, plot, recent_prices, request_forecast, served_stock, table
        from stockcast.serving.server import Server
        from stockcast.serving.settings import training_defaults

        server = Server.default(ROOT)
        description = describe(server)
        prices = recent_prices(served_stock(description), training_defaults().data_dir,
                               description["training_data"]["start"])
        forecast = request_forecast(server, description, prices)
        path = plot(forecast, prices, ROOT / "outputs" / f"forecast_{forecast.stock}.png")
    print(table(forecast))
    print(f"\nchart: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
