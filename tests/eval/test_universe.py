"""The market universe: its folds' lists, its data traps, panel HAR, unseen tickers and a small global run."""

from __future__ import annotations

import json
import zipfile

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from stockcast.config import load_config
from stockcast.data.datamodule import PriceDataModule, make_windows
from stockcast.data.download import Downloader
from stockcast.data.prices import cut_placeholders, read_price_csv
from stockcast.eval.baselines import PanelHar, window_baselines
from stockcast.eval.per_ticker import COLUMNS
from stockcast.models.net import FLOOR, daily_variance
from stockcast.runtime.bundle import load_bundle
from stockcast.universe import FOLDS, SAMPLED, SELECTION, SHARED, fold_tickers, sample, unseen
from tests.conftest import compose_config
from tests.runtime.test_handler import MEDIAN, _context, handler_module

LEVELS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]


@pytest.mark.parametrize("fold", [*FOLDS, *SELECTION])
def test_each_fold_lists_what_its_seeded_rules_give(fold):
    cfg = load_config("train", [f"experiment={fold}"])
    tickers = fold_tickers(SELECTION.get(fold, fold))  # a selection fold: its test fold's tickers
    assert list(cfg.stock) == tickers and set(SHARED) <= set(tickers)
    assert list(cfg.data.unseen) == unseen(tickers) and len(cfg.data.unseen) == round(len(tickers) / 5)
    assert not set(cfg.data.unseen) & set(SHARED)  # the six shared tickers are trained on in both folds
    assert list(cfg.per_ticker_sample) == (sample(tickers, unseen(tickers)) if fold == SAMPLED else [])
    assert not set(cfg.per_ticker_sample) & set(cfg.data.unseen)


def test_a_placeholder_stretch_is_cut_with_a_warning_naming_ticker_and_dates(universe):
    """AMCR's first years are one quote repeated with no volume (it listed on the NYSE in June 2019)."""
    frame = read_price_csv(universe / "us" / "AMCR.csv")
    kept, [warning] = cut_placeholders(frame, "AMCR")
    assert kept.index[0] == pd.Timestamp("2019-06-11") and kept.index[-1] == frame.index[-1]
    assert warning.startswith("AMCR: cut 1116 of 2500 rows (2015-01-02..2019-06-10)")
    quiet = read_price_csv(universe / "us" / "AAPL.csv")
    assert cut_placeholders(quiet, "AAPL") == (quiet, [])
    frozen = frame.iloc[-300:].copy()
    frozen.loc[frozen.index[-40:], "Close"] = frozen["Close"].iloc[-41]
    with pytest.raises(Exception, match="AMCR: its last sessions .* are placeholder quotes"):
        cut_placeholders(frozen, "AMCR")


@pytest.mark.parametrize("ticker", ["CGRA3.SA", "SAPR3.SA", "TAEE3.SA", "AMCR"])
def test_every_baseline_stays_finite_on_days_without_a_range(universe, ticker):
    """These tickers have hundreds of High = Low days; fit on the whole file uncut, the stretch included."""
    market = "us" if ticker == "AMCR" else "b3"
    frame = read_price_csv(universe / market / f"{ticker}.csv")
    bars = frame[["Close", "Open", "High", "Low"]].to_numpy()
    inputs, targets = make_windows(bars, 100, 10)
    slopes = PanelHar.pooled(LEVELS, [inputs], 10).slopes.tolist()
    for name, baseline in window_baselines(LEVELS, slopes).items():
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            forecast = baseline.fit(inputs, targets).predict(inputs)
        assert np.isfinite(forecast).all(), name


def _panel(seed: int) -> np.ndarray:
    """[N, C, 4] consecutive windows of one synthetic ticker with a volatility of its own."""
    rng = np.random.default_rng(seed)
    days, sigma = 160, 0.01 * (1 + seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, sigma * np.exp(np.sin(np.arange(days) / 9)), days)))
    opens = close * np.exp(rng.normal(0, sigma / 2, days))
    high = np.maximum(close, opens) * np.exp(np.abs(rng.normal(0, sigma, days)))
    low = np.minimum(close, opens) * np.exp(-np.abs(rng.normal(0, sigma, days)))
    return make_windows(np.stack([close, opens, high, low], axis=1), 30, 3)[0]


def test_panel_har_is_the_fixed_effects_regression_of_the_pooled_panel():
    """By hand: per step, one least-squares fit of every ticker's rows on the log 1/5/22-day variances plus one
    dummy per ticker (its own level); panel HAR's slopes are that fit's, each ticker's intercept its dummy's."""
    panel, horizon = [_panel(seed) for seed in range(3)], 3
    fitted = PanelHar.pooled(LEVELS, panel, horizon)
    for step in range(1, horizon + 1):
        rows, ahead, dummies = [], [], []
        for number, bars in enumerate(panel):
            variances = daily_variance(torch.from_numpy(bars), "garman_klass").numpy()
            floor = FLOOR * np.median(variances)
            logs = [np.log(np.maximum(variances[:, -n:].mean(axis=1), floor)) for n in (1, 5, 22)]
            rows.append(np.stack(logs, axis=1)[:-step])
            ahead.append(np.log(np.maximum(variances[step:, -step:].mean(axis=1), floor)))
            dummies.append(np.eye(len(panel))[[number] * (len(bars) - step)])
        design = np.hstack([np.vstack(rows), np.vstack(dummies)])
        coefficients = np.linalg.lstsq(design, np.concatenate(ahead), rcond=None)[0]
        np.testing.assert_allclose(fitted.slopes[:, step - 1], coefficients[:3], rtol=1e-8, atol=1e-10)
        for number, bars in enumerate(panel):
            own = PanelHar(LEVELS, fitted.slopes.tolist())
            own.fit(bars, np.ones((len(bars), horizon)) * bars[:, -1, :1])
            assert own.coefficients[0, step - 1] == pytest.approx(coefficients[3 + number], rel=1e-8)


def test_unseen_tickers_never_reach_training_or_the_validation_loss(tmp_path, shared_data):
    """MSFT's closes are ten times those of any other ticker here: a training or validation-loss window holding
    one of its closes would show. Its windows are still made and scored."""
    prices = read_price_csv(shared_data / "MSFT.csv")
    prices[["Open", "High", "Low", "Close", "Adj Close"]] *= 10
    (tmp_path / "MSFT.csv").write_text(prices.to_csv(index_label="Date"))
    downloader = Downloader(tmp_path / "cache", extra_dirs=[str(tmp_path), str(shared_data)], online=False)
    module = PriceDataModule(["VALE3", "AAPL", "MSFT"], "2018-01-01", "2025-11-07", downloader,
                             features=["Close", "Open", "High", "Low"], context=100, unseen=["MSFT"],
                             val_start="2023-01-01", test_start="2024-01-01", batch_size=256)
    module.setup()
    smallest_msft = float(prices["Low"].min())
    largest_seen = max(float(read_price_csv(shared_data / f"{t}.csv")["High"].max()) for t in ("VALE3.SA", "AAPL"))
    assert largest_seen < smallest_msft
    for loader in (module.train_dataloader(), module.val_dataloader()):
        assert all(float(inputs.max()) < smallest_msft and float(targets.max()) < smallest_msft
                   for inputs, targets in loader)
    assert float(module.train.inputs.max()) < smallest_msft and max(module.scaler.feature_max) < smallest_msft
    assert len(module.by_symbol["MSFT"]["test"]) > 0 and float(module.test.inputs.max()) > smallest_msft
    assert module.unseen == ["MSFT"]
    with pytest.raises(Exception, match="are not among stock"):
        PriceDataModule(["VALE3"], None, None, downloader, unseen=["MSFT"])


SMALL = ["AAPL", "AMCR", "KO", "VALE3.SA", "PETR4.SA", "MSFT", "TAEE3.SA", "JNJ"]


@pytest.mark.slow
def test_a_small_universe_trains_one_global_net_that_serves_a_ticker_it_never_saw(tmp_path, universe, shared_data):
    """universe2024 on eight tickers, two unseen: the per-ticker table, panel HAR's metrics and the summary are
    logged; the archived bundle answers an unseen ticker and one from outside the universe, as the net does."""
    from stockcast.eval.evaluation import evaluate
    from stockcast.eval.per_ticker import PER_TICKER, PER_TICKER_VAL
    from stockcast.eval.report import universe_figure, universe_section
    from stockcast.pipeline import BUNDLE_PATH, run
    from stockcast.serving.archive import archive

    cfg = compose_config("train", tmp_path, "experiment=universe2024", f"stock=[{','.join(SMALL)}]",
                         "data.unseen=[KO,JNJ]", "trainer.max_epochs=1", "model.net.hidden=8", "model.net.layers=1",
                         f"data.downloader.extra_dirs=[{universe / 'us'},{universe / 'b3'}]",
                         f"data.downloader.data_dir={shared_data}")
    result = run(cfg)
    client = mlflow.MlflowClient(result.tracking_uri)
    logged = client.get_run(result.run_id)
    assert logged.info.run_name == "universe2024"
    assert {"panel_har_crps", "panel_har_skill_crps", "panel_har_coverage_80", "val_panel_har_skill_crps",
            "seen_skill_crps", "unseen_skill_crps", "seen_gain_vs_best", "unseen_pooled_pvalue"} <= set(result.metrics)
    table = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=PER_TICKER,
                                                            tracking_uri=result.tracking_uri))
    assert list(table.columns) == COLUMNS and set(table.ticker) == set(SMALL)
    validated = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=PER_TICKER_VAL,
                                                                tracking_uri=result.tracking_uri))
    assert list(validated.columns) == [*COLUMNS[:-1], "val_coverage_80"] and set(validated.ticker) == set(SMALL)
    assert 0 <= result.metrics["combination_weight"] <= 1  # the served weight, chosen on validation
    assert dict(zip(table.ticker, table.seen, strict=True)) == {t: t not in ("KO", "JNJ") for t in SMALL}
    assert result.metrics["unseen_skill_crps"] == pytest.approx(table[~table.seen].skill_crps.mean(), rel=1e-5)  # %.6g
    assert any("AMCR: cut" in warning for warning in result.meta.data["warnings"])
    assert result.meta.any_ticker and result.meta.raw["unseen"] == ["KO", "JNJ"]

    section = universe_section(client)  # what make universe prints and make report writes
    assert "| universe2024 | seen      |       6 |" in section and "| universe2024 | unseen    |       2 |" in section
    assert "| MSFT     | universe2024 |" in section and "The per-ticker default" not in section  # none trained
    figure = universe_figure(client)  # what make universe logs on the fold's run and make report puts in the docs
    skill, coverage = figure.axes
    labels = [text.get_text() for text in skill.get_legend().get_texts()]
    assert labels[0].startswith("seen (6; net better on") and labels[1].startswith("unseen (2; net better on")
    assert [len(collection.get_offsets()) for collection in coverage.collections] == [6, 2]

    cfg = compose_config("evaluate", tmp_path, f"logger.tracking_uri={result.tracking_uri}", f"run_id={result.run_id}",
                         "stock=[KO,ITSA3]", "~baselines.ets", "~baselines.garch",
                         f"downloader.extra_dirs=[{universe / 'us'},{universe / 'b3'}]")
    evaluations = evaluate(cfg)  # one unseen ticker and one from outside the run
    assert [e.symbol for e in evaluations] == ["KO", "ITSA3.SA"]
    for evaluation in evaluations:
        logged = client.get_run(evaluation.run_id).data.metrics
        assert {"lstm_skill_crps", "har_skill_crps", "range_ewma_skill_crps", "panel_har_skill_crps",
                "lstm_coverage_80"} <= set(logged)
        assert np.isfinite(logged["panel_har_skill_crps"]) and evaluation.ranges.index.str.contains("panel_har").any()

    done = archive(result.tracking_uri, "universe", tmp_path / "store", run_ids=[result.run_id])
    with zipfile.ZipFile(done.path) as mar:
        mar.extractall(tmp_path / "model")
    handler = handler_module(tmp_path / "model").ForecastHandler()
    handler.initialize(_context(tmp_path / "model"))
    bundle = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=BUNDLE_PATH,
                                                 tracking_uri=result.tracking_uri, dst_path=str(tmp_path / "b"))
    net = load_bundle(bundle).net
    bodies, expected = [], []
    for ticker, path in [("KO", universe / "us" / "KO.csv"), ("ITSA3.SA", universe / "b3" / "ITSA3.SA.csv"),
                         (" brk-b ", None)]:
        frame = read_price_csv(path) if path else read_price_csv(universe / "us" / "JNJ.csv")
        rows = frame[["Close", "Open", "High", "Low"]].iloc[-100:]
        bodies.append({"stock": ticker, "prices": rows.Close.tolist(), "open": rows.Open.tolist(),
                       "high": rows.High.tolist(), "low": rows.Low.tolist(), "last_date": "2024-11-29"})
        with torch.no_grad():
            expected.append(net(torch.tensor(rows.to_numpy()[None], dtype=torch.float32))[0])
    bodies.append({**bodies[0], "stock": "../etc/passwd"})
    context = _context(tmp_path / "model", [{} for _ in bodies])
    replies = handler.handle([{"body": json.dumps(body).encode()} for body in bodies], context)
    answers = [(context.get_response_status(i)[0], json.loads(reply)) for i, reply in enumerate(replies)]
    assert [status for status, _ in answers] == [200, 200, 200, 400]
    for (_, answer), want, name in zip(answers, expected, ["KO", "ITSA3.SA", "BRK-B"], strict=False):
        assert answer["stock"] == name
        assert answer["forecast"] == pytest.approx(want[:, MEDIAN].tolist(), rel=1e-5)
    assert answers[1][1]["dates"][0] == "2024-12-02" and answers[0][1]["dates"][0] == "2024-12-02"
    assert "has no deployed model" in answers[3][1]["message"]


def _window_panel_har(levels, slopes, bars: np.ndarray, horizon: int) -> PanelHar:
    """[C, 4] one window's bars -> panel HAR with its level fit on the window alone: `PanelHar` on every 23-row run
    of the window (22 daily variances: the regressors' longest span)."""
    runs = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(bars, 23, axis=0).transpose(0, 2, 1))
    reference = PanelHar(levels, slopes)
    reference._fit_sigma(runs, np.empty((len(runs), horizon)))
    reference.last = runs[-1:]
    return reference


def test_the_untrained_net_answers_panel_hars_quantiles(universe):
    """start=panel_har, calibrated as the pipeline does, before any training: on real windows of two tickers, the
    quantiles are panel HAR's (slopes pooled over the training windows, the level fit on the window's own days)
    times the training windows' quantiles of the change standardized by it, within 1e-5 relative. A window too
    short for a level of its own gets the training windows' mean level."""
    from stockcast.models.net import ForecastNet

    horizon, context = 10, 100
    train, test = [], []
    for ticker in ("KO", "AMD"):
        bars = read_price_csv(universe / "us" / f"{ticker}.csv")[["Close", "Open", "High", "Low"]].to_numpy()
        train.append(make_windows(bars[-900:-150], context, horizon))
        test.append(make_windows(bars[-150:], context, horizon)[0][::20])
    inputs, targets = (np.concatenate(parts).astype(np.float32) for parts in zip(*train, strict=True))
    slopes = PanelHar.pooled(LEVELS, [part.astype(np.float32) for part, _ in train], horizon).slopes.tolist()
    net = ForecastNet(["Close", "Open", "High", "Low"], hidden=8, horizon=horizon, quantiles=LEVELS, window=20,
                      context=context, volatility="garman_klass", start="panel_har")
    net.set_panel_har(slopes)
    net.calibrate(torch.from_numpy(inputs), torch.from_numpy(targets))
    steps = np.sqrt(np.arange(1, horizon + 1))
    fitted = [_window_panel_har(LEVELS, slopes, window.astype(float), horizon) for window in inputs]
    sigma = np.stack([reference._sigma(reference.last, horizon)[0] for reference in fitted])  # [N, H]
    z = np.quantile(np.log(targets / inputs[:, -1, :1]) / (sigma * steps), LEVELS, axis=0).T  # [H, Q]
    windows = np.concatenate(test).astype(np.float32)
    with torch.no_grad():
        answered = net(torch.from_numpy(windows)).double().numpy()
    expected = []
    for window in windows:
        reference = _window_panel_har(LEVELS, slopes, window.astype(float), horizon)
        expected.append(window[-1, 0] * np.exp(z * (reference._sigma(reference.last, horizon)[0] * steps)[:, None]))
    np.testing.assert_allclose(answered, np.stack(expected), rtol=1e-5)

    mean_level = np.mean([reference.coefficients[0] for reference in fitted], axis=0)
    np.testing.assert_allclose(net.har_level.numpy(), mean_level, rtol=1e-4)
    short = windows[:, -32:]  # too few rows for a level of its own: 33 needed with 10 steps
    variances = daily_variance(torch.from_numpy(short.astype(float)), "garman_klass").numpy()
    floor = FLOOR * np.median(variances, axis=1, keepdims=True)
    current = np.stack([np.log(np.maximum(variances[:, -n:].mean(axis=1, keepdims=True), floor))[:, 0]
                        for n in (1, 5, 22)], axis=1)
    with torch.no_grad():
        answered = net.har_volatility(torch.from_numpy(short)).double().numpy()
    np.testing.assert_allclose(answered, np.exp(0.5 * (mean_level + current @ np.asarray(slopes))), rtol=1e-4)
