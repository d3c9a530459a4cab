"""The watched portfolios (monitoring/portfolios.yaml): each day's served 1-day VaR against the next day's profit
and loss, scored as the closes arrive, as the served forecasts are.

A day's VaR is what the server answered a portfolio request with `risk` from that day's close: the track
record's forecast of each ticker (its served bundle, recomputed) and the year of common closes before it,
drawn by the runtime's own `copula.Sampler` with model-config.yaml's `handler.risk` settings. Scored once the
next common close has arrived: an exception when the position lost more than the VaR. Over the last 250 scored
days: Kupiec's test and Basel's traffic-light zone, which the alert rule StockcastRiskZone reads.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import yaml

from stockcast.config import risk_settings
from stockcast.errors import StockcastError
from stockcast.metrics import kupiec, traffic_light
from stockcast.runtime import copula
from stockcast.runtime.fields import RISK_DAYS
from stockcast.watch.track_record import Origin

LEVEL = 0.99  # the VaR watched: Basel's
ZONE_DAYS = 250  # the traffic light's span, and Kupiec's


class Record(Protocol):
    """What scoring reads of a track record: each ticker's served forecasts and its closes."""

    def origins(self, symbol: str) -> list[Origin]: ...

    def closes(self, symbol: str) -> pd.Series: ...


def watched(path: Path) -> dict[str, dict[str, float]]:
    """monitoring/portfolios.yaml: name -> {ticker: shares held (negative: short)}; raises on a malformed file."""
    listed = (yaml.safe_load(path.read_text()) or {}).get("portfolios") or {}
    if not isinstance(listed, dict) or not all(isinstance(positions, dict) and positions and all(
            isinstance(shares, (int, float)) and not isinstance(shares, bool) for shares in positions.values())
            for positions in listed.values()):
        raise StockcastError(f"{path}: 'portfolios' must map each name to {{ticker: shares}}")
    return {str(name): {str(ticker): float(shares) for ticker, shares in positions.items()}
            for name, positions in listed.items()}


def sampler(model_config: Path) -> copula.Sampler:
    """The served risk model's sampler, from model-config.yaml's `handler.risk` as the server reads it."""
    return copula.Sampler.configured(risk_settings(model_config))


@dataclass(frozen=True)
class RiskStatus:
    """One watched portfolio now: its scored days and, over the last ZONE_DAYS of them, exceptions, Kupiec, zone."""

    name: str
    scored: int
    exceptions: int  # over the last ZONE_DAYS scored days
    kupiec_p: float
    zone: str  # Basel's for 250 days; on fewer, the zone their exceptions already reach
    last_day: pd.Timestamp | None  # the newest scored day
    last_var: float  # its VaR, in the prices' currency
    last_exception: bool


class PortfolioScores:
    """Each watched portfolio's scored days, computed once and kept (a replay asks again every simulated day)."""

    def __init__(self, record: Record, sampler: copula.Sampler) -> None:
        self.record, self.sampler = record, sampler
        self._days: dict[str, dict[pd.Timestamp, dict[str, Any]]] = {}

    def days(self, name: str, positions: Mapping[str, float]) -> pd.DataFrame:
        """One row per scored day: date, var, pnl, exception (pnl < -var)."""
        tickers = list(positions)
        closes = pd.concat({ticker: self.record.closes(ticker) for ticker in tickers}, axis=1).dropna()
        served = [{origin.date: origin for origin in self.record.origins(ticker)} for ticker in tickers]
        shares = torch.tensor([positions[ticker] for ticker in tickers], dtype=torch.float64)
        known = self._days.setdefault(name, {})
        for row in range(self.sampler.min_days, len(closes) - 1):  # as the server: at least min_days returns
            day = closes.index[row]
            if day in known or any(day not in by_date for by_date in served):
                continue
            origins = [by_date[day] for by_date in served]
            window = torch.from_numpy(closes.iloc[max(0, row - RISK_DAYS):row + 1].to_numpy())
            quantiles = torch.from_numpy(np.stack([origin.quantiles for origin in origins]))
            levels = torch.tensor(origins[0].bundle.meta.levels or (), dtype=torch.float64)
            _, [changes] = self.sampler.draw(window, window[-1], quantiles, levels, [1],
                                             zlib.crc32(f"{name} {day.date()}".encode()),
                                             [origin.bundle.meta.risk_tail for origin in origins])
            var = copula.measures(changes, shares, [LEVEL], [0.5]).var[0]
            pnl = float(shares @ torch.from_numpy(closes.iloc[row + 1].to_numpy() - closes.iloc[row].to_numpy()))
            known[day] = {"date": day, "var": var, "pnl": pnl, "exception": pnl < -var}
        return pd.DataFrame(sorted(known.values(), key=lambda found: found["date"]),
                            columns=["date", "var", "pnl", "exception"])

    def status(self, name: str, positions: Mapping[str, float]) -> RiskStatus:
        days = self.days(name, positions)
        last = days.iloc[-ZONE_DAYS:]
        if last.empty:
            return RiskStatus(name, 0, 0, float("nan"), "", None, float("nan"), False)
        exceptions = int(last.exception.sum())
        return RiskStatus(name, len(days), exceptions, kupiec(~last.exception.to_numpy(bool), LEVEL * 100).pvalue,
                          traffic_light(exceptions), last.date.iloc[-1],
                          float(last["var"].iloc[-1]), bool(last.exception.iloc[-1]))


def table(statuses: list[RiskStatus]) -> str:
    """The printed summary: one row per watched portfolio."""
    return pd.DataFrame([{"portfolio": s.name, "scored days": s.scored, f"exceptions last {ZONE_DAYS}": s.exceptions,
                          "kupiec p": s.kupiec_p, "zone": s.zone or "-",
                          "last day": "-" if s.last_day is None else f"{s.last_day:%Y-%m-%d}",
                          "VaR 99 %": s.last_var, "exception": s.last_exception}
                         for s in statuses]).to_markdown(index=False, floatfmt=".3g")
