"""`make predict`: post the latest window of the served ticker to TorchServe; a table and a chart come back.

People would rather look at a forecast than read it: the PNG shows the last months of closes, then the
forecast on its trading dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stockcast.data.download import Downloader
from stockcast.errors import StockcastError
from stockcast.serving.client import call, post_json
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME

HISTORY_DAYS = 120  # calendar days of closes drawn before the forecast: about four months


@dataclass(frozen=True)
class Forecast:
    """The served model's answer for the window ending on `last_date`."""

    stock: str
    model_version: str
    last_date: str
    last_close: float
    dates: list[str]
    prices: list[float]


def describe(server: Server) -> dict:
    """The handler's description of the served model (ticker, window, features, ...)."""
    try:
        answer = call("GET", f"{server.url('management')}/models/{MODEL_NAME}?customized=true",
                      server.key("management"))
    except OSError as err:
        raise StockcastError(f"TorchServe is not answering at {server.url('management')} ({err}): make serve") from None
    if answer.status != 200:
        raise StockcastError(f"cannot describe the served model (HTTP {answer.status}): {answer.body.decode()[:300]}")
    return answer.json()[0]["customizedMetadata"]


def recent_prices(symbol: str, data_dir: Path, start: str) -> pd.DataFrame:
    """Prices since `start` up to today: the cache in `data_dir`, a download, or a local copy (with a warning)."""
    return Downloader(data_dir).load(symbol, start, None)


def served_stock(description: dict) -> str:
    """The ticker to forecast: the model's, or the first of a pooled model's."""
    return (description.get("stocks") or [description["stock"]])[0]


def request_forecast(server: Server, description: dict, prices: pd.DataFrame) -> Forecast:
    """POST the last `window` rows (closes, or one row of the model's features per day)."""
    window, features = description["window"], description["features"]
    if len(prices) < window:
        raise StockcastError(f"only {len(prices)} days of {served_stock(description)} prices; the model needs {window}")
    rows = prices[features].tail(window)
    values = rows["Close"].tolist() if features == ["Close"] else rows.to_numpy().tolist()
    last_date = f"{prices.index[-1]:%Y-%m-%d}"
    payload = {"prices": values, "stock": served_stock(description), "last_date": last_date}
    answer = post_json(f"{server.url('inference')}/predictions/{MODEL_NAME}", payload, server.key("inference"))
    if answer.status != 200:
        raise StockcastError(f"TorchServe answered HTTP {answer.status}: {answer.body.decode()[:300]}")
    body = answer.json()
    return Forecast(body["stock"], body["model_version"], last_date, float(prices["Close"].iloc[-1]), body["dates"],
                    body["forecast"])


def table(forecast: Forecast) -> str:
    lines = [f"{forecast.stock} forecast by model version {forecast.model_version}, from the close of "
             f"{forecast.last_date} ({forecast.last_close:.2f}):", "", "  date         close   change"]
    for date, price in zip(forecast.dates, forecast.prices, strict=True):
        change = 100 * (price / forecast.last_close - 1)
        lines.append(f"  {date}  {price:7.2f}  {change:+6.2f} %")
    return "\n".join(lines)


def plot(forecast: Forecast, prices: pd.DataFrame, path: Path) -> Path:
    """Closes of the last `HISTORY_DAYS`, then the forecast from the last close on its trading dates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = prices["Close"].loc[prices.index[-1] - pd.Timedelta(days=HISTORY_DAYS):]
    dates = pd.to_datetime([forecast.last_date, *forecast.dates])
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.plot(history.index, history.to_numpy(), color="black", lw=1.3, label="close")
    ax.plot(dates, [forecast.last_close, *forecast.prices], color="tab:blue", lw=1.8, marker="o", ms=3,
            label=f"forecast ({len(forecast.dates)} trading days)")
    ax.axvline(dates[0], color="grey", ls=":", lw=1)
    ax.set_title(f"{forecast.stock}: forecast from {forecast.last_date} (model version {forecast.model_version})")
    ax.set_ylabel("price")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
