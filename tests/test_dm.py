"""Diebold-Mariano (stockcast.metrics) on cases worked by hand."""

import numpy as np
import pytest
from scipy import stats

from stockcast.metrics import diebold_mariano


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
