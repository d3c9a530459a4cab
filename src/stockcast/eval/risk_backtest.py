"""backtest(cfg): the `make risk` runs: the settings chosen on the validation year (its own fold's marginals), then
each test year scored once with its fold's marginals, its tables, plot and MLflow run (experiment `risk`, runs
`risk2024` and `risk2025`) that checks read."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from mlflow import MlflowClient
from mlflow.entities import Metric
from omegaconf import DictConfig

from stockcast import ROOT
from stockcast.config import load_config, risk_settings
from stockcast.data.prices import cut_placeholders
from stockcast.errors import StockcastError
from stockcast.eval import risk
from stockcast.eval.risk_methods import Served
from stockcast.metrics import fz0_loss
from stockcast.plots import var_figure
from stockcast.progress import tracked
from stockcast.runtime.bundle import Bundle, load_bundle
from stockcast.runtime.copula import Sampler
from stockcast.runtime.fields import RISK_DAYS
from stockcast.tracking import prepare_store

log = logging.getLogger(__name__)
RISK_BACKTEST, JOINT_SCORES = "risk_backtest.csv", "joint_scores.csv"  # the artifacts checks read
LEAD_DAYS = 600  # calendar days loaded before the validation year: the history and the net's context behind it


@dataclass(frozen=True)
class Marginals:
    """A fold's served net and what it forecast: its run, its bundle and each ticker's quantile forecasts."""

    run_id: str
    bundle: Bundle
    forecasts: dict[str, pd.Series]  # ticker -> by date, [H, Q] quantile prices
    closes: dict[str, pd.DataFrame]  # portfolio -> its tickers' closes on their common days


@dataclass(frozen=True)
class RiskBacktest:
    run_id: str
    run_name: str
    chosen: dict[str, Any]  # the settings chosen on validation (copula.Sampler.configured's mapping)
    tails: pd.DataFrame  # validation: the served method's mean FZ0 and exception rates per setting tried
    backtest: pd.DataFrame  # risk_backtest.csv
    joint: pd.DataFrame  # joint_scores.csv
    summary: pd.DataFrame  # a row per method
    tests: pd.DataFrame  # pooled tests of served vs its peers
    goals: pd.DataFrame  # the goals, met or missed
    output_dir: Path


def backtest(cfg: DictConfig, output_dir: Path) -> list[RiskBacktest]:
    """Choose the served settings on `cfg.validation`, then score every method on each of `cfg.tests`, each its
    own MLflow run."""
    tracking_uri = prepare_store(cfg.logger.tracking_uri, cfg.experiment_name, cfg.logger.artifact_location)
    client = MlflowClient(tracking_uri)
    validation = _span(cfg.validation)
    portfolios = _portfolios(cfg, cfg.validation.portfolios)
    marginals = _forecasts(client, tracking_uri, cfg.validation.marginals, portfolios, validation)
    tails, chosen = choose(cfg, marginals, portfolios, validation)
    served = risk_settings()
    if {key: served.get(key) for key in chosen} != chosen:
        log.warning("model-config.yaml's handler.risk %s is not the validation's choice %s: set it", served, chosen)
    results = []
    for run_name, year in cfg.tests.items():
        folder = output_dir / run_name
        results.append(_scored(cfg, client, str(run_name), year, tails, chosen, folder))
    return results


def choose(cfg: DictConfig, marginals: Marginals, portfolios: dict[str, dict[str, float]],
           span: tuple[pd.Timestamp, pd.Timestamp]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every combination of `cfg.grid` walked over every `cfg.validation_every`-th day of `span` with
    `cfg.validation_scenarios` scenarios; the one of the lowest mean FZ0 loss of the served 1-day 97.5 % VaR and
    ES, as `cfg.scenarios`' settings."""
    levels = np.asarray(marginals.bundle.meta.levels, dtype=float)
    tried = []
    grid = list(itertools.product(*cfg.grid.values()))
    for values in tracked(grid, f"validation walk, {len(portfolios)} portfolios per setting"):
        trial = dict(zip(cfg.grid.keys(), values, strict=True))
        sampler = Sampler.configured(trial | {"scenarios": int(cfg.validation_scenarios)})
        daily = pd.concat([risk.walk(name, weights, marginals.closes[name], marginals.forecasts, levels,
                                     {risk.SERVED: Served(sampler)}, span, RISK_DAYS, cfg.ensemble, joint=False,
                                     tail=marginals.bundle.meta.risk_tail, every=cfg.validation_every).daily
                           for name, weights in portfolios.items()])
        tried.append(trial | {"fz0": float(fz0_loss(daily.pnl_1, daily["var_1_0.975"], daily["es_1_0.975"],
                                                     risk.ES_LEVEL).mean()),
                              "exceptions_99": float((daily.pnl_1 < -daily["var_1_0.99"]).mean()),
                              "exceptions_975": float((daily.pnl_1 < -daily["var_1_0.975"]).mean())})
        log.debug("validation: %s", tried[-1])
    table = pd.DataFrame(tried)
    best = tried[int(table.fz0.idxmin())]
    return table, {key: best[key] for key in cfg.grid} | {"scenarios": int(cfg.scenarios)}


def _scored(cfg: DictConfig, client: MlflowClient, run_name: str, year: DictConfig, tails: pd.DataFrame,
            chosen: dict[str, Any], output_dir: Path) -> RiskBacktest:
    """One test year scored once with the chosen settings, its tables, plot and MLflow run."""
    span = _span(year)
    portfolios = _portfolios(cfg, year.portfolios)
    marginals = _forecasts(client, client.tracking_uri, year.marginals, portfolios, span)
    levels = np.asarray(marginals.bundle.meta.levels, dtype=float)
    methods = risk.methods_of(cfg, Sampler.configured(chosen))
    rows, joint_rows, dailies, joints = [], [], [], []
    for name, weights in tracked(portfolios.items(), f"{run_name} walk, portfolios", len(portfolios)):
        walked = risk.walk(name, weights, marginals.closes[name], marginals.forecasts, levels, methods, span,
                           RISK_DAYS, cfg.ensemble, tail=marginals.bundle.meta.risk_tail)
        found, joint = risk.scored(name, walked)
        rows += found
        joint_rows += joint
        dailies.append(walked.daily.assign(portfolio=name))
        joints.append(walked.joint.assign(portfolio=name))
        log.debug("%s, %s: %s", run_name, name, [(row["method"], row["exceptions"]) for row in found
                                                if row["level"] == 0.99 and row["horizon"] == 1])
    table = pd.DataFrame(rows, columns=risk.BACKTEST_COLUMNS)
    joint_table = pd.DataFrame(joint_rows, columns=risk.JOINT_COLUMNS)
    daily, joint_daily = pd.concat(dailies, ignore_index=True), pd.concat(joints, ignore_index=True)
    methods_summary = risk.summary(table, joint_table)
    tests = risk.pooled(daily, joint_daily, [risk.INDEPENDENT, risk.RISKMETRICS, risk.HISTORICAL, risk.FHS])
    goals = risk.goals(methods_summary, tests)

    output_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(output_dir / RISK_BACKTEST, index=False)
    joint_table.to_csv(output_dir / JOINT_SCORES, index=False)
    daily.to_csv(output_dir / "risk_daily.csv", index=False)
    tails.to_csv(output_dir / "validation_tails.csv", index=False)
    methods_summary.to_csv(output_dir / "risk_summary.csv")
    tests.to_csv(output_dir / "risk_tests.csv", index=False)
    goals.to_csv(output_dir / "risk_goals.csv", index=False)
    plotted = next(name for name in (cfg.plot_portfolio, *portfolios) if name in portfolios)
    figure = var_figure(plotted, daily[(daily.portfolio == plotted) & (daily.method == risk.SERVED)])
    figure.savefig(output_dir / "risk_var.png", dpi=110)

    experiment = client.get_experiment_by_name(cfg.experiment_name)
    assert experiment is not None  # prepare_store made it
    run = client.create_run(experiment.experiment_id, run_name=run_name)
    params = {"marginals_run_id": marginals.run_id, "marginals": year.marginals, **chosen,
              "history": RISK_DAYS, "portfolios": len(portfolios), "test_start": year.start, "test_end": year.end,
              "validation_start": cfg.validation.start, "validation_end": cfg.validation.end,
              "validation_marginals": cfg.validation.marginals,
              "validation_scenarios": cfg.validation_scenarios, "validation_every": cfg.validation_every}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.log_batch(run.info.run_id, metrics=[
        Metric(f"{method}_{key}", float(value), int(time.time() * 1000), 0)
        for method, row in methods_summary.iterrows() for key, value in row.items()])
    client.log_artifacts(run.info.run_id, str(output_dir))
    client.set_terminated(run.info.run_id)
    return RiskBacktest(run.info.run_id, run_name, chosen, tails, table, joint_table, methods_summary, tests, goals,
                        output_dir)


def _span(year: DictConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(year.start), pd.Timestamp(year.end)


def _portfolios(cfg: DictConfig, key: str) -> dict[str, dict[str, float]]:
    """The config's portfolio list named `key` (portfolios, portfolios_b3)."""
    return {name: dict(weights) for name, weights in cfg[key].items()}


def _forecasts(client: MlflowClient, tracking_uri: str, fold: str, portfolios: dict[str, dict[str, float]],
               span: tuple[pd.Timestamp, pd.Timestamp]) -> Marginals:
    """The `fold` run's net, its forecasts of the portfolios' tickers over `span`, the portfolios' closes."""
    train = load_config("train", [f"experiment={fold}"])
    run_id, bundle = _marginals(client, tracking_uri, train.logger.experiment_name, fold)
    tickers = sorted({ticker for weights in portfolios.values() for ticker in weights})
    downloader = instantiate(train.data.downloader)
    prices = {ticker: cut_placeholders(downloader.load(ticker, (span[0] - pd.Timedelta(days=LEAD_DAYS)).date(),
                                                       (span[1] + pd.Timedelta(days=30)).date()), ticker)[0]
              for ticker in tickers}
    log.info("%s: net forecasts of %d tickers", fold, len(tickers))
    forecasts = {ticker: risk.net_forecasts(bundle, frame, span[0], span[1]) for ticker, frame in prices.items()}
    closes = {name: pd.concat({ticker: prices[ticker]["Close"] for ticker in weights}, axis=1).dropna()
              for name, weights in portfolios.items()}
    return Marginals(run_id, bundle, forecasts, closes)


def _marginals(client: MlflowClient, tracking_uri: str, experiment: str, run_name: str) -> tuple[str, Bundle]:
    """The newest finished `run_name` run with a serving bundle, and its bundle; trained first when there is none."""
    for attempt in range(2):
        found = client.get_experiment_by_name(experiment)
        runs = [] if found is None else client.search_runs(
            [found.experiment_id], f"attributes.run_name = '{run_name}' and attributes.status = 'FINISHED' "
                                   "and tags.bundle != ''", order_by=["attributes.start_time DESC"], max_results=1)
        if runs:
            with tempfile.TemporaryDirectory() as folder:
                path = mlflow.artifacts.download_artifacts(run_id=runs[0].info.run_id,
                                                           artifact_path=runs[0].data.tags["bundle"], dst_path=folder,
                                                           tracking_uri=tracking_uri)
                return runs[0].info.run_id, load_bundle(path)
        if attempt:
            break
        log.warning("no finished %s run in %s: training it (train.py experiment=%s)", run_name, tracking_uri,
                    run_name)
        subprocess.run([sys.executable, str(ROOT / "train.py"), f"experiment={run_name}"], cwd=ROOT, check=True)
    raise StockcastError(f"no finished {run_name} run with a bundle in {tracking_uri}")
