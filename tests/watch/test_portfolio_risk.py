"""The watched portfolios: a day's served VaR against the next day's profit and loss, on a record of known normal
forecasts (right: green and Kupiec passes; too narrow: red), the gauges the alert rule reads, the file's checks."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from stockcast.config import risk_settings
from stockcast.errors import StockcastError
from stockcast.eval.risk_methods import Served, Window
from stockcast.runtime import risk
from stockcast.runtime.bundle import Bundle, BundleMeta
from stockcast.runtime.copula import Sampler
from stockcast.runtime.fields import RISK_DAYS
from stockcast.runtime.preprocess import parse_batch
from stockcast.runtime.risk import Model
from stockcast.watch.portfolio_risk import PortfolioScores, watched
from stockcast.watch.publish import exposition
from stockcast.watch.track_record import Origin
from tests.bundles import LEVELS, portfolio_of, tiny_bundle

SIGMA = {"AAA": 0.01, "BBB": 0.02}


class _Record:
    """Two tickers of correlated normal daily log returns, each day's served forecast their true 1-day quantiles
    (times `scale`: 1 right, below 1 too narrow)."""

    def __init__(self, scale: float, days: int = 650, tail: dict | None = None) -> None:
        rng = np.random.default_rng(7)
        correlated = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], days)
        dates = pd.bdate_range("2022-01-03", periods=days)
        # closes in 64ths: float32 holds them exactly, as a request's bars are read
        self._closes = {ticker: pd.Series(np.round(6400 * np.exp(np.cumsum(correlated[:, k] * sigma))) / 64,
                                          index=dates)
                        for k, (ticker, sigma) in enumerate(SIGMA.items())}
        meta = BundleMeta.from_dict({"symbol": "g", "model_version": "1", "window": 20, "horizon": 10,
                                     "features": ["Close"], "net": {"quantiles": LEVELS}, "risk_tail": tail})
        bundle = Bundle("g", None, meta)
        z = stats.norm.ppf(LEVELS)
        self._origins = {ticker: [Origin(ticker, bundle, day, row, np.tile(close * np.exp(scale * SIGMA[ticker] * z),
                                                                           (10, 1)), 1.0)
                                  for row, (day, close) in enumerate(closes.items())]
                         for ticker, closes in self._closes.items()}

    def origins(self, symbol: str) -> list[Origin]:
        return self._origins[symbol]

    def closes(self, symbol: str) -> pd.Series:
        return self._closes[symbol]


POSITIONS = {"AAA": 100.0, "BBB": 50.0}


def test_right_forecasts_stay_green_and_narrow_ones_turn_red():
    right = PortfolioScores(_Record(1.0), Sampler(4000)).status("pair", POSITIONS)
    narrow = PortfolioScores(_Record(0.6), Sampler(4000)).status("pair", POSITIONS)
    assert right.scored == 629 and right.zone == "green" and right.kupiec_p > 0.05, right
    assert narrow.zone == "red" and narrow.exceptions >= 10 and narrow.kupiec_p < 0.01, narrow
    assert narrow.last_var < right.last_var


def test_scored_days_are_kept_and_their_var_is_the_closed_form():
    scores = PortfolioScores(_Record(1.0), Sampler(20000))
    days = scores.days("pair", POSITIONS)
    assert scores.days("pair", POSITIONS).equals(days)  # computed once
    # the normal position's VaR: z sqrt(w' S w) with w = shares x close x sigma; the 5..95 % levels' exponential
    # tail makes the 99 % a little narrower than the normal's
    record = _Record(1.0)
    row = 400
    exposure = np.array([POSITIONS[t] * record.closes(t).iloc[row] * SIGMA[t] for t in SIGMA])
    spread = np.sqrt(exposure @ np.array([[1, 0.6], [0.6, 1]]) @ exposure)
    found = days.set_index("date")["var"].iloc[row - 1]
    assert found == pytest.approx(stats.norm.ppf(0.99) * spread, rel=0.1)


def test_the_gauges_say_each_portfolios_zone():
    status = PortfolioScores(_Record(0.6), Sampler(2000)).status("pair", POSITIONS)
    text = exposition([], 20, [status])
    assert 'stockcast_portfolio_zone{portfolio="pair",zone="red"} 1' in text
    assert 'stockcast_portfolio_zone{portfolio="pair",zone="green"} 0' in text
    exceptions = 'stockcast_portfolio_var_exceptions{portfolio="pair",level="0.99",window="250"}'
    assert f"{exceptions} {status.exceptions}" in text


def test_the_watched_file_is_checked(tmp_path):
    path = tmp_path / "portfolios.yaml"
    path.write_text("portfolios:\n  good: {VALE3.SA: 10, PETR4.SA: -5.5}\n")
    assert watched(path) == {"good": {"VALE3.SA": 10.0, "PETR4.SA": -5.5}}
    path.write_text("portfolios:\n  bad: {VALE3.SA: yes}\n")
    with pytest.raises(StockcastError, match="must map each name"):
        watched(path)


def test_the_projects_watched_portfolios_read():
    from stockcast.watch.live import WATCHED

    assert watched(WATCHED) and all(len(positions) >= 2 for positions in watched(WATCHED).values())


def test_the_backtest_the_monitor_and_the_server_draw_the_same_var(monkeypatch):
    """One day, one seed, one window of closes and model-config.yaml's settings, read by each through
    `Sampler.configured`: the server's risk model, the monitor and the backtest's served method give the same
    1-day 99 % VaR (the backtest's per unit of gross value, so scaled back: float32 rounding apart)."""
    tail = {side: {"shape": [0.2] * 10, "scale": [1.3] * 10, "rate": [0.06] * 10} for side in ("lower", "upper")}
    record, row, name = _Record(1.0, days=300, tail=tail), 280, "pair"
    sampler = Sampler.configured(risk_settings())
    day = record.closes("AAA").index[row]
    monitored = PortfolioScores(record, sampler).days(name, POSITIONS).set_index("date").loc[day, "var"]

    seed = zlib.crc32(f"{name} {day.date()}".encode())  # the monitor's and the backtest's seed of a day
    closes = np.stack([record.closes(ticker).to_numpy()[row - RISK_DAYS:row + 1] for ticker in SIGMA], axis=1)
    origins = [next(origin for origin in record.origins(ticker) if origin.date == day) for ticker in SIGMA]
    quantiles = np.stack([origin.quantiles for origin in origins])
    shares = np.array([POSITIONS[ticker] for ticker in SIGMA])
    gross = float(np.abs(shares * closes[-1]).sum())
    window = Window(closes, shares * closes[-1] / gross, quantiles, np.array(LEVELS), seed, tail)
    backtested = Served(sampler)(window, ((1, 0.99),), 10).var[1, 0.99] * gross

    bundle = tiny_bundle("global", {"symbol": "global", "any_ticker": True, "risk_tail": tail})
    sessions = [f"{date:%Y-%m-%d}" for date in record.closes("AAA").index]
    calendar = {"exchanges": {"XNYS": {"sessions": sessions}}, "stocks": {ticker: "XNYS" for ticker in SIGMA}}
    portfolio = portfolio_of(bundle, members={ticker: "global" for ticker in SIGMA}, calendar=calendar)
    body = {"instances": [{"stock": ticker, "prices": closes[:, k].tolist(), "last_date": f"{day:%Y-%m-%d}"}
                          for k, ticker in enumerate(SIGMA)], "risk": {"positions": shares.tolist(), "horizons": [1],
                                                                         "levels": [0.99]}}
    batch = parse_batch([({"body": body}, {})], portfolio)
    model = Model(portfolio, sampler)
    monkeypatch.setattr(risk, "_seed", lambda *_: seed)
    served = model.assess(batch.requests[0].risk, batch.instances,
                          [torch.from_numpy(origin.quantiles) for origin in origins])["var"]["0.99"][0]
    assert served == monitored
    assert backtested == pytest.approx(monitored, rel=1e-5)
