"""`scripts/admin.py monitor`: the track record's scores over rolling windows, and the drift decision.

Figures per ticker and model version, after each scored origin (the step is the day its last close
arrived), over the last 20 and 60 scored origins and over the whole span the version served: coverage
of the 80 and 90 % intervals, CRPS and its skill against the naive-empirical ranges (the gate's
`skill_crps`) and against EWMA's, MAPE and its skill against the naive forecast. Every figure over a
window is a ratio of means over its origins, as the backtest's over its test period.

Drift, for the version serving each ticker now (`DriftRules`): over its last `window` scored origins, the
80 % coverage outside the band or the CRPS skill below the retrain gate's floor; or input drift, the
window served at the last close far outside the training period's volatility. A version with fewer
scored origins than the window is not judged on its scores yet (a new model cannot drift on day one).

`check` is one monitor run: every ticker assessed, reported, and the drifted ones retrained when the
settings say so. The admin command runs it on the live server's record (`watch.live`), the replay once
per replayed day (`watch.replay`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stockcast.errors import StockcastError
from stockcast.release.policy import DEFAULT, Policy
from stockcast.runtime.metric_keys import NAIVE_EMPIRICAL, NAIVE_POINT, PEERS
from stockcast.watch.drift import DriftRules
from stockcast.watch.track_record import SCORES, Origin, TrackRecord

WINDOWS = ("20", "60", "all")  # the rolling windows of scored origins, and the version's whole span
# skill_crps against the naive-empirical ranges, skill_crps_vs_<prefix> against each peer baseline.
FIGURES = ("coverage_80", "coverage_90", "crps", "skill_crps", *(f"skill_crps_vs_{peer.prefix}" for peer in PEERS),
           "mape", "skill_mape")
REASONS = ("coverage", "skill", "input")


def scored_frame(origins: list[Origin]) -> pd.DataFrame:
    """One row per scored origin: ticker, model version, origin and scored dates, the scores."""
    rows = [{"symbol": o.symbol, "model_version": o.bundle.meta.version, "origin": o.date, "scored": o.scored,
             **o.scores} for o in origins if o.scores is not None]
    return pd.DataFrame(rows, columns=["symbol", "model_version", "origin", "scored", *SCORES])


def _ratios(mean: Mapping[str, Any], window: str) -> dict[str, Any]:
    """The figures from the mean scores over a window (floats, or Series of rolling means)."""
    reference = NAIVE_EMPIRICAL.key("crps")
    return {f"coverage_80_{window}": mean["hit_80"], f"coverage_90_{window}": mean["hit_90"],
            f"crps_{window}": mean["crps"], f"skill_crps_{window}": 1 - mean["crps"] / mean[reference],
            **{f"skill_crps_vs_{peer.prefix}_{window}": 1 - mean["crps"] / mean[peer.key("crps")] for peer in PEERS},
            f"mape_{window}": mean["ape"], f"skill_mape_{window}": 1 - mean["ape"] / mean[f"{NAIVE_POINT}_ape"]}


def figures(scored: pd.DataFrame) -> pd.DataFrame:
    """`{figure}_{window}` after each scored origin of one ticker and version, indexed by the day it was scored;
    NaN until a rolling window has filled."""
    scored = scored.sort_values("scored")
    columns: dict[str, pd.Series] = {}
    for window in WINDOWS:
        scores = scored[list(SCORES)]
        columns |= _ratios((scores.expanding() if window == "all" else scores.rolling(int(window))).mean(), window)
    return pd.DataFrame(columns).set_index(scored["scored"])


def history(origins: list[Origin]) -> pd.DataFrame:
    """`figures` of every version of a ticker, in order, with a `model_version` column (MLflow's steps)."""
    scored = scored_frame(origins)
    return pd.concat([figures(group).assign(model_version=version)
                      for version, group in scored.groupby("model_version", sort=False)] or [pd.DataFrame()])


def vol_ratios(origins: list[Origin]) -> pd.DataFrame:
    """The served windows' volatility ratio by origin date, with the model version that served each."""
    return pd.DataFrame({"model_version": [o.bundle.meta.version for o in origins],
                         "vol_ratio": [o.vol_ratio for o in origins]},
                        index=pd.DatetimeIndex([o.date for o in origins]))


def latest(scores: list[dict[str, float]], windows: dict[str, int | None]) -> dict[str, float]:
    """The figures over the last n of `scores` (oldest first) for each window name -> n (None: all of them);
    NaN where fewer were scored."""
    found: dict[str, float] = {}
    for name, count in windows.items():
        last = scores if count is None else scores[-count:]
        if last and (count is None or len(last) == count):
            found |= _ratios({key: float(np.mean([s[key] for s in last])) for key in SCORES}, name)
        else:
            found |= {f"{figure}_{name}": np.nan for figure in FIGURES}
    return found


@dataclass(frozen=True)
class Drift:
    symbol: str
    reason: str  # one of REASONS
    message: str


@dataclass(frozen=True)
class Status:
    """One ticker now: the version serving it, its figures, whether it drifted."""

    symbol: str
    model_version: str
    since: pd.Timestamp  # its first origin
    last_origin: pd.Timestamp
    scored: int  # origins scored so far
    latest: dict[str, float]  # the figures after its newest scored origin (empty: none scored yet)
    vol_ratio: float  # the window served at the last close
    vol_range: tuple[float, float]  # the training period's
    drifts: list[Drift] = field(default_factory=list)


@dataclass(frozen=True)
class Settings:
    """What a monitor run judges by and does: the drift rules, the policy (its CRPS skill floor is the drift
    rule's, its gate the retrain's), and whether the drifted tickers are retrained."""

    rules: DriftRules = DriftRules()
    policy: Policy = DEFAULT
    retrain: bool = False


def assess(track: TrackRecord, symbol: str, rules: DriftRules, policy: Policy) -> Status:
    """The ticker now: the version serving its last close, its figures, its drifts."""
    origins = track.origins(symbol)
    if not origins:
        raise StockcastError(f"{symbol}: no forecast of a quantile model was served from a recorded default")
    newest = origins[-1]
    own = [o for o in origins if o.bundle.meta.version == newest.bundle.meta.version]
    scores = [o.scores for o in own if o.scores is not None]
    figures_now = latest(scores, {f"last{rules.window}": rules.window, "60": 60, "all": None})
    status = Status(symbol, str(newest.bundle.meta.version), own[0].date, newest.date, len(scores), figures_now,
                    newest.vol_ratio, track.vol_range(symbol, newest.bundle))
    return _with_drifts(status, rules, policy)


def _with_drifts(status: Status, rules: DriftRules, policy: Policy) -> Status:
    found = []
    if status.scored >= rules.window:
        coverage = round(status.latest[f"coverage_80_last{rules.window}"], 9)  # 13 hits in 20 is 0.65, not below
        skill = status.latest[f"skill_crps_last{rules.window}"]
        if not rules.min_coverage <= coverage <= rules.max_coverage:
            found.append(Drift(status.symbol, "coverage", (
                f"80 % coverage {coverage:.3f} over the last {rules.window} scored origins is outside "
                f"[{rules.min_coverage:.2f}, {rules.max_coverage:.2f}]: the ranges are "
                f"{'too narrow' if coverage < rules.min_coverage else 'too wide'}")))
        if skill < policy.min_skill_crps:
            found.append(Drift(status.symbol, "skill", (
                f"skill_crps {skill:+.4f} over the last {rules.window} scored origins is below the retrain "
                f"gate's {policy.min_skill_crps:+.4f}: the naive-empirical ranges did better")))
    low, high = status.vol_range
    if not low / rules.vol_factor <= status.vol_ratio <= high * rules.vol_factor:
        found.append(Drift(status.symbol, "input", (
            f"the served window's volatility is {status.vol_ratio:.2f} x the training median, outside the training "
            f"period's {low:.2f}..{high:.2f} by more than a factor {rules.vol_factor:g}")))
    return Status(**{**status.__dict__, "drifts": found})


def check(track: TrackRecord, symbols: list[str], settings: Settings, report: Callable[[list[Status]], None],
          retrain: Callable[[list[Status]], None]) -> list[Status]:
    """Assess each ticker, `report` the statuses (all of them, before any retrain starts), then with
    `settings.retrain` hand the drifted ones to `retrain`; the statuses."""
    statuses = [assess(track, symbol, settings.rules, settings.policy) for symbol in symbols]
    report(statuses)
    drifted = [status for status in statuses if status.drifts]
    if settings.retrain and drifted:
        retrain(drifted)
    return statuses


def table(statuses: list[Status], rules: DriftRules) -> str:
    """The printed summary: one row per ticker (its serving version), a figure over each window."""
    window = rules.window
    rows = []
    for s in statuses:
        get = s.latest.get
        rows.append({
            "ticker": s.symbol, "version": s.model_version, "since": f"{s.since:%Y-%m-%d}",
            "last origin": f"{s.last_origin:%Y-%m-%d}", "scored": s.scored,
            f"cov80 last{window}": get(f"coverage_80_last{window}"), "cov80 60": get("coverage_80_60"),
            "cov80 all": get("coverage_80_all"), f"cov90 last{window}": get(f"coverage_90_last{window}"),
            f"skill_crps last{window}": get(f"skill_crps_last{window}"), "skill_crps 60": get("skill_crps_60"),
            "skill_crps all": get("skill_crps_all"), "vs EWMA all": get("skill_crps_vs_ewma_all"),
            "vs range EWMA all": get("skill_crps_vs_range_ewma_all"),
            "skill_mape all": get("skill_mape_all"),
            "input vol": f"{s.vol_ratio:.2f} ({s.vol_range[0]:.2f}..{s.vol_range[1]:.2f})",
            "drift": ", ".join(d.reason for d in s.drifts) or "-",
        })
    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f")
