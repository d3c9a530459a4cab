"""run(cfg): data -> fit -> test vs naive -> log to MLflow -> serving bundle. The one orchestration."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import lightning as L
import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf

from stockcast.data.datamodule import PriceDataModule, Split
from stockcast.errors import StockcastError
from stockcast.eval import risk_tail
from stockcast.eval.baselines import PanelHar, window_baselines
from stockcast.eval.evaluation import CRPS_BY_ORIGIN
from stockcast.eval.per_ticker import COVERAGE, NET, PER_TICKER, PER_TICKER_VAL, SELF, score_tickers, summary
from stockcast.metrics import Quantiles, averages, compare_distributions, compare_with_naive, crps
from stockcast.models.module import Forecaster
from stockcast.models.net import ForecastNet
from stockcast.plots import forecast_figure
from stockcast.progress import tracked
from stockcast.runtime.bundle import BundleMeta, write_bundle
from stockcast.tracking import prepare_store

log = logging.getLogger(__name__)

BUNDLE_PATH = "bundle"
SCORING_BATCH = 65536  # windows per forward pass when scoring: a universe's test year at once would not fit
T = TypeVar("T")


class OpenRunLogger(MLFlowLogger):
    """Lightning's MLflow logger (`logger` config), except that the end of training leaves the run RUNNING.

    Lightning marks the run FINISHED when `trainer.fit` returns, minutes before `run` logs its bundle and tables;
    `run` marks it FINISHED itself once they are logged, so a reader of finished runs never finds one without
    them, and a run killed in between is not FINISHED. The best checkpoint is still logged here (`log_model`)."""

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._initialized and self._checkpoint_callback:
            self._scan_and_log_checkpoints(self._checkpoint_callback)


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced: where to find it and how it scored."""

    run_id: str
    tracking_uri: str
    symbol: str
    metrics: dict[str, float]
    meta: BundleMeta | None  # its bundle's metadata; None on DDP's other ranks, which log nothing


def run(cfg: DictConfig) -> RunResult:
    """Train and test one model as configured; log everything to one MLflow run.

    A failure at any step (bad input, diverged loss) marks the run FAILED and re-raises; the bundle
    is logged last, so a failed run never has one.
    """
    if logging.getLogger().handlers:  # `import lightning` adds a console handler of its own: under
        logging.getLogger("lightning").handlers.clear()  # Hydra's root handlers lines would print twice
    L.seed_everything(cfg.seed, workers=True)
    tracking_uri = prepare_store(cfg.logger.tracking_uri, cfg.logger.experiment_name, cfg.logger.artifact_location)
    logger: OpenRunLogger = instantiate(cfg.logger)  # the run stays open until the bundle is logged
    client, run_id = logger.experiment, logger.run_id
    try:
        logger.log_hyperparams(_container(cfg))  # nested keys become `model/net/hidden`
        client.log_text(run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        datamodule: PriceDataModule = instantiate(cfg.data)
        datamodule.setup()
        if len(datamodule.symbols) > 1 and cfg.model.net.target == "level":
            raise StockcastError("a pooled model (stock as a list) needs model.net.target=volatility or relative: "
                                 "price levels of different tickers share no scale")
        client.set_tag(run_id, "symbol", datamodule.symbol)
        client.set_tag(run_id, "stocks", ",".join(datamodule.symbols))
        if not cfg.logger.get("run_name"):
            client.set_tag(run_id, "mlflow.runName", datamodule.symbol)
        for number, warning in enumerate(datamodule.warnings, start=1):
            client.set_tag(run_id, f"data_warning_{number}", warning)
        model: Forecaster = instantiate(cfg.model, _convert_="all")
        model.net.set_scaler(**asdict(datamodule.scaler))
        slopes = _panel_slopes(datamodule, cfg.model.quantiles)
        model.net.set_panel_har(slopes)
        model.net.calibrate(datamodule.train.inputs, datamodule.train.targets)
        start = _Start.of(model, datamodule)
        callbacks = [instantiate(callback) for callback in cfg.callbacks.values() if callback]  # null: left out
        trainer: L.Trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks)
        started = time.perf_counter()
        trainer.fit(model, datamodule=datamodule)
        fit_seconds = time.perf_counter() - started
        pooled = slopes if len(datamodule.symbols) > 1 else None  # panel HAR over one ticker is its HAR
        metrics, forecasts, panel = _agreed(
            trainer, lambda: _after_fit(model, trainer, datamodule, cfg.model.quantiles, pooled, start))
        if not trainer.is_global_zero:  # DDP: rank 0 alone logs the run; the others' work ends with the fit
            return RunResult("", tracking_uri, datamodule.symbol, metrics, None)
        assert run_id is not None  # rank 0's logger started the run (other ranks' have none)
        if len(datamodule.symbols) > 1:
            metrics |= _log_per_ticker(client, run_id, datamodule, forecasts)
        windows = trainer.global_step * datamodule.batch_size  # about: an epoch's last batch may be short
        cost = {"fit_seconds": fit_seconds, "fit_windows_per_second": windows / fit_seconds,
                "fit_steps": float(trainer.global_step), "train_windows": float(len(datamodule.train))}
        logger.log_metrics(metrics | cost)  # the cost is logged, not kept: the same run twice has the same metrics
        symbol = datamodule.symbols[0]  # the plot shows the first ticker
        split, forecast = datamodule.by_symbol[symbol]["test"], forecasts["test"][NET]
        first = Quantiles(forecast.values[:len(split)], forecast.levels)  # the first ticker's rows come first
        figure = forecast_figure(symbol, split.target_dates, split.targets.numpy(), first, metrics)
        client.log_figure(run_id, figure, "forecast_test.png")
        metadata = _metadata(cfg, datamodule, model.net, metrics, run_id) | panel | _risk_tail(model.net, datamodule)
        with tempfile.TemporaryDirectory() as folder:
            client.log_artifacts(run_id, str(write_bundle(folder, model.net, metadata)), BUNDLE_PATH)
        client.set_tag(run_id, "bundle", BUNDLE_PATH)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    log.info("run %s: test_crps %.3f %% vs naive %.3f %% (skill_crps %+.4f, EWMA's %+.4f), 80 %% coverage %.3f",
             run_id, metrics["test_crps"], metrics["naive_crps"], metrics["skill_crps"], metrics["ewma_skill_crps"],
             metrics["test_coverage_80"])
    return RunResult(run_id, tracking_uri, datamodule.symbol, metrics, BundleMeta.from_dict(metadata))


class RankFailed(RuntimeError):
    """Another DDP rank failed after training: the run is not logged, and this rank fails too."""


@dataclass(frozen=True)
class _Start:
    """The untrained net, calibrated: its weights and buffers, and its loss on the validation windows the
    checkpoint is chosen on (Lightning validates only after training steps, so the start would never be a
    candidate)."""

    state: dict[str, torch.Tensor]
    val_loss: float

    @classmethod
    def of(cls, model: Forecaster, datamodule: PriceDataModule) -> _Start:
        split, total = datamodule.val_seen, 0.0
        model.eval()  # as Lightning validates: no dropout
        with torch.no_grad():
            for first in range(0, len(split), SCORING_BATCH):
                rows = split.rows(first, min(first + SCORING_BATCH, len(split)))
                total += float(model.loss_of(rows.inputs, rows.targets)) * len(rows)
        model.train()
        state = {key: value.clone() for key, value in model.state_dict().items()}
        return cls(state, total / len(split) if len(split) else float("inf"))  # no windows: never kept


def _after_fit(model: Forecaster, trainer: L.Trainer, datamodule: PriceDataModule, levels: list[float],
               slopes: list[list[float]] | None,
               start: _Start) -> tuple[dict[str, float], dict[str, dict[str, Quantiles]], dict]:
    kept_start = _restore_best(model, trainer, start)
    metrics, forecasts, panel = _test(model, datamodule, levels, slopes)
    return metrics | {"start_val_loss": start.val_loss, "kept_start": float(kept_start)}, forecasts, panel


def _agreed(trainer: L.Trainer, work: Callable[[], T]) -> T:
    """`work()` on every rank, then the ranks agree on the outcome: where any rank failed, every rank raises (its
    own error, or `RankFailed` naming the ranks), so rank 0 marks the run FAILED and exits non-zero. Under
    srun or submitit each task is its own process, and Hydra's SLURM launcher reads task 0's result alone, so a
    failing rank 1 must fail rank 0 too, or the run would be FINISHED and the job exit 0. With one process, just
    `work()`."""
    error: BaseException | None = None
    try:
        result = work()
    except Exception as err:
        error = err
    if trainer.world_size > 1:
        if error is not None:  # here, in this rank's own log: under SLURM's launcher only task 0's result is read
            log.error("DDP rank %d failed after training", trainer.global_rank, exc_info=error)
        flags = torch.zeros(trainer.world_size, device=trainer.strategy.root_device)
        flags[trainer.global_rank] = error is not None
        ranks = [rank for rank, flag in enumerate(trainer.strategy.reduce(flags, reduce_op="sum").tolist()) if flag]
        if ranks and error is None:
            raise RankFailed(f"DDP rank(s) {ranks} of {trainer.world_size} failed after training (their logs say "
                             f"why; every rank reloads the best checkpoint, from a disk all must see: "
                             f"docs/training.md)")
    if error is not None:
        raise error
    return result


def _restore_best(model: Forecaster, trainer: L.Trainer, start: _Start) -> bool:
    """Load the best validation's weights (and scaler buffers) back into `model`, or the start's where no
    validation beat its loss; returns whether the start was kept.

    Not `trainer.test(ckpt_path="best")`: `_test` scores the exported net itself, so what is served is what was tested.
    """
    checkpoint = trainer.checkpoint_callback
    val_loss = trainer.callback_metrics.get("val_loss")
    if val_loss is None or not torch.isfinite(val_loss):
        raise StockcastError(f"training diverged: validation loss is {val_loss}")
    if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
        if checkpoint.best_model_score is not None and float(checkpoint.best_model_score) >= start.val_loss:
            model.load_state_dict(start.state)
            return True
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["state_dict"])
    return False


def _test(model: Forecaster, datamodule: PriceDataModule, levels: list[float],
          slopes: list[list[float]] | None) -> tuple[dict[str, float], dict[str, dict[str, Quantiles]], dict]:
    """Forecast the validation and test windows with the exported net itself and score them in price
    units: the point forecast (the median) against the last close, the distribution against the
    naive-empirical, EWMA, range EWMA, HAR (and, over several tickers, panel HAR) baselines fit on each ticker's
    training windows (a point net counts as a one-value distribution). The validation period's averages are for
    choosing configurations. Returns the metrics, each period's forecasts by prefix (the net's under NET) and what the
    bundle's metadata keeps of the baselines (panel HAR's slopes, which the backtest applies again)."""
    net = model.net.eval()
    metrics: dict[str, float] = {}
    forecasts: dict[str, dict[str, Quantiles]] = {}
    baselines = _baselines(datamodule, levels, slopes)
    for period in ("val", "test"):
        split = getattr(datamodule, period)
        own, start = _parts(net, split.inputs, levels)
        actual, last_close = split.targets.double().numpy(), split.inputs[:, -1, 0].double().numpy()
        if period == "val" and own.levels.size > 1:  # the served weight, chosen on the validation year
            net.weight.fill_(_combination_weight(own, start, baselines["val"]["naive"], actual, last_close,
                                                 datamodule.by_symbol))
            metrics["combination_weight"] = float(net.weight)
        weight = float(net.weight)
        forecast = Quantiles(weight * own.values + (1 - weight) * start.values, own.levels)
        forecasts[period] = {NET: forecast, SELF: own} | baselines[period]
        if period == "val":
            scores = compare_with_naive(forecast.median, actual, last_close, "val", "val_naive", "val_skill_mape")
            named = {"val": forecast, f"val_{SELF}": own} | {f"val_{name}": found
                                                             for name, found in baselines["val"].items()}
            scores |= compare_distributions(named, actual, last_close, reference="val_naive")
            metrics |= averages(scores)
        else:
            metrics |= compare_with_naive(forecast.median, actual, last_close)
            metrics |= compare_distributions(forecasts[period], actual, last_close)
    broken = sorted(key for key, value in metrics.items() if not np.isfinite(value))
    if broken:
        raise StockcastError(f"training diverged: the net's forecasts score {', '.join(broken[:5])} not finite")
    return metrics, forecasts, {} if slopes is None else {"panel_har": {"slopes": slopes}}


def _parts(net: ForecastNet, inputs: torch.Tensor, levels: list[float]) -> tuple[Quantiles, Quantiles]:
    """The net's own forecasts of `inputs` and its start's (the same for a point net)."""
    own, start = [], []
    with torch.no_grad():
        for part in inputs.split(SCORING_BATCH):
            forecast, begun = net.parts(part)
            own.append(forecast.double())
            start.append(begun.double())
    found = [torch.cat(chunks).numpy() for chunks in (own, start)]
    if found[0].ndim == 2:
        return Quantiles.point(found[0]), Quantiles.point(found[1])
    return Quantiles(found[0], np.asarray(levels)), Quantiles(found[1], np.asarray(levels))


WEIGHTS = np.linspace(0, 1, 21)  # the combination weights tried on the validation year


def _combination_weight(own: Quantiles, start: Quantiles, naive: Quantiles, actual: np.ndarray,
                        last_close: np.ndarray, by_symbol: dict[str, dict[str, Split]]) -> float:
    """The weight w of the served w x net + (1 - w) x start (quantile averaging) with the highest mean CRPS skill
    over the validation year's tickers (each against naive-empirical over its own windows): the mean the universe's
    tables report."""
    bounds = np.cumsum([0, *(len(periods["val"]) for periods in by_symbol.values())])
    reference = _ticker_means(crps(naive.values, actual, last_close, naive.levels), bounds)

    def skill(weight: float) -> float:
        mixed = weight * own.values + (1 - weight) * start.values
        return float(np.nanmean(1 - _ticker_means(crps(mixed, actual, last_close, own.levels), bounds) / reference))

    return float(max(WEIGHTS, key=skill))


def _ticker_means(scores: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """[N, H] per-window scores in ticker order -> [tickers] each ticker's mean (NaN for one without windows)."""
    sums = np.add.reduceat(np.append(scores.mean(axis=1), 0.0), bounds[:-1])
    counts = np.diff(bounds)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


TAIL_STRIDE = 4  # every 4th training window: the tails' fit needs errors, not every overlapping window


def _risk_tail(net: ForecastNet, datamodule: PriceDataModule) -> dict[str, Any]:
    """The marginals' tails fitted to the net's errors on its training (every TAIL_STRIDE-th window) and
    validation days (`eval.risk_tail`), as metadata.json's `risk_tail`; nothing for a point net or too few."""
    if net.levels is None:
        return {}
    outputs, outcomes, last = [], [], []
    with torch.no_grad():
        for split, stride in ((datamodule.train, TAIL_STRIDE), (datamodule.val, 1)):
            inputs = split.inputs[::stride]
            outputs += [net(part).double().numpy() for part in inputs.split(SCORING_BATCH)]
            outcomes.append(split.targets[::stride].double().numpy())
            last.append(inputs[:, -1, 0].double().numpy())
    tails = risk_tail.fitted(np.concatenate(outputs), np.concatenate(outcomes), np.concatenate(last),
                             net.levels.double().numpy())
    return {} if tails is None else {"risk_tail": tails}


def _panel_slopes(datamodule: PriceDataModule, levels: list[float]) -> list[list[float]]:
    """Panel HAR's slopes, pooled over the seen tickers' training windows (over one ticker: its HAR's)."""
    panel = (periods["train"].bars.double().numpy() for symbol, periods in datamodule.by_symbol.items()
             if symbol not in datamodule.unseen)
    return PanelHar.pooled(levels, panel, datamodule.horizon).slopes.tolist()


def _baselines(datamodule: PriceDataModule, levels: list[float],
               slopes: list[list[float]] | None) -> dict[str, dict[str, Quantiles]]:
    """Per period ("val", "test"): the forecasts of its windows by each baseline (`window_baselines`), each fit
    once per ticker on that ticker's training windows (in the order the splits concatenate tickers, each
    written into its rows: a universe's forecasts are gigabytes, held once). A baseline that fails or forecasts
    a non-finite value is an error naming it and the ticker."""
    names = list(window_baselines(levels, slopes))
    found = {period: {name: np.empty((len(getattr(datamodule, period)), datamodule.horizon, len(levels)))
                      for name in names} for period in ("val", "test")}
    first = dict.fromkeys(found, 0)
    for symbol, periods in tracked(datamodule.by_symbol.items(), "baselines, tickers", len(datamodule.by_symbol)):
        train = periods["train"]
        rows = {period: slice(start, start + len(periods[period])) for period, start in first.items()}
        for name, baseline in window_baselines(levels, slopes).items():
            try:
                with np.errstate(all="raise"):
                    fitted = baseline.fit(train.bars.double().numpy(), train.targets.double().numpy())
                    for period, forecasts in found.items():
                        forecasts[name][rows[period]] = fitted.predict(periods[period].bars.double().numpy())
            except (ArithmeticError, np.linalg.LinAlgError) as err:
                raise StockcastError(f"baseline {name} failed on {symbol}: {err}") from err
            for period, forecasts in found.items():
                if not np.isfinite(forecasts[name][rows[period]]).all():
                    raise StockcastError(f"baseline {name} forecast non-finite values on {symbol}'s {period} windows")
        first = {period: part.stop for period, part in rows.items()}
    return {period: {name: Quantiles(values, np.asarray(levels)) for name, values in forecasts.items()}
            for period, forecasts in found.items()}


def _log_per_ticker(client: MlflowClient, run_id: str, datamodule: PriceDataModule,
                    forecasts: dict[str, dict[str, Quantiles]]) -> dict[str, float]:
    """per_ticker.csv and crps_by_origin.csv (the test year) and per_ticker_val.csv (the validation year, where
    choices are made: the same columns, `val_coverage_80` for the coverage) as artifacts; returns the test year's
    summary metrics (`per_ticker.summary`)."""
    tables = {}
    for period in ("val", "test"):
        split = getattr(datamodule, period)
        origins = [_origin_dates(datamodule.prices[symbol], periods[period])
                   for symbol, periods in datamodule.by_symbol.items()]
        tables[period] = score_tickers(forecasts[period], split.targets.double().numpy(),
                                       split.inputs[:, -1, 0].double().numpy(), list(datamodule.by_symbol), origins,
                                       datamodule.unseen)
    (table, by_origin), (validated, _) = tables["test"], tables["val"]
    with tempfile.TemporaryDirectory() as folder:
        table.to_csv(Path(folder) / PER_TICKER, index=False, float_format="%.6g")
        validated.rename(columns={COVERAGE: f"val_{COVERAGE.removeprefix('test_')}"}).to_csv(
            Path(folder) / PER_TICKER_VAL, index=False, float_format="%.6g")
        by_origin.to_csv(Path(folder) / CRPS_BY_ORIGIN, index=False, float_format="%.8g")
        client.log_artifacts(run_id, folder)
    return summary(table, by_origin, datamodule.horizon)


def _origin_dates(prices: pd.DataFrame, split: Split) -> pd.DatetimeIndex:
    """Each window's origin: the trading day before its first target."""
    return prices.index[prices.index.get_indexer(split.target_dates[:, 0]) - 1]


def _metadata(cfg: DictConfig, datamodule: PriceDataModule, net: ForecastNet, metrics: dict[str, float],
              run_id: str) -> dict:
    """The bundle's description; `net` holds the constructor arguments `load_bundle` rebuilds the net from."""
    first_dates = [frame.index[0] for frame in datamodule.prices.values()]
    last_dates = [frame.index[-1] for frame in datamodule.prices.values()]
    arguments = {key: value for key, value in _container(cfg.model.net).items() if key != "_target_"}
    return {
        "symbol": datamodule.symbol,
        "stocks": datamodule.symbols,
        "unseen": datamodule.unseen,  # scored, never trained on
        "any_ticker": bool(cfg.serve_any_ticker),  # served, it answers tickers it does not list too
        # The net's shape, from its arguments: at the top too, where every reader finds it (`BundleMeta`).
        **{key: arguments[key] for key in ("window", "context", "horizon", "features")},
        "net": arguments,
        "scaler": asdict(datamodule.scaler) | {"median_variance": float(net.median_variance)},
        "data": {
            "start": datamodule.start.isoformat(),
            "end": datamodule.end.isoformat(),
            "first_date": f"{min(first_dates):%Y-%m-%d}",
            "last_date": f"{max(last_dates):%Y-%m-%d}",
            "val_start": f"{pd.Timestamp(datamodule.val.target_dates[:, 0].min()):%Y-%m-%d}",
            "test_start": f"{pd.Timestamp(datamodule.test.target_dates[:, 0].min()):%Y-%m-%d}",
            "rows": {symbol: len(frame) for symbol, frame in datamodule.prices.items()},
            "warnings": datamodule.warnings,
        },
        "metrics": averages(metrics),
        "mlflow_run_id": run_id,
        "seed": cfg.seed,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _container(node: DictConfig) -> dict[str, Any]:
    """`OmegaConf.to_container(node, resolve=True)`: a DictConfig's container is a dict, its keys strings."""
    return cast(dict[str, Any], OmegaConf.to_container(node, resolve=True))
