"""backtest(cfg): the `make risk` run: the marginals' run, the prices, the tail chosen on validation, the test
year scored, the tables, the plot and the MLflow run (experiment `risk`, run `risk2024`) that checks read."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from hydra.utils import instantiate
from mlflow import MlflowClient
from mlflow.entities import Metric
from omegaconf import DictConfig

from stockcast import ROOT
from stockcast.config import load_config
from stockcast.data.prices import cut_placeholders
from stockcast.errors import StockcastError
from stockcast.eval import risk
from stockcast.eval.risk_methods import Served
from stockcast.metrics import fz0_loss
from stockcast.plots import var_figure
from stockcast.progress import tracked
from stockcast.runtime.bundle import Bundle, load_bundle
from stockcast.runtime.copula import Sampler
from stockcast.tracking import prepare_store

log = logging.getLogger(__name__)
RISK_BACKTEST, JOINT_SCORES = "risk_backtest.csv", "joint_scores.csv"  # the artifacts checks read
LEAD_DAYS = 600  # calendar days loaded before the validation year: the history and the net's context behind it


@dataclass(frozen=True)
class RiskBacktest:
    run_id: str
    chosen: Sampler  # the tail shape and copula chosen on validation
    tails: pd.DataFrame  # validation: the served method's mean FZ0 and exception rates per tail shape and copula
    backtest: pd.DataFrame  # risk_backtest.csv
    joint: pd.DataFrame  # joint_scores.csv
    summary: pd.DataFrame  # a row per method
    tests: pd.DataFrame  # pooled tests of served vs its peers
    output_dir: Path


def backtest(cfg: DictConfig, output_dir: Path) -> RiskBacktest:
    """Choose the tail shape and the copula on `cfg.validation`, score every method on `cfg.test`, log it all to
    MLflow."""
    train = load_config("train", [f"experiment={cfg.marginals}"])
    tracking_uri = prepare_store(cfg.logger.tracking_uri, cfg.experiment_name, cfg.logger.artifact_location)
    client = MlflowClient(tracking_uri)
    marginals_run, bundle = _marginals(client, tracking_uri, train.logger.experiment_name, cfg.marginals)
    validation, test = ((pd.Timestamp(span.start), pd.Timestamp(span.end)) for span in (cfg.validation, cfg.test))
    portfolios = {name: dict(weights) for name, weights in cfg.portfolios.items()}
    tickers = sorted({ticker for weights in portfolios.values() for ticker in weights})
    downloader = instantiate(train.data.downloader)
    prices = {ticker: cut_placeholders(downloader.load(ticker, (validation[0] - pd.Timedelta(days=LEAD_DAYS)).date(),
                                                       (test[1] + pd.Timedelta(days=30)).date()), ticker)[0]
              for ticker in tickers}
    log.info("net forecasts of %d tickers", len(tickers))
    forecasts = {ticker: risk.net_forecasts(bundle, frame, validation[0], test[1]) for ticker, frame in prices.items()}
    closes = {name: pd.concat({ticker: prices[ticker]["Close"] for ticker in weights}, axis=1).dropna()
              for name, weights in portfolios.items()}
    levels = pd.Series(bundle.meta.levels).to_numpy(dtype=float)

    tails = []
    shapes = list(itertools.product(cfg.tail_shapes, cfg.copulas, cfg.targets))
    for shape, df, target in tracked(shapes, f"validation walk, {len(portfolios)} portfolios per shape"):
        served = {risk.SERVED: Served(Sampler(int(cfg.validation_scenarios), float(shape), df, target))}
        daily = pd.concat([risk.walk(name, weights, closes[name], forecasts, levels, served, validation, cfg.history,
                                     cfg.ensemble, joint=False).daily for name, weights in portfolios.items()])
        tails.append({"tail_shape": float(shape), "copula_df": df, "shrink_to": target, "fz0": float(fz0_loss(
            daily.pnl_1, daily["var_1_0.975"], daily["es_1_0.975"], risk.ES_LEVEL).mean()),
            "exceptions_99": float((daily.pnl_1 < -daily["var_1_0.99"]).mean()),
            "exceptions_975": float((daily.pnl_1 < -daily["var_1_0.975"]).mean())})
        log.debug("validation: %s", tails[-1])
    tail_table = pd.DataFrame(tails)
    best = tail_table.loc[tail_table.fz0.idxmin()]
    chosen = Sampler(int(cfg.scenarios), float(best.tail_shape),
                     None if pd.isna(best.copula_df) else int(best.copula_df), str(best.shrink_to))

    methods = risk.methods_of(cfg, chosen)
    rows, joint_rows, dailies, joints = [], [], [], []
    for name, weights in tracked(portfolios.items(), "test walk, portfolios", len(portfolios)):
        walked = risk.walk(name, weights, closes[name], forecasts, levels, methods, test, cfg.history, cfg.ensemble)
        found, joint = risk.scored(name, walked)
        rows += found
        joint_rows += joint
        dailies.append(walked.daily.assign(portfolio=name))
        joints.append(walked.joint.assign(portfolio=name))
        log.debug("test, %s: %s", name, [(row["method"], row["exceptions"]) for row in found if row["level"] == 0.99
                                        and row["horizon"] == 1])
    table = pd.DataFrame(rows, columns=risk.BACKTEST_COLUMNS)
    joint_table = pd.DataFrame(joint_rows, columns=risk.JOINT_COLUMNS)
    daily, joint_daily = pd.concat(dailies, ignore_index=True), pd.concat(joints, ignore_index=True)
    methods_summary = risk.summary(table, joint_table)
    tests = risk.pooled(daily, joint_daily, [risk.INDEPENDENT, risk.RISKMETRICS, risk.HISTORICAL])

    output_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(output_dir / RISK_BACKTEST, index=False)
    joint_table.to_csv(output_dir / JOINT_SCORES, index=False)
    daily.to_csv(output_dir / "risk_daily.csv", index=False)
    tail_table.to_csv(output_dir / "validation_tails.csv", index=False)
    methods_summary.to_csv(output_dir / "risk_summary.csv")
    tests.to_csv(output_dir / "risk_tests.csv", index=False)
    plotted = daily[(daily.portfolio == cfg.plot_portfolio) & (daily.method == risk.SERVED)]
    figure = var_figure(cfg.plot_portfolio, plotted)
    figure.savefig(output_dir / "risk_var.png", dpi=110)

    experiment = client.get_experiment_by_name(cfg.experiment_name)
    assert experiment is not None  # prepare_store made it
    run = client.create_run(experiment.experiment_id, run_name=cfg.run_name)
    params = {"marginals_run_id": marginals_run, "tail_shape": chosen.tail_shape, "copula_df": chosen.copula_df,
              "shrink_to": chosen.shrink_to,
              "scenarios": cfg.scenarios,
              "history": cfg.history, "portfolios": len(portfolios), "test_start": cfg.test.start,
              "test_end": cfg.test.end, "validation_start": cfg.validation.start}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.log_batch(run.info.run_id, metrics=[
        Metric(f"{method}_{key}", float(value), int(time.time() * 1000), 0)
        for method, row in methods_summary.iterrows() for key, value in row.items()])
    client.log_artifacts(run.info.run_id, str(output_dir))
    client.set_terminated(run.info.run_id)
    return RiskBacktest(run.info.run_id, chosen, tail_table, table, joint_table, methods_summary, tests, output_dir)


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
