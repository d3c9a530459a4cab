"""Metrics and the naive baseline on a toy series, worked by hand."""

import numpy as np
import pytest

from stockcast.metrics import compare_with_naive, error_metrics, naive_forecast


def test_error_metrics_by_hand():
    actual = np.array([[100.0, 110.0], [200.0, 200.0]])
    forecast = np.array([[90.0, 110.0], [210.0, 220.0]])  # errors -10, 0 / +10, +20
    metrics = error_metrics(forecast, actual, "test")
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
