"""`make risk`: the served portfolio risk walked day by day over a year, beside its peers, on fixed portfolios.

Each origin day every method reads the same past (`risk_methods.Window`: the last `history` common days of the
portfolio's tickers, and the served marginals' forecasts from that day) and forecasts the position's 1-day VaR
at 99 and 97.5 %, ES at 97.5 % and 10-day VaR at 99 % (every 10th origin scored: non-overlapping windows), and a
joint 1-day ensemble. The tail shape is chosen on the validation year (lowest mean FZ0 loss of the served
1-day 97.5 % VaR and ES); the test year is then scored once. A position has gross value 1: its profit and loss
(pnl) is the weights' sum of the tickers' simple returns.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scoringrules
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from stockcast.data.datamodule import bars_of
from stockcast.eval.baselines import history_columns
from stockcast.eval.risk_methods import Asked, Method, Served, Window
from stockcast.metrics import acerbi_szekely_z2, conditional_coverage, fz0_loss, kupiec, pooled_test, traffic_light
from stockcast.runtime.bundle import Bundle
from stockcast.runtime.copula import Sampler

log = logging.getLogger(__name__)
ASKED: Asked = ((1, 0.99), (1, 0.975), (10, 0.99))  # (horizon, level) of the VaRs scored
ES_LEVEL = 0.975  # the ES scored (with the 1-day VaR of the same level)
SERVED, INDEPENDENT = "served", "independent"
HISTORICAL, RISKMETRICS, FHS = "historical", "riskmetrics", "fhs"  # configs/risk.yaml's baselines, tested against
ZONE_DAYS = 250  # Basel's traffic light reads the last 250 days
BACKTEST_COLUMNS = ["portfolio", "method", "horizon", "level", "days", "exceptions", "kupiec_p", "cc_p", "zone",
                    "z2", "fz0"]
JOINT_COLUMNS = ["portfolio", "method", "energy", "variogram", "crps_value"]


@dataclass(frozen=True)
class Walked:
    """One portfolio's walk: per origin day the realized pnl and each method's forecasts."""

    daily: pd.DataFrame  # a row per method and origin: date, method, pnl_1, pnl_10, var/es columns
    joint: pd.DataFrame  # a row per method and origin: date, method, energy, variogram, crps_value


def net_forecasts(bundle: Bundle, prices: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> pd.Series:
    """The served net's [H, Q] quantile prices from each day in [first, last] with `context` rows behind it, by
    date: what the server answers from the last `context` bars sent up to that day."""
    meta = bundle.meta
    others = history_columns(list(meta.features))[4:]
    values = np.concatenate([bars_of(prices), prices[others].to_numpy(dtype=np.float64)], axis=1)
    columns = [history_columns(list(meta.features)).index(name) for name in meta.features]
    days = np.flatnonzero((prices.index >= first) & (prices.index <= last))
    days = days[days >= meta.context - 1]
    windows = np.lib.stride_tricks.sliding_window_view(values[:, columns], meta.context, axis=0)  # [T-C+1, F, C]
    outputs = []
    with torch.inference_mode():
        for chunk in np.array_split(days, max(1, len(days) // 4096 + 1)):
            batch = torch.from_numpy(windows[chunk - meta.context + 1].transpose(0, 2, 1).copy()).float()
            outputs.extend(bundle.net(batch).double().numpy())
    return pd.Series(outputs, index=prices.index[days], dtype=object)


def walk(name: str, weights: Mapping[str, float], closes: pd.DataFrame, forecasts: Mapping[str, pd.Series],
         levels: np.ndarray, methods: Mapping[str, Method], span: tuple[pd.Timestamp, pd.Timestamp], history: int,
         members: int, joint: bool = True, tail: Mapping[str, Any] | None = None, every: int = 1) -> Walked:
    """Every `every`-th origin of `span` (with `history` common days behind it and the next day known) forecast by
    each of `methods`; `closes`: the tickers' closes on their common days; `joint`: score the joint ensembles too;
    `tail`: the marginals' bundle's fitted tails."""
    tickers = list(weights)
    prices = closes[tickers].to_numpy()
    w = np.array([weights[ticker] for ticker in tickers])
    dates = closes.index
    origins = [i for i in range(history, len(dates) - 1) if span[0] <= dates[i] <= span[1]][::every]
    rows: list[dict] = []
    observed: list[np.ndarray] = []
    ensembles: dict[str, list[np.ndarray]] = {method: [] for method in methods}
    for i in origins:
        quantiles = np.stack([forecasts[ticker].get(dates[i]) for ticker in tickers])
        window = Window(prices[i - history:i + 1], w, quantiles, levels,
                        zlib.crc32(f"{name} {dates[i].date()}".encode()), tail)
        realized = prices[i + 1] / prices[i] - 1
        pnl_10 = float(w @ (prices[i + 10] / prices[i] - 1)) if i + 10 < len(dates) else np.nan
        observed.append(realized)
        for method, forecast_with in methods.items():
            forecast = forecast_with(window, ASKED, members)
            rows.append({"date": dates[i], "method": method, "pnl_1": float(w @ realized), "pnl_10": pnl_10,
                         **{_column("var", h, level): value for (h, level), value in forecast.var.items()},
                         "es_1_0.975": forecast.es[1, ES_LEVEL]})
            ensembles[method].append(forecast.ensemble[:members])
    daily = pd.DataFrame(rows)
    if not joint:
        return Walked(daily, pd.DataFrame(columns=["date", "method", "energy", "variogram", "crps_value"]))
    scores = []
    obs = torch.from_numpy(np.stack(observed) * 100)  # percent
    for method, members_per_day in ensembles.items():
        fct = torch.from_numpy(np.stack(members_per_day) * 100)  # [D, M, N]
        scores.append(pd.DataFrame({
            "date": dates[origins], "method": method,
            "energy": scoringrules.energy_score(obs, fct, estimator="fair", backend="torch").numpy(),
            "variogram": scoringrules.variogram_score(obs, fct, p=0.5, backend="torch").numpy(),
            "crps_value": scoringrules.crps_ensemble(obs @ torch.from_numpy(w), fct @ torch.from_numpy(w),
                                                     backend="torch").numpy()}))
    return Walked(daily, pd.concat(scores, ignore_index=True))


def _column(kind: str, horizon: int, level: float) -> str:
    return f"{kind}_{horizon}_{level:g}"


def scored(name: str, walked: Walked) -> tuple[list[dict], list[dict]]:
    """One portfolio's rows of risk_backtest.csv and joint_scores.csv."""
    backtest, joint = [], []
    for method, days in walked.daily.groupby("method", sort=False):
        for horizon, level in ASKED:
            every = days if horizon == 1 else days.iloc[::horizon].dropna(subset=["pnl_10"])
            pnl, var = every[f"pnl_{horizon}"].to_numpy(), every[_column("var", horizon, level)].to_numpy()
            hits = pnl >= -var
            row = {"portfolio": name, "method": method, "horizon": horizon, "level": level, "days": len(hits),
                   "exceptions": int((~hits).sum()), "kupiec_p": kupiec(hits, level * 100).pvalue,
                   "cc_p": conditional_coverage(hits, level * 100).pvalue, "zone": "", "z2": np.nan, "fz0": np.nan}
            if (horizon, level) == (1, 0.99):
                row["zone"] = traffic_light(int((~hits[-ZONE_DAYS:]).sum()))
            if (horizon, level) == (1, ES_LEVEL):
                es = every["es_1_0.975"].to_numpy()
                row["z2"] = acerbi_szekely_z2(pnl, var, es, level)
                row["fz0"] = float(fz0_loss(pnl, var, es, level).mean())
            backtest.append(row)
    for method, days in walked.joint.groupby("method", sort=False):
        joint.append({"portfolio": name, "method": method, **days[["energy", "variogram", "crps_value"]].mean()})
    return backtest, joint


def summary(backtest: pd.DataFrame, joint: pd.DataFrame) -> pd.DataFrame:
    """A row per method: the shares of portfolios passing each test, the zones, the mean losses and scores."""
    rows = {}
    for method, rows_of in backtest.groupby("method", sort=False):
        one, quarter, ten = (rows_of[(rows_of.horizon == h) & (rows_of.level == level)] for h, level in ASKED)
        scores = joint[joint.method == method]
        rows[method] = {
            "kupiec_99": (one.kupiec_p >= 0.05).mean(), "kupiec_975": (quarter.kupiec_p >= 0.05).mean(),
            "cc_99": (one.cc_p >= 0.05).mean(), "cc_975": (quarter.cc_p >= 0.05).mean(),
            "green": (one.zone == "green").mean(), "red": int((one.zone == "red").sum()),
            "exceptions_99": one.exceptions.sum() / one.days.sum(), "z2_ok": (quarter.z2 >= -0.70).mean(),
            "fz0": quarter.fz0.mean(), "kupiec_10d_99": (ten.kupiec_p >= 0.05).mean(),
            "energy": scores.energy.mean(), "variogram": scores.variogram.mean(),
            "crps_value": scores.crps_value.mean()}
    return pd.DataFrame.from_dict(rows, orient="index")


def pooled(daily: pd.DataFrame, joint: pd.DataFrame, versus: list[str]) -> pd.DataFrame:
    """The served method against each of `versus`: the mean daily difference of FZ0, energy and variogram scores
    summed over portfolios, tested with Driscoll-Kraay errors (metrics.pooled_test; negative: served lower).
    `daily` and `joint`: every portfolio's walk, with its `portfolio` column."""
    rows = []
    fz0 = daily.assign(fz0=fz0_loss(daily.pnl_1, daily["var_1_0.975"], daily["es_1_0.975"], ES_LEVEL))
    for peer in versus:
        for score, frame in (("fz0", fz0), ("energy", joint), ("variogram", joint)):
            differences = []
            for _, days in frame.groupby("portfolio"):
                table = days.pivot_table(index="date", columns="method", values=score)
                differences.append(table[SERVED] - table[peer])
            test = pooled_test(differences, lag=5)
            rows.append({"served_vs": peer, "score": score,
                         "mean_difference": float(pd.concat(differences).mean()), "statistic": test.statistic,
                         "p": test.pvalue})
    return pd.DataFrame(rows)


def goals(summary: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """The served method against the goals of a test year (docs/risk.md): a row per measure, its value and
    whether it is met. `summary`, `tests`: `summary()`'s and `pooled()`'s tables."""
    served = summary.loc[SERVED]
    peers = [HISTORICAL, RISKMETRICS, FHS]

    def tested(peer: str, score: str) -> pd.Series:
        return tests[(tests.served_vs == peer) & (tests.score == score)].iloc[0]

    versus_fhs = tested(FHS, "fz0")
    rows = [("1-day VaR 99 % and 97.5 %: Kupiec p >= 0.05", ">= 90 % of portfolios",
             f"{served.kupiec_99:.0%}, {served.kupiec_975:.0%}", min(served.kupiec_99, served.kupiec_975) >= 0.9),
            ("Christoffersen conditional coverage p >= 0.05 (99 %, 97.5 %)", ">= 90 % of portfolios",
             f"{served.cc_99:.0%}, {served.cc_975:.0%}", min(served.cc_99, served.cc_975) >= 0.9),
            ("traffic light over 250 days", "green on >= 85 %, red on none",
             f"green {served.green:.0%}, red {int(served.red)}", served.green >= 0.85 and served.red == 0),
            ("ES 97.5 %: Z2 >= -0.70", ">= 90 % of portfolios", f"{served.z2_ok:.0%}", served.z2_ok >= 0.9),
            ("1-day 99 % exceptions, all portfolio-days", "0.8 %..1.25 %", f"{served.exceptions_99:.2%}",
             0.008 <= served.exceptions_99 <= 0.0125),
            ("mean FZ0 loss vs historical simulation, RiskMetrics and FHS", "lower than all three; vs FHS p < 0.05",
             f"{served.fz0:.4f} vs " + ", ".join(f"{summary.loc[peer, 'fz0']:.4f}" for peer in peers)
             + f" (vs FHS p {versus_fhs.p:.2g})",
             served.fz0 < min(summary.loc[peer, "fz0"] for peer in peers) and versus_fhs.mean_difference < 0
             and versus_fhs.p < 0.05)]
    for score in ("energy", "variogram"):
        versus = [tested(peer, score) for peer in (INDEPENDENT, RISKMETRICS)]
        rows.append((f"{score} score vs independent tickers and RiskMetrics", "lower, pooled test p < 0.05",
                     ", ".join(f"{row.mean_difference:+.4g} (p {row.p:.2g})" for row in versus),
                     all(row.mean_difference < 0 and row.p < 0.05 for row in versus)))
    table = pd.DataFrame(rows, columns=["measure", "goal", "served", "met"])
    table["met"] = table["met"].map({True: "yes", False: "no"})
    return table


def methods_of(cfg: DictConfig, sampler: Sampler) -> dict[str, Method]:
    """The served model (drawn by `sampler`), its marginals drawn independently, and the config's baselines."""
    return {SERVED: Served(sampler), INDEPENDENT: Served(sampler, independent=True),
            **instantiate(cfg.baselines, _convert_="all")}
