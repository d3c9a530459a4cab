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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stockcast.ops.policy import DriftRules, Policy
from stockcast.ops.track_record import SCORES, Origin, TrackRecord

WINDOWS = ("20", "60", "all")  # the rolling windows of scored origins, and the version's whole span
FIGURES = ("coverage_80", "coverage_90", "crps", "skill_crps", "skill_crps_vs_ewma", "mape", "skill_mape")
REASONS = ("coverage", "skill", "input")


def scored_frame(origins: list[Origin]) -> pd.DataFrame:
    """One row per scored origin: ticker, model version, origin and scored dates, the scores."""
    rows = [{"symbol": o.symbol, "model_version": o.bundle.version, "origin": o.date, "scored": o.scored, **o.scores}
            for o in origins if o.scores is not None]
    return pd.DataFrame(rows, columns=["symbol", "model_version", "origin", "scored", *SCORES])


def figures(scored: pd.DataFrame) -> pd.DataFrame:
    """`{figure}_{window}` after each scored origin of one ticker and version (rows in order of `scored`);
    NaN until a rolling window has filled."""
    scored = scored.sort_values("scored")
    columns = {}
    for window in WINDOWS:
        means = scored[list(SCORES)].expanding() if window == "all" else \
            scored[list(SCORES)].rolling(int(window))
        mean = means.mean()
        columns |= {
            f"coverage_80_{window}": mean["hit_80"],
            f"coverage_90_{window}": mean["hit_90"],
            f"crps_{window}": mean["crps"],
            f"skill_crps_{window}": 1 - mean["crps"] / mean["naive_crps"],
            f"skill_crps_vs_ewma_{window}": 1 - mean["crps"] / mean["ewma_crps"],
            f"mape_{window}": mean["ape"],
            f"skill_mape_{window}": 1 - mean["ape"] / mean["naive_ape"],
        }
    return pd.DataFrame(columns).set_index(scored["scored"])


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


def assess(track: TrackRecord, symbol: str, rules: DriftRules, policy: Policy) -> tuple[Status, pd.DataFrame]:
    """The ticker's status now and the figures of each of its versions (one frame, `model_version` a column)."""
    origins = track.origins(symbol)
    if not origins:
        raise ValueError(f"{symbol} has no served origin")
    scored = scored_frame(origins)
    per_version = [figures(group).assign(model_version=version)
                   for version, group in scored.groupby("model_version", sort=False)]
    table = pd.concat(per_version) if per_version else pd.DataFrame()
    newest = origins[-1]
    version = newest.bundle.version
    own = [o for o in origins if o.bundle.version == version]
    mine = scored[scored["model_version"] == version]
    recent = figures(mine.tail(rules.window)).iloc[-1].to_dict() if len(mine) else {}
    latest = table[table["model_version"] == version].iloc[-1].to_dict() if len(mine) else {}
    window_figures = {name: recent.get(f"{name}_all", np.nan) for name in FIGURES}
    status = Status(symbol, version, own[0].date, newest.date, len(mine),
                    {**latest, **{f"{name}_last{rules.window}": value for name, value in window_figures.items()}},
                    newest.vol_ratio, track.vol_range(symbol, newest.bundle))
    return _with_drifts(status, window_figures, rules, policy), table


def _with_drifts(status: Status, window: dict[str, float], rules: DriftRules, policy: Policy) -> Status:
    found = []
    if status.scored >= rules.window:
        coverage, skill = window["coverage_80"], window["skill_crps"]
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
            "skill_mape all": get("skill_mape_all"),
            "input vol": f"{s.vol_ratio:.2f} ({s.vol_range[0]:.2f}..{s.vol_range[1]:.2f})",
            "drift": ", ".join(d.reason for d in s.drifts) or "-",
        })
    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f")
