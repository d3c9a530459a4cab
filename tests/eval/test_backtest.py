"""Walk-forward backtest: no look-ahead, baselines by hand, outputs produced and logged."""

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from statsforecast.models import AutoETS, Naive, RandomWalkWithDrift, WindowAverage

from stockcast.data.prices import read_price_csv
from stockcast.eval.backtest import walk_forward
from stockcast.eval.baselines import EmpiricalNaive, Ewma, Garch, NetMethod, Refit, StatsForecastModel
from stockcast.eval.evaluation import evaluate
from stockcast.eval.report import SECTION, comparison_table, pooled_tests
from stockcast.markdown import replace_section
from stockcast.models.net import ForecastNet
from tests.conftest import compose_config, compose_train


def naive() -> StatsForecastModel:
    return StatsForecastModel(Naive)


def drift() -> StatsForecastModel:
    return StatsForecastModel(RandomWalkWithDrift)


def moving_average(window: int) -> StatsForecastModel:
    return StatsForecastModel(lambda: WindowAverage(window_size=window))


def test_baselines_by_hand():
    history = np.array([[1.0], [2.0], [4.0]])
    assert naive()(history, 2).tolist() == [4.0, 4.0]
    assert drift()(history, 2).tolist() == [5.5, 7.0]  # slope (4 - 1) / 2
    assert moving_average(2)(history, 3).tolist() == [3.0, 3.0, 3.0]


def test_statsforecast_baselines_equal_the_formulas_they_replaced():
    """Exactly the hand-written naive, drift and moving average that statsforecast's models replaced."""
    closes = 50 + np.cumsum(np.random.default_rng(0).normal(size=300))  # [T]
    history, steps = closes[:, None], np.arange(1, 11)  # [T, 1], [H]
    np.testing.assert_array_equal(naive()(history, 10), np.full(10, closes[-1]))
    slope = (closes[-1] - closes[0]) / (len(closes) - 1)  # average daily change of the whole history
    np.testing.assert_array_equal(drift()(history, 10), closes[-1] + slope * steps)
    np.testing.assert_array_equal(moving_average(20)(history, 10), np.full(10, closes[-20:].mean()))


LEVELS = [round(0.05 * k, 2) for k in range(1, 20)]


def methods() -> dict:
    """Point and quantile methods: a point and a quantile net, statsforecast's models, the range baselines."""
    torch.manual_seed(0)
    net = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=5, target="relative")
    net.set_scaler([20.0], [80.0], 0.05)
    ranges = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=5, quantiles=LEVELS, window=20, context=60)
    ranges.set_scaler([20.0], [80.0], 0.05, median_variance=4e-4)
    return {"lstm": NetMethod(ranges, 60, ["Close"]), "point_lstm": NetMethod(net, 20, ["Close"]), "naive": naive(),
            "drift": drift(), "ma": moving_average(20),
            "ets": StatsForecastModel(AutoETS, refit_every=3, history=300, levels=LEVELS),
            "naive_empirical": Refit(EmpiricalNaive(LEVELS), context=60), "ewma": Refit(Ewma(LEVELS), context=60),
            "garch": Garch(LEVELS, refit_every=10)}


def test_no_method_sees_data_after_its_origin(shared_data):
    prices = read_price_csv(shared_data / "VALE3.SA.csv").loc["2022-01-01":"2023-06-30"]
    test_start = pd.Timestamp("2023-01-02")
    honest = walk_forward(methods(), prices, ["Close"], test_start, horizon=5, min_history=60, levels=LEVELS)
    cut = 40  # change every price after the 40th origin
    changed = prices.copy()
    changed.loc[changed.index > honest.origin_dates[cut], "Close"] *= 3
    after = walk_forward(methods(), changed, ["Close"], test_start, horizon=5, min_history=60, levels=LEVELS)
    assert set(honest.quantiles) == {"lstm", "ets", "naive_empirical", "ewma", "garch"}
    for name in honest.forecasts:
        np.testing.assert_array_equal(after.forecasts[name][:cut + 1], honest.forecasts[name][:cut + 1])
        assert not np.allclose(after.forecasts[name][cut + 2:], honest.forecasts[name][cut + 2:]), name
    for name in honest.quantiles:
        np.testing.assert_array_equal(after.quantiles[name][:cut + 1], honest.quantiles[name][:cut + 1])
        assert np.all(np.diff(honest.quantiles[name], axis=-1) >= 0), name  # never crossing
    # Every origin's targets are the next 5 trading days, all inside the test period.
    assert honest.target_dates[0][0] == test_start
    np.testing.assert_array_equal(honest.actual[0], prices.loc[test_start:, "Close"].iloc[:5])


@pytest.fixture(scope="module")
def evaluated(trained_run, tmp_path_factory):
    """evaluate.py on the session's VALE3 run: (the run, the evaluate config, its one Evaluation)."""
    result, _ = trained_run
    cfg = compose_config("evaluate", tmp_path_factory.mktemp("evaluate"), f"logger.tracking_uri={result.tracking_uri}",
                         f"run_id={result.run_id}", "baselines.ets.refit_every=20")
    (evaluation,) = evaluate(cfg)
    return result, cfg, evaluation


def test_evaluate_writes_and_logs_table_and_plots(evaluated):
    result, _, evaluation = evaluated
    # The backtest's LSTM forecasts are the training run's test forecasts: same origins, same net.
    assert evaluation.summary.loc["lstm", "mape"] == pytest.approx(result.metrics["test_mape"], rel=1e-6)
    assert evaluation.summary.loc["naive", "mape"] == pytest.approx(result.metrics["naive_mape"], rel=1e-6)
    ranges = {"lstm", "ets", "naive_empirical", "ewma", "range_ewma", "har", "garch"}
    assert set(evaluation.summary.index) == {"naive", "drift", "moving_average", "actual"} | ranges
    assert 0 <= evaluation.summary.loc["lstm", "dm_pvalue"] <= 1
    # The same for the ranges: the backtest's LSTM quantiles are the training run's test quantiles.
    assert set(evaluation.ranges.index) == ranges
    lstm = evaluation.ranges.loc["lstm"]
    assert lstm["crps"] == pytest.approx(result.metrics["test_crps"], rel=1e-5)
    assert lstm["coverage_80"] == pytest.approx(result.metrics["test_coverage_80"])
    assert 0 <= lstm["kupiec_p"] <= 1 and 0 <= lstm["christoffersen_p"] <= 1 and 0 <= lstm["dm_p_vs_ewma"] <= 1
    assert lstm["coverage_50"] < lstm["coverage_80"] < lstm["coverage_90"] and lstm["width_80"] < lstm["width_90"]
    assert evaluation.ranges.loc["naive_empirical", "skill_crps"] == 0
    files = {"evaluation.md", "error_by_step.png", "forecasts.png", "forecasts.csv", "ranges.png"}
    assert files <= {p.name for p in evaluation.output_dir.iterdir()}
    assert "| lstm" in (evaluation.output_dir / "evaluation.md").read_text()
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(evaluation.run_id)
    assert run.data.tags["evaluated_run_id"] == result.run_id
    assert run.data.metrics["lstm_mape"] == pytest.approx(result.metrics["test_mape"], rel=1e-6)
    assert "ets_mape_h10" in run.data.metrics and "lstm_dm_pvalue" in run.data.metrics
    assert {"lstm_crps", "lstm_skill_crps", "ewma_skill_crps", "lstm_crps_h10", "lstm_coverage_80_h1",
            "garch_kupiec_p"} <= set(run.data.metrics)
    assert files <= {a.path for a in client.list_artifacts(evaluation.run_id)}


def test_report_gathers_evaluations_into_the_readme(evaluated, tmp_path):
    result, cfg, evaluation = evaluated
    table = comparison_table(MlflowClient(result.tracking_uri), cfg.experiment_name)
    (row,) = table[(table["ticker"] == "VALE3.SA") & (table["LSTM"] == "per ticker")].to_dict("records")
    assert row["LSTM MAPE %"] == pytest.approx(evaluation.summary.loc["lstm", "mape"])
    assert row["skill_mape"] == pytest.approx(evaluation.summary.loc["lstm", "skill_mape"])
    readme = tmp_path / "README.md"
    readme.write_text("# Results\n<!-- results:start -->\nPLACEHOLDER\n<!-- results:end -->\nafter\n")
    replace_section(readme, SECTION, table.to_markdown(index=False))
    text = readme.read_text()
    assert "PLACEHOLDER" not in text and "| VALE3.SA" in text and text.endswith("<!-- results:end -->\nafter\n")
    pooled = pooled_tests(MlflowClient(result.tracking_uri), table).set_index("vs")
    assert {"ewma", "range_ewma", "har", "garch", "ets"} <= set(pooled.index)  # the per-origin CRPS was logged
    ranges = evaluation.ranges  # one ticker-year: its gain over EWMA is the difference of the skills
    gained = ranges.loc["lstm", "skill_crps"] - ranges.loc["ewma", "skill_crps"]
    assert pooled.loc["ewma", "mean skill gained"] == pytest.approx(gained, rel=1e-5)
    assert pooled.loc["ewma", "ticker-years"] == 1 and 0 <= pooled.loc["ewma", "p"] <= 1


@pytest.mark.slow
def test_ensemble_is_the_mean_of_its_members(tmp_path, shared_data):
    from stockcast.pipeline import run

    runs = []
    for seed in (1, 2):  # one store, an output folder (checkpoints) per run, as Hydra gives each job
        cfg = compose_train(tmp_path, "end=2025-11-07", f"seed={seed}")
        cfg.paths.output_dir = str(tmp_path / f"outputs-{seed}")
        runs.append(run(cfg))
    tracking = f"logger.tracking_uri={runs[0].tracking_uri}"
    singles = [evaluate(compose_config("evaluate", tmp_path / f"s{i}", tracking, f"run_id={r.run_id}",
                                       "baselines.ets.refit_every=50"))[0] for i, r in enumerate(runs)]
    (ensemble,) = evaluate(compose_config("evaluate", tmp_path / "e", tracking, "ensemble=2",
                                          "baselines.ets.refit_every=50"))
    read = [pd.read_csv(e.output_dir / "forecasts.csv") for e in (*singles, ensemble)]
    columns = [f"lstm_h{step}" for step in range(1, 11)]
    np.testing.assert_allclose(read[2][columns], (read[0][columns] + read[1][columns]) / 2, rtol=1e-5)
    assert set(ensemble.evaluated_run_id.split(",")) == {r.run_id for r in runs}
    assert MlflowClient(runs[0].tracking_uri).get_run(ensemble.run_id).data.tags["model"] == \
        "per ticker, mean of 2 runs"
