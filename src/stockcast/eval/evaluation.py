"""evaluate(cfg): backtest a trained run against baselines; write and log the table and plots."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from mlflow import MlflowClient
from mlflow.entities import Metric, Run
from omegaconf import DictConfig, OmegaConf, open_dict

from stockcast.data.prices import cut_placeholders
from stockcast.errors import StockcastError
from stockcast.eval.backtest import Backtest, walk_forward
from stockcast.eval.baselines import MeanOf, Method, NetMethod, PanelHar, Refit
from stockcast.eval.scoring import MODEL, RANGE_PEER, range_table, step_metrics, step_table, summary_table
from stockcast.metrics import crps
from stockcast.plots import error_by_step_figure, forecasts_figure, ranges_figure
from stockcast.runtime.bundle import Bundle, BundleMeta, load_bundle
from stockcast.runtime.metric_keys import PANEL_HAR
from stockcast.symbols import normalize_symbol
from stockcast.tracking import find_runs, prepare_store

log = logging.getLogger(__name__)
CRPS_BY_ORIGIN = "crps_by_origin.csv"  # each quantile method's CRPS per origin (mean over steps), % of the close


@dataclass(frozen=True)
class Evaluation:
    run_id: str  # the evaluation's own MLflow run
    evaluated_run_id: str
    symbol: str
    summary: pd.DataFrame
    steps: pd.DataFrame
    ranges: pd.DataFrame  # quantile methods: CRPS, coverage, width, calibration tests
    output_dir: Path


def evaluate(cfg: DictConfig) -> list[Evaluation]:
    """Walk-forward over the trained run's test period, every method on the same origins.

    A pooled run is evaluated on each of its tickers (one evaluation each); a global run (`run_id` of a run
    whose bundle answers any ticker, e.g. experiment=universe2024) on the tickers of `stock`, trained on or not.
    `ensemble: k` averages the forecasts of the newest k runs of `stock` (e.g. a sweep over seeds) as the LSTM.
    """
    tracking_uri = prepare_store(cfg.logger.tracking_uri, cfg.experiment_name, cfg.logger.artifact_location)
    client = MlflowClient(tracking_uri)
    stocks = [cfg.stock] if isinstance(cfg.stock, str) else list(cfg.stock)
    runs = find_runs(client, cfg.logger.experiment_name, "+".join(map(normalize_symbol, stocks)), cfg.run_id,
                     count=1 if cfg.run_id else cfg.ensemble)
    members = [_load_run(run, tracking_uri) for run in runs]
    meta = members[0].meta
    for other in (member.meta for member in members[1:]):
        if any(getattr(other, key) != getattr(meta, key) for key in ("stocks", "window", "horizon", "features")) \
                or other.data["test_start"] != meta.data["test_start"]:
            raise StockcastError("an ensemble needs runs with the same tickers, window, horizon, features and "
                                 "test period")
    levels = meta.levels
    if levels is not None and (len(levels) != len(cfg.quantiles) or not np.allclose(levels, cfg.quantiles)):
        raise StockcastError(f"the run forecasts quantiles {list(levels)}: evaluate with the same levels "
                             f"(quantiles=[...]), not {list(cfg.quantiles)}")
    context = meta.context
    with open_dict(cfg):
        cfg.context = context  # the range baselines estimate volatility over the closes the net read
    features = list(meta.features)
    model = NetMethod(members[0].net, context, features) if len(members) == 1 else \
        MeanOf([NetMethod(member.net, context, features) for member in members])
    label = (f"global ({len(meta.stocks)} tickers and any other)" if meta.any_ticker else
             f"pooled ({len(meta.stocks)} tickers)" if meta.pooled else "per ticker")
    if len(members) > 1:
        label += f", mean of {len(members)} runs"
    trained_ids = ",".join(run.info.run_id for run in runs)
    symbols = [normalize_symbol(stock) for stock in stocks] if meta.any_ticker and cfg.run_id else meta.stocks
    return [_evaluate_one(cfg, client, trained_ids, model, label, meta, symbol,
                          Path(cfg.paths.output_dir) / symbol if meta.pooled else Path(cfg.paths.output_dir))
            for symbol in symbols]


def _load_run(run: Run, tracking_uri: str) -> Bundle:
    with tempfile.TemporaryDirectory() as folder:
        return load_bundle(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                               artifact_path=run.data.tags["bundle"],
                                                               dst_path=folder, tracking_uri=tracking_uri))


def _evaluate_one(cfg: DictConfig, client: MlflowClient, trained_run_id: str, model: Method, label: str,
                  meta: BundleMeta, symbol: str, output_dir: Path) -> Evaluation:
    data = meta.data
    first, final = (None if value is None else pd.Timestamp(value) for value in (cfg.backtest.start, cfg.backtest.end))
    span = (first, final)
    # A span may reach past the training data (a served model's days): its closes come from today's prices.
    last = data["last_date"] if span == (None, None) else None
    prices, _ = cut_placeholders(instantiate(cfg.downloader).load(symbol, data["first_date"], last), symbol)
    methods = {MODEL: model, **instantiate(cfg.baselines, _convert_="all")}
    if meta.panel_slopes is not None:  # a pooled run's slopes, applied with each origin's own level
        methods[PANEL_HAR.method] = Refit(PanelHar(list(cfg.quantiles), [list(row) for row in meta.panel_slopes]),
                                   cfg.context)
    backtest = walk_forward(methods, prices, list(meta.features), pd.Timestamp(data["test_start"]),
                            meta.horizon, min_history=max(cfg.context, cfg.min_history),
                            levels=list(cfg.quantiles), span=span)
    per_step = step_metrics(backtest)
    summary, steps, ranges = summary_table(backtest, per_step), step_table(backtest, MODEL), range_table(backtest)
    write_outputs(output_dir, symbol, trained_run_id, backtest, per_step, summary, steps, ranges)
    tags = {"symbol": symbol, "evaluated_run_id": trained_run_id, "model": label,
            "test_period": f"{backtest.target_dates[0][0]:%Y-%m-%d}..{backtest.target_dates[-1][-1]:%Y-%m-%d}"}
    run_id = log_evaluation(client, cfg, tags, per_step, pd.concat([summary, ranges], axis=1), output_dir)
    log.info("%s: LSTM skill_mape %+.4f (DM p %.3g)", symbol, summary.loc[MODEL, "skill_mape"],
             summary.loc[MODEL, "dm_pvalue"])
    if MODEL in ranges.index:
        ours, peer = ranges.loc[MODEL], ranges.loc[RANGE_PEER]
        log.info("%s: LSTM skill_crps %+.4f (EWMA's %+.4f), 80 %% coverage %.3f", symbol, ours["skill_crps"],
                 peer["skill_crps"], ours["coverage_80"])
    return Evaluation(run_id, trained_run_id, symbol, summary, steps, ranges, output_dir)


def markdown(symbol: str, run_id: str, backtest: Backtest, summary: pd.DataFrame, steps: pd.DataFrame,
             ranges: pd.DataFrame) -> str:
    period = f"{backtest.origin_dates[0]:%Y-%m-%d} .. {backtest.target_dates[-1][-1]:%Y-%m-%d}"
    return (f"# {symbol}: walk-forward backtest of run {run_id}\n\n"
            f"{len(backtest.origin_dates)} origins, test period {period}. MAPE/sMAPE in %, direction = % of "
            "origins with the right sign of move, skill = 1 - MAPE / naive MAPE, DM = Diebold-Mariano vs "
            "naive on APE, move_spread = std of the predicted last-step move (%) across origins.\n\n"
            f"{summary.to_markdown(floatfmt='.4g')}\n\n## LSTM vs naive by horizon step\n\n"
            f"{steps.to_markdown(floatfmt='.4g')}\n\n## Ranges\n\n"
            "CRPS and widths in % of the origin's close, skill_crps = 1 - CRPS / naive-empirical CRPS, coverage = "
            "share of actual closes inside the central interval, winkler_80 = the 80 % interval score, Kupiec and "
            "Christoffersen on the 80 % interval's one-step hits, DM on per-origin CRPS.\n\n"
            f"{ranges.to_markdown(floatfmt='.4g')}\n")


def write_outputs(output_dir: Path, symbol: str, run_id: str, backtest: Backtest, per_step: dict[str, np.ndarray],
                  summary: pd.DataFrame, steps: pd.DataFrame, ranges: pd.DataFrame) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "evaluation.md").write_text(markdown(symbol, run_id, backtest, summary, steps, ranges))
    if MODEL in backtest.quantiles:
        ranges_figure(symbol, backtest, MODEL, RANGE_PEER).savefig(output_dir / "ranges.png", dpi=110)
    methods = list(backtest.forecasts)
    error_by_step_figure(symbol, per_step, methods).savefig(output_dir / "error_by_step.png", dpi=110)
    forecasts_figure(symbol, backtest, methods).savefig(output_dir / "forecasts.png", dpi=110)
    rows = {"origin": backtest.origin_dates, "last_close": backtest.last_close}
    for step in range(backtest.actual.shape[1]):
        rows[f"actual_h{step + 1}"] = backtest.actual[:, step]
        for name, forecast in backtest.forecasts.items():
            rows[f"{name}_h{step + 1}"] = forecast[:, step]
        for name, quantiles in backtest.quantiles.items():
            assert backtest.levels is not None  # set with any quantile forecasts (walk_forward)
            for index, level in enumerate(backtest.levels):
                rows[f"{name}_q{level:g}_h{step + 1}"] = quantiles[:, step, index]
    pd.DataFrame(rows).to_csv(output_dir / "forecasts.csv", index=False, float_format="%.6g")
    if backtest.quantiles:  # per origin, for tests pooled over ticker-years (make report)
        assert backtest.levels is not None  # set with any quantile forecasts (walk_forward)
        scores = {name: crps(quantiles, backtest.actual, backtest.last_close, backtest.levels).mean(axis=1)
                  for name, quantiles in backtest.quantiles.items()}
        pd.DataFrame({"origin": backtest.origin_dates, **scores}).to_csv(output_dir / CRPS_BY_ORIGIN, index=False,
                                                                        float_format="%.8g")


def log_evaluation(client: MlflowClient, cfg: DictConfig, tags: dict[str, str], per_step: dict[str, np.ndarray],
                   summary: pd.DataFrame, output_dir: Path) -> str:
    """One MLflow run per evaluation, tagged with the run it evaluated, for the report command."""
    experiment = client.get_experiment_by_name(cfg.experiment_name)
    assert experiment is not None  # evaluate's prepare_store created it
    run = client.create_run(experiment.experiment_id, run_name=f"eval-{tags['symbol']}", tags=tags)
    run_id = run.info.run_id
    metrics = {f"{method}_{name}": float(value) for method, row in summary.iterrows()
               for name, value in row.items() if pd.notna(value)}
    metrics |= {f"{key}_h{step}": float(value) for key, values in per_step.items()
                for step, value in enumerate(values, start=1) if pd.notna(value)}
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in metrics.items()])
    client.log_text(run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    client.log_artifacts(run_id, str(output_dir))
    client.set_terminated(run_id, "FINISHED")
    return run_id
