"""`make predict`: a client of the running TorchServe. It posts the latest window of the served ticker's
prices and gets the forecast back, as a table and a chart.

People would rather look at a forecast than read it: the chart shows the last months of closes, then the
forecast on its trading dates, with its 80 and 90 % ranges when the model serves them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stockcast.data.download import Downloader
from stockcast.errors import StockcastError
from stockcast.plots import served_figure
from stockcast.runtime.bars import BAR_FIELDS
from stockcast.runtime.description import Described, Description
from stockcast.serving.client import post_json
from stockcast.serving.management import Management
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME
from stockcast.symbols import normalize_symbol

HISTORY_DAYS = 120  # calendar days of closes drawn before the forecast: about four months


@dataclass(frozen=True)
class Forecast:
    """The served model's answer for the window ending on `last_date`."""

    stock: str
    model_version: str
    last_date: str
    last_close: float
    dates: list[str]
    prices: list[float]  # the median for a quantile model
    intervals: dict[str, dict[str, list[float]]] | None  # "80" -> {"lower": [...], "upper": [...]}
    p_up: list[float] | None  # per day, the probability of closing above last_close


def latest(server: Server, data_dir: Path, stock: str | None = None,
           say: Callable[[str], None] = print) -> tuple[Forecast, pd.Series]:
    """The served forecast for `stock` (default: the served default ticker, else the first), and the closes of
    the last `HISTORY_DAYS` before it (the cache in `data_dir`, a download, or a local copy, with a warning). By
    name where the server's price store holds the ticker's bars; the bars are sent where it holds none, or none
    recent enough."""
    served = Management(server).description()
    symbol, described, prices = served_prices(server, data_dir, stock, served=served)
    store = served.get("price_store")
    by_name = store is not None and symbol in store["tickers"]
    payload = {"stock": symbol} if by_name else request_body(prices, symbol, described)
    url = f"{server.url('inference')}/predictions/{MODEL_NAME}"
    answer = post_json(url, payload, server.key("inference"))
    if by_name and answer.status == 422:  # the store's bars are stale or broken: send ours
        say(f"the server's price store cannot answer ({answer.json().get('message')}): sending the bars")
        payload = request_body(prices, symbol, described)
        answer = post_json(url, payload, server.key("inference"))
    if answer.status != 200:
        raise StockcastError(f"TorchServe answered HTTP {answer.status}: {answer.body.decode()[:300]}")
    body = answer.json()
    last_date = body.get("last_date", payload.get("last_date"))
    last_close = body.get("last_close", float(prices["Close"].iloc[-1]))
    forecast = Forecast(body["stock"], body["model_version"], last_date, last_close, body["dates"], body["forecast"],
                        body.get("intervals"), body.get("p_up"))
    return forecast, prices["Close"].loc[:pd.Timestamp(last_date)].loc[
        pd.Timestamp(last_date) - pd.Timedelta(days=HISTORY_DAYS):]


def served_prices(server: Server, data_dir: Path, stock: str | None = None, online: bool = True,
                  served: Description | None = None) -> tuple[str, Described, pd.DataFrame]:
    """The served ticker `stock` names (default: the served default, else the first), how the server describes
    its model (`served`: its description, when asked already), and its prices from the model's first training
    day (`online=False`: local files only)."""
    served = served or Management(server).description()
    symbol = normalize_symbol(stock) if stock else served["default_stock"] or next(iter(served["stocks"]))
    if symbol not in served["stocks"]:
        raise StockcastError(f"{symbol} is not served: the served tickers are {', '.join(served['stocks'])}")
    described = served["stocks"][symbol]
    prices = Downloader(data_dir, online=online).load(symbol, described["training_data"]["start"], None)
    return symbol, described, prices


def request_body(prices: pd.DataFrame, symbol: str, described: Described) -> dict[str, Any]:
    """The body `make predict` posts for the window ending at the last row of `prices`: the last `context` closes
    with the day's bars where the model reads them (else one row of its features per day), the ticker and the
    last date."""
    window, features = described["window"], described["features"]
    if len(prices) < window:
        raise StockcastError(f"only {len(prices)} days of {symbol} prices; the model needs {window}")
    rows = prices.tail(described["context"])  # all the rows the model reads
    payload = {"prices": rows["Close"].tolist(), "stock": symbol, "last_date": f"{prices.index[-1]:%Y-%m-%d}"}
    if set(features) <= {"Close", *BAR_FIELDS.values()}:  # the day's bar beside the closes, where the model reads it
        payload |= {field: rows[name].tolist() for field, name in BAR_FIELDS.items() if name in features}
    else:  # other columns (Volume): one row of the model's features per day
        payload["prices"] = rows[features].to_numpy().tolist()
    return payload


def table(forecast: Forecast) -> str:
    """One line per forecast day: the (median) close and its change, and, for a quantile model, the 80 %
    range and the chance of closing above the last close."""
    ranged = forecast.intervals is not None and "80" in forecast.intervals
    lines = [f"{forecast.stock} forecast by model version {forecast.model_version}, from the close of "
             f"{forecast.last_date} ({forecast.last_close:.2f}):", "",
             "  date         close   change" + ("      80 % range      P(up)" if ranged else "")]
    for day, (date, price) in enumerate(zip(forecast.dates, forecast.prices, strict=True)):
        line = f"  {date}  {price:7.2f}  {100 * (price / forecast.last_close - 1):+6.2f} %"
        if ranged:
            assert forecast.intervals is not None and forecast.p_up is not None  # p_up is served with the ranges
            band = forecast.intervals["80"]
            line += f"  {band['lower'][day]:7.2f} .. {band['upper'][day]:7.2f}  {100 * forecast.p_up[day]:4.0f} %"
        lines.append(line)
    return "\n".join(lines)


def save_chart(forecast: Forecast, history: pd.Series, path: Path) -> Path:
    """The closes in `history`, then the forecast from the last close on its trading dates, as a PNG."""
    figure = served_figure(forecast.stock, forecast.model_version, forecast.last_date, forecast.last_close,
                           forecast.dates, forecast.prices, history, forecast.intervals)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
