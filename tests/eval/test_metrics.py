"""Metrics, the naive baseline and the Diebold-Mariano test, on cases worked by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockcast.metrics import (
    ALL_METRICS,
    compare_with_naive,
    diebold_mariano,
    error_metrics,
    move_spread,
    naive_forecast,
    percentage_errors,
    pooled_test,
    step_errors,
)


def test_error_metrics_by_hand():
    actual = np.array([[100.0, 110.0], [200.0, 200.0]])
    forecast = np.array([[90.0, 110.0], [210.0, 220.0]])  # errors -10, 0 / +10, +20
    metrics = error_metrics(forecast, actual, np.array([95.0, 205.0]), "test")
    assert metrics["test_mae"] == pytest.approx(40 / 4)
    assert metrics["test_rmse"] == pytest.approx(np.sqrt((100 + 0 + 100 + 400) / 4))
    # step 1: |-10|/100 and 10/200 -> 7.5 %; step 2: 0 and 20/200 -> 5 %
    assert metrics["test_mape_h1"] == pytest.approx(7.5)
    assert metrics["test_mape_h2"] == pytest.approx(5.0)
    assert metrics["test_mape"] == pytest.approx(6.25)
    assert metrics["test_rmse_h2"] == pytest.approx(np.sqrt(400 / 2))
    assert metrics["test_mae_h1"] == pytest.approx(10.0)


def test_naive_repeats_last_close_and_skill_is_relative_to_it():
    last = np.array([100.0, 200.0])
    assert naive_forecast(last, 3).tolist() == [[100] * 3, [200] * 3]
    actual = np.array([[110.0, 120.0], [180.0, 200.0]])  # naive errors: 10, 20 / 20, 0
    forecast = np.array([[105.0, 120.0], [190.0, 200.0]])  # model errors: 5, 0 / 10, 0
    metrics = compare_with_naive(forecast, actual, last)
    naive_mape = (10 / 110 + 20 / 120 + 20 / 180 + 0) * 100 / 4  # percent of the actual price
    assert metrics["naive_mape"] == pytest.approx(naive_mape)
    assert metrics["naive_mae"] == pytest.approx((10 + 20 + 20 + 0) / 4)
    expected_mape = (5 / 110 + 10 / 180) * 100 / 4
    assert metrics["test_mape"] == pytest.approx(expected_mape)
    assert metrics["skill_mape"] == pytest.approx(1 - expected_mape / naive_mape)
    assert {f"test_mape_h{h}" for h in (1, 2)} <= metrics.keys()


def test_smape_and_direction_by_hand():
    last = np.array([100.0, 100.0])
    actual = np.array([[110.0, 90.0], [90.0, 100.0]])  # moves: up, down / down, flat
    forecast = np.array([[105.0, 95.0], [105.0, 100.0]])  # moves: up, down / up, flat
    per_step = step_errors(forecast, actual, last)
    # step 1: up/up right, up/down wrong -> 50 %; step 2: down/down right, flat/flat right -> 100 %
    assert per_step["direction"].tolist() == [50.0, 100.0]
    assert per_step["smape"][0] == pytest.approx(100 * (2 * 5 / 215 + 2 * 15 / 195) / 2)
    naive = step_errors(naive_forecast(last, 2), actual, last)
    assert np.isnan(naive["direction"]).all()  # a flat forecast has no direction
    metrics = error_metrics(forecast, actual, last, "m", names=ALL_METRICS)
    assert metrics["m_direction"] == 75.0 and metrics["m_smape_h2"] == pytest.approx(100 * (2 * 5 / 185) / 2)


def test_percentage_errors_and_move_spread_by_hand():
    actual = np.array([[100.0, 110.0], [200.0, 200.0]])
    forecast = np.array([[90.0, 110.0], [210.0, 220.0]])
    np.testing.assert_allclose(percentage_errors(forecast, actual), [[10.0, 0.0], [5.0, 10.0]])
    # last-step moves from the origins' closes: 110 / 100 - 1 = +10 %, 220 / 200 - 1 = +10 %, then -10 %
    assert move_spread(forecast, np.array([100.0, 200.0])) == pytest.approx(0.0)
    assert move_spread(np.array([[0.0, 110.0], [0.0, 90.0]]), np.array([100.0, 100.0])) == pytest.approx(10.0)


def test_one_step_is_a_t_test_on_the_loss_differential():
    d = np.array([1.0, -0.5, 2.0, 0.5, 1.5, 0.0, 1.0, 2.5])
    result = diebold_mariano(d, np.zeros_like(d), horizon=1)
    n = len(d)
    # h=1: variance is the (biased) sample variance; HLN factor sqrt((n - 1) / n)
    expected = d.mean() / np.sqrt(d.var() / n) * np.sqrt((n - 1) / n)
    assert result.statistic == pytest.approx(expected)
    assert result.statistic == pytest.approx(stats.ttest_1samp(d, 0).statistic)  # same thing for h=1
    assert result.pvalue == pytest.approx(stats.ttest_1samp(d, 0).pvalue)


def test_two_step_adds_the_lag_one_autocovariance():
    d = np.array([2.0, 1.0, 0.0, 1.0, 3.0, 1.0])  # mean 4/3
    c = d - d.mean()
    n = 6
    variance = (c @ c + 2 * (c[1:] @ c[:-1])) / n
    expected = d.mean() / np.sqrt(variance / n) * np.sqrt((n + 1 - 4 + 2 / n) / n)
    result = diebold_mariano(d, np.zeros(n), horizon=2)
    assert result.statistic == pytest.approx(expected)
    assert result.pvalue == pytest.approx(2 * stats.t.sf(abs(expected), df=n - 1))


def test_equal_forecasts_are_not_significant_and_a_clearly_better_one_is():
    rng = np.random.default_rng(0)
    errors = rng.normal(size=500)
    same = diebold_mariano(errors**2, errors**2 + rng.normal(scale=1e-3, size=500), horizon=1)
    assert same.pvalue > 0.05
    better = diebold_mariano((0.5 * errors) ** 2, errors**2, horizon=1)
    assert better.statistic < 0 and better.pvalue < 1e-6


def test_pooled_test_sums_per_date_and_uses_newey_west_errors():
    """Two series on partly shared dates: the sum per date, its mean over its Newey-West (Bartlett) error."""
    dates = pd.date_range("2024-01-01", periods=6)
    a = pd.Series([1.0, -0.5, 0.25, 0.5, -1.0, 0.75], index=dates)
    b = pd.Series([0.5, 0.5, -0.25], index=dates[2:5])
    sums = np.array([1.0, -0.5, 0.75, 1.0, -1.25, 0.75])
    centered, n = sums - sums.mean(), 6
    gamma0, gamma1 = centered @ centered / n, centered[1:] @ centered[:-1] / n
    statistic = sums.mean() / np.sqrt((gamma0 + 2 * 0.5 * gamma1) / n)
    test = pooled_test([a, b], lag=1)
    assert test.statistic == pytest.approx(statistic)
    assert test.pvalue == pytest.approx(2 * stats.norm.sf(abs(statistic)))
    assert np.isnan(pooled_test([a * 0 + 1], lag=1).pvalue)  # no variance: the data cannot decide
