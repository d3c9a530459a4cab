"""The track record: what each ticker was served from each trading day's close, recomputed, and how it turned out.

Its source of truth is the model store, the server's `deployed.json` and the price caches, not the live
server: an archived net is deterministic, so the forecast served from day d's close is its bundle's net
applied to the last `context` closes up to d (a test checks this against TorchServe's answer). Which
bundle: the one answering the ticker in the archive version that was the default at the close of d's
session on the ticker's exchange (`release.history.defaults`); a switch during a session counts from that session's
forecast on, one after the close from the next session's. A ticker's model version is its bundle's (the
version it was first deployed with), so a bundle copied unchanged into later archives keeps one record.

A forecast is scored once all `horizon` closes after its origin have arrived, not step by step (a partly
arrived forecast would weigh the near steps only), against the naive forecast (the last close) and the
naive-empirical and EWMA ranges refit at each origin on every window since the bundle's training data
began, as the walk-forward backtest fits them (`eval.baselines.Refit`): on the same origins, the monitor's
figures are the backtest's.
"""

from __future__ import annotations

import bisect
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from stockcast.data.datamodule import bars_of
from stockcast.data.download import Downloader
from stockcast.eval.baselines import Refit, window_baselines
from stockcast.metrics import central_interval, covered, crps, naive_forecast, percentage_errors
from stockcast.release import history
from stockcast.runtime.bundle import Bundle, load_bundle
from stockcast.runtime.metric_keys import NAIVE_POINT, WINDOW_BASELINES
from stockcast.serving.archive import ServedSet, extract_bundle
from stockcast.serving.sessions import exchange_for, session_close
from stockcast.serving.versions import archives

# Each scored origin's means: the model's CRPS, each window baseline's (`{prefix}_crps`), the APEs, the interval hits.
SCORES = ("crps", *(baseline.key("crps") for baseline in WINDOW_BASELINES), "ape", f"{NAIVE_POINT}_ape", "hit_80",
          "hit_90")


@dataclass
class Origin:
    """One served forecast: from `date`'s close, by `bundle`; `scores` once its closes have all arrived
    (means over the horizon: CRPS in % of the origin's close, APE in %, interval hits as shares)."""

    symbol: str
    bundle: Bundle
    date: pd.Timestamp
    row: int  # the origin's row in the ticker's price cache
    quantiles: np.ndarray  # [H, Q] prices
    vol_ratio: float  # the window's EWMA volatility / the training median's (the net's own scale)
    scores: dict[str, float] | None = None
    scored: pd.Timestamp | None = None  # the date of its last close


class TrackRecord:
    """Origins per ticker, computed once and kept: a replay asks again every simulated day, and only the new
    origins (one forward pass per bundle) and the newly complete ones (their baselines) cost anything."""

    def __init__(self, run_dir: Path, model_store: Path, downloader: Downloader) -> None:
        self.run_dir, self.model_store, self.downloader = run_dir, model_store, downloader
        self._work = tempfile.TemporaryDirectory(prefix="stockcast-track-")
        self._sets: dict[Path, ServedSet] = {}
        self._bundles: dict[str, Bundle] = {}
        self._ranges: dict[tuple[str, str], tuple[float, float]] = {}
        self._origins: dict[str, dict[pd.Timestamp, Origin]] = {}
        self._checked: dict[str, pd.Timestamp] = {}  # per ticker, the last day whose bundle was looked up

    def __enter__(self) -> TrackRecord:
        return self

    def __exit__(self, *_: object) -> None:
        self._work.cleanup()

    def served_symbols(self) -> list[str]:
        """Every ticker some recorded default answered."""
        return sorted({symbol for _, served in self._schedule() for symbol in served.members})

    def origins(self, symbol: str) -> list[Origin]:
        """The ticker's served origins up to its cache's last close, oldest first; complete ones scored."""
        prices = self.downloader.read_cache(symbol)
        known = self._origins.setdefault(symbol, {})
        new: dict[str, list[int]] = {}  # bundle name -> rows
        for row, name in self._served_rows(symbol, prices.index):
            new.setdefault(name, []).append(row)
        for name, rows in new.items():
            for origin in self._forecast(symbol, self._bundles[name], prices, rows):
                known[origin.date] = origin
        pending: dict[str, list[Origin]] = {}
        for origin in known.values():
            if origin.scores is None and origin.row + origin.bundle.meta.horizon < len(prices):
                pending.setdefault(origin.bundle.name, []).append(origin)
        for found in pending.values():
            _score(found, prices)
        return sorted(known.values(), key=lambda origin: origin.date)

    def closes(self, symbol: str) -> pd.Series:
        """The ticker's closes in its price cache, by date."""
        return self.downloader.read_cache(symbol)["Close"]

    def vol_range(self, symbol: str, bundle: Bundle) -> tuple[float, float]:
        """The lowest and highest EWMA volatility (in the net's units, as `vol_ratio`) over the windows ending
        in the bundle's training period (before its validation period)."""
        key = (bundle.name, symbol)
        if key not in self._ranges:
            data = bundle.meta.data
            prices = self.downloader.read_cache(symbol)
            rows = np.flatnonzero((prices.index >= pd.Timestamp(data["first_date"])) &
                                  (prices.index < pd.Timestamp(data["val_start"])))
            ratios = _vol_ratios(bundle, prices, rows[rows >= rows[0] + bundle.meta.context - 1])
            self._ranges[key] = float(ratios.min()), float(ratios.max())
        return self._ranges[key]

    def _schedule(self) -> list[tuple[pd.Timestamp, ServedSet]]:
        """Each switch of the default with the set it served, oldest first (read again each time: a replay deploys)."""
        stored = archives(self.model_store)
        schedule = []
        for version, at in history.defaults(self.run_dir):
            path = stored.get(version)
            if path is None:  # deleted from the store: its days cannot be recomputed
                continue
            if path not in self._sets:
                self._sets[path] = ServedSet.read(path)
            schedule.append((pd.Timestamp(at).tz_convert("UTC"), self._sets[path]))
        return schedule

    def _served_rows(self, symbol: str, dates: pd.DatetimeIndex) -> list[tuple[int, str]]:
        """(row, bundle name) of each day not looked up before that a quantile model answered the ticker at
        the session's close. Days looked up stay settled: a deploy is recorded when it happens, after them. A
        point model is not recorded: it has no ranges to score."""
        schedule = self._schedule()
        if not schedule:
            return []
        times = [at for at, _ in schedule]
        exchange = exchange_for(symbol)
        first = dates.searchsorted(times[0].tz_convert(None).normalize())
        if symbol in self._checked:
            first = max(first, dates.searchsorted(self._checked[symbol], side="right"))
        self._checked[symbol] = dates[-1]
        served = []
        for row in range(int(first), len(dates)):
            switch = bisect.bisect_right(times, session_close(exchange, dates[row])) - 1
            members = schedule[switch][1].members if switch >= 0 else {}
            if symbol in members:
                name = members[symbol]
                if name not in self._bundles:
                    self._bundles[name] = self._load(schedule[switch][1], name)
                bundle = self._bundles[name]
                if bundle.meta.levels is not None and row >= bundle.meta.context - 1:
                    served.append((row, name))
        return served

    def _load(self, served: ServedSet, name: str) -> Bundle:
        folder = extract_bundle(served.sources[name], name, Path(self._work.name, name))
        return load_bundle(folder)

    def _forecast(self, symbol: str, bundle: Bundle, prices: pd.DataFrame, rows: list[int]) -> list[Origin]:
        """The bundle's forecasts from these rows' closes, in one forward pass."""
        windows = _windows(bundle, prices, np.asarray(rows))
        with torch.inference_mode():
            outputs = bundle.net(windows).double().numpy()  # [N, H, Q], or [N, H] for a point net
        ratios = _vol_ratios(bundle, prices, np.asarray(rows))
        return [Origin(symbol, bundle, prices.index[row], row, output.reshape(output.shape[0], -1), float(ratio))
                for row, output, ratio in zip(rows, outputs, ratios, strict=True)]


def _windows(bundle: Bundle, prices: pd.DataFrame, rows: np.ndarray) -> torch.Tensor:
    """[N, context, F] float32: the closes (and features) a client sent from each row's close."""
    values = prices[list(bundle.meta.features)].to_numpy(dtype=np.float64)
    context = bundle.meta.context
    return torch.tensor(values[rows[:, None] + np.arange(1 - context, 1)[None, :]], dtype=torch.float32)


def _vol_ratios(bundle: Bundle, prices: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """The net's EWMA volatility at each row / its training median volatility (both as the net computes them;
    nets from before range estimators have no `variance_ratio`: theirs is 1)."""
    net = bundle.net
    with torch.inference_mode():
        variance = net.volatility(_windows(bundle, prices, rows)).double().square()
        typical = getattr(net, "variance_ratio", torch.ones(())).double() * net.median_variance.double()
        return (variance / typical).sqrt().numpy()


def _score(origins: list[Origin], prices: pd.DataFrame) -> None:
    """Score complete origins of one bundle against their closes and the baselines (module docstring)."""
    bundle = origins[0].bundle
    horizon, context = bundle.meta.horizon, bundle.meta.context
    assert bundle.meta.levels is not None  # a quantile model's origins alone are served (`_served_rows`)
    levels = list(bundle.meta.levels)
    close = prices["Close"].to_numpy(dtype=np.float64)
    bars = bars_of(prices)
    first = int(prices.index.searchsorted(pd.Timestamp(bundle.meta.first_date)))
    rows = np.array([origin.row for origin in origins])
    actual = close[rows[:, None] + np.arange(1, horizon + 1)[None, :]]  # [N, H]
    last_close = close[rows]
    model = np.stack([origin.quantiles for origin in origins])  # [N, H, Q]
    baselines = {name: np.stack([Refit(kind, context)(bars[first:row + 1], horizon) for row in rows])
                 for name, kind in window_baselines(levels).items()}
    scores = {"crps": crps(model, actual, last_close, levels)}
    scores |= {f"{name}_crps": crps(forecast, actual, last_close, levels) for name, forecast in baselines.items()}
    scores |= {
        "ape": percentage_errors(model[..., levels.index(0.5)], actual),
        f"{NAIVE_POINT}_ape": percentage_errors(naive_forecast(last_close, horizon), actual),
        "hit_80": covered(*central_interval(model, levels, 80), actual),
        "hit_90": covered(*central_interval(model, levels, 90), actual),
    }
    for index, origin in enumerate(origins):
        origin.scores = {name: float(values[index].mean()) for name, values in scores.items()}
        origin.scored = prices.index[origin.row + horizon]
