"""Quantile-forecast scores on cases worked by hand: pinball, CRPS, intervals, coverage tests."""

import math

import numpy as np
import pytest
from scipy import stats

from stockcast.errors import StockcastError
from stockcast.metrics import (
    Quantiles,
    central_interval,
    christoffersen,
    compare_distributions,
    covered,
    crps,
    diebold_mariano,
    distribution_metrics,
    interval_width,
    kupiec,
    pinball_loss,
    winkler_score,
)

LEVELS = np.arange(1, 20) * 0.05  # 0.05 .. 0.95, as model.quantiles
TOY_LEVELS = [0.1, 0.5, 0.9]
# Two origins (closes 100 and 50), two steps, three quantiles each.
TOY_Q = np.array([[[90.0, 100.0, 110.0], [95.0, 100.0, 120.0]],
                  [[45.0, 50.0, 55.0], [40.0, 50.0, 60.0]]])
TOY_ACTUAL = np.array([[104.0, 80.0], [50.0, 62.0]])
TOY_LAST = np.array([100.0, 50.0])


def test_pinball_and_crps_by_hand():
    loss = pinball_loss(TOY_Q, TOY_ACTUAL, TOY_LEVELS)
    # origin 1, step 1: y - q = 14, 4, -6 -> 0.1*14, 0.5*4, (1-0.9)*6 = 1.4, 2.0, 0.6
    # origin 1, step 2: y - q = -15, -20, -40 -> 0.9*15, 0.5*20, 0.1*40 = 13.5, 10, 4
    # origin 2, step 1: y - q = 5, 0, -5 -> 0.5, 0, 0.5; step 2: 22, 12, 2 -> 2.2, 6, 1.8
    np.testing.assert_allclose(loss, [[[1.4, 2.0, 0.6], [13.5, 10.0, 4.0]], [[0.5, 0.0, 0.5], [2.2, 6.0, 1.8]]])
    # CRPS = 2 x mean over levels, in % of the origin's close (100, then 50)
    expected = [[2 * 4.0 / 3, 2 * 27.5 / 3], [2 * (1 / 3) / 50 * 100, 2 * (10 / 3) / 50 * 100]]
    score = crps(TOY_Q, TOY_ACTUAL, TOY_LAST, TOY_LEVELS)
    np.testing.assert_allclose(score, expected)  # 8/3, 55/3 / 4/3, 40/3
    assert score.mean() == pytest.approx((8 + 55 + 4 + 40) / 12)  # what {prefix}_crps reports
    np.testing.assert_allclose(score.mean(axis=0), [(8 / 3 + 4 / 3) / 2, (55 / 3 + 40 / 3) / 2])  # _crps_h1, _h2


def test_a_point_forecast_has_crps_equal_to_its_absolute_error_in_percent():
    forecast, actual, last = np.array([[103.0, 95.0]]), np.array([[100.0, 100.0]]), np.array([100.0])
    point = Quantiles.point(forecast)
    assert point.values.shape == (1, 2, 1) and point.levels.tolist() == [0.5]
    # 2 x 0.5 x |error| / 100 x 100
    np.testing.assert_allclose(crps(point.values, actual, last, point.levels), [[3.0, 5.0]])
    lower, upper = central_interval(point.values, point.levels, 80)
    np.testing.assert_array_equal(lower, forecast)
    np.testing.assert_array_equal(upper, forecast)


@pytest.mark.parametrize("y", [-2.5, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0])
def test_crps_of_normal_quantiles_near_the_closed_form(y):
    """Gaussian CRPS: sigma (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)). On the 19 levels k/20 the
    quantile estimate is 3.8 to 5.4 % too high for these z (4.8 % on average over z ~ N(0, 1)): the grid
    leaves out the tails. The same 19 levels at mid-points (k + 0.5) / 19 are within 0.6 %, and 999 levels
    k/1000 about 0.1 % high: the function is right, the bias (about 1 / (Q + 1)) is the grid's."""
    mu, sigma, last = 100.0, 2.0, np.array([100.0])  # % of a close of 100 = price units
    actual = np.array([[mu + sigma * y]])
    exact = sigma * (y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / np.sqrt(np.pi))

    def estimate(levels: np.ndarray) -> float:
        q = (mu + sigma * stats.norm.ppf(levels))[None, None, :]
        return float(crps(q, actual, last, levels)[0, 0])

    assert 1.03 < estimate(LEVELS) / exact < 1.06
    assert estimate((np.arange(19) + 0.5) / 19) == pytest.approx(exact, rel=0.006)
    assert estimate(np.arange(1, 1000) / 1000) == pytest.approx(exact, rel=0.0015)


def test_central_intervals_read_the_matching_levels():
    q = np.broadcast_to(np.arange(19.0), (2, 3, 19))  # the value at each level is its index
    for coverage, (low, high) in {80: (1, 17), 90: (0, 18), 50: (4, 14)}.items():
        lower, upper = central_interval(q, LEVELS, coverage)
        assert lower.shape == (2, 3) and (lower == low).all() and (upper == high).all(), coverage
    with pytest.raises(StockcastError, match=r"90 % interval needs the quantile level 0.05"):
        central_interval(TOY_Q, TOY_LEVELS, 90)


def test_coverage_width_and_winkler_by_hand():
    lower, upper = np.array([[95.0, 90.0, 95.0]]), np.array([[105.0, 110.0, 105.0]])
    actual, last = np.array([[100.0, 115.0, 95.0]]), np.array([100.0])
    assert covered(lower, upper, actual).tolist() == [[True, False, True]]  # a bound counts as inside
    np.testing.assert_allclose(interval_width(lower, upper, last), [[10.0, 20.0, 10.0]])
    # 80 %: alpha 0.2, penalty 2 / 0.2 = 10 per unit of miss; step 2 misses by 115 - 110 = 5 -> 20 + 50
    np.testing.assert_allclose(winkler_score(lower, upper, actual, last, 80), [[10.0, 70.0, 10.0]])
    # below the interval, in % of a close of 50: width 10 + 10 x (95 - 93) = 30 -> 60 %
    assert winkler_score(lower[:, :1], upper[:, :1], np.array([[93.0]]), np.array([50.0]), 80)[0, 0] == \
        pytest.approx(60.0)


def test_metric_names_for_the_pipeline():
    rng = np.random.default_rng(0)
    n, horizon = 30, 10
    last = 100 + rng.normal(size=n)
    actual = last[:, None] * np.exp(rng.normal(scale=0.02, size=(n, horizon)))

    def spread(scale: float) -> Quantiles:
        z = stats.norm.ppf(LEVELS)
        return Quantiles(last[:, None, None] * np.exp(scale * z)[None, None, :] * np.ones((1, horizon, 1)), LEVELS)

    test = compare_distributions({"test": spread(0.02), "naive": spread(0.05), "ewma": spread(0.03)}, actual, last)
    steps = {f"test_{name}_h{h}" for name in ("crps", "coverage_80") for h in range(1, horizon + 1)}
    assert {"test_crps", "naive_crps", "skill_crps", "ewma_crps", "ewma_skill_crps", "test_coverage_80",
            "test_coverage_90", "naive_coverage_80", "ewma_coverage_80", "test_width_80", "ewma_width_80",
            *steps} <= test.keys()
    assert "naive_skill_crps" not in test and "test_skill_crps" not in test
    assert test["skill_crps"] == pytest.approx(1 - test["test_crps"] / test["naive_crps"])
    assert test["ewma_skill_crps"] == pytest.approx(1 - test["ewma_crps"] / test["naive_crps"])
    assert test["skill_crps"] > test["ewma_skill_crps"] > 0  # the true spread beats the wider ones
    assert test["test_width_80"] == pytest.approx(100 * (np.exp(0.02 * 1.2816) - np.exp(-0.02 * 1.2816)), rel=1e-3)
    val = compare_distributions({"val": spread(0.02), "val_naive": spread(0.05)}, actual, last, reference="val_naive")
    assert {"val_crps", "val_skill_crps", "val_coverage_80"} <= val.keys()
    # a point model (model.loss=mse) is scored as a one-value distribution: its intervals never cover
    point = distribution_metrics(Quantiles.point(actual + 1), actual, last, "test")
    assert point["test_coverage_80"] == 0 and point["test_width_80"] == 0
    assert point["test_crps"] == pytest.approx(np.mean(100 / last))


def test_dm_on_crps_per_origin_prefers_the_calibrated_forecast():
    rng = np.random.default_rng(1)
    n = 400
    last = np.full(n, 100.0)
    actual = 100 + 2 * rng.normal(size=(n, 1))
    right = Quantiles((100 + 2 * stats.norm.ppf(LEVELS))[None, None, :].repeat(n, 0), LEVELS)
    wide = Quantiles((100 + 6 * stats.norm.ppf(LEVELS))[None, None, :].repeat(n, 0), LEVELS)
    result = diebold_mariano(crps(right.values, actual, last, LEVELS).mean(axis=1),
                             crps(wide.values, actual, last, LEVELS).mean(axis=1), horizon=1)
    assert result.statistic < 0 and result.pvalue < 1e-6


def test_kupiec_by_hand():
    hits = np.array([True] * 7 + [False] * 3)  # 3 misses in 10 for an 80 % interval
    # log L(0.3) = 3 ln 0.3 + 7 ln 0.7 = -6.10864; log L(0.2) = 3 ln 0.2 + 7 ln 0.8 = -6.39032
    # LR = 2 (-6.10864 + 6.39032) = 0.563351; chi2(1): p = erfc(sqrt(LR / 2)) = 0.4529
    result = kupiec(hits, 80)
    assert result.statistic == pytest.approx(0.5633511519, rel=1e-9)
    assert result.pvalue == pytest.approx(math.erfc(math.sqrt(0.5633511519 / 2)), rel=1e-6)
    assert result.pvalue == pytest.approx(0.4529, abs=1e-4)
    exact = kupiec(np.array([True] * 8 + [False] * 2), 80)  # observed miss rate = nominal
    assert exact.statistic == pytest.approx(0, abs=1e-12) and exact.pvalue == pytest.approx(1)


def test_kupiec_degenerate_sequences():
    # no misses in 20: LR = -2 x 20 ln 0.8 = 8.92574 (0 log 0 = 0); rejected at 1 %
    never = kupiec(np.ones(20, dtype=bool), 80)
    assert never.statistic == pytest.approx(-40 * math.log(0.8)) and never.pvalue == pytest.approx(0.0028118, rel=1e-4)
    # nothing but misses in 5: LR = -2 x 5 ln 0.2 = 16.0944
    always = kupiec(np.zeros(5, dtype=bool), 80)
    assert always.statistic == pytest.approx(-10 * math.log(0.2)) and 0 < always.pvalue < 1e-4
    with pytest.raises(ValueError):
        kupiec(np.array([], dtype=bool), 80)


def test_christoffersen_by_hand():
    miss = np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 0], dtype=bool)
    # transitions: 00 01 11 10 00 00 01 11 10 -> n00 = 3, n01 = 2, n10 = 2, n11 = 2
    # pi01 = 2/5, pi11 = 2/4, pi = 4/9
    # log L1 = 3 ln 0.6 + 2 ln 0.4 + 2 ln 0.5 + 2 ln 0.5 = -6.137647
    # log L0 = 5 ln(5/9) + 4 ln(4/9) = -6.182654; LR = 2 (L1 - L0) = 0.0900143, p = 0.7642
    result = christoffersen(~miss)
    assert result.statistic == pytest.approx(0.0900142642, rel=1e-8)
    assert result.pvalue == pytest.approx(math.erfc(math.sqrt(0.0900142642 / 2)), rel=1e-6)
    clustered = christoffersen(~np.array([0] * 10 + [1] * 5 + [0] * 10, dtype=bool))  # misses in one run
    assert clustered.pvalue < 0.01
    alternating = christoffersen(np.arange(20) % 2 == 0)  # a miss is always followed by a hit
    assert alternating.pvalue < 0.01


def test_christoffersen_degenerate_sequences():
    for hits in (np.ones(10, dtype=bool), np.zeros(10, dtype=bool), np.array([True, True, True, False])):
        result = christoffersen(hits)  # no misses; only misses; one miss, last: nothing follows a miss
        assert result.statistic == pytest.approx(0, abs=1e-12) and result.pvalue == pytest.approx(1)
    with pytest.raises(ValueError):
        christoffersen(np.array([True]))


def test_conditional_coverage_adds_kupiec_and_independence_on_a_known_sequence():
    """250 days, 5 exceptions at 99 %, two of them on consecutive days: the statistics by hand."""
    from scipy import stats

    from stockcast.metrics import conditional_coverage

    hits = np.ones(250, dtype=bool)
    hits[[10, 11, 100, 180, 240]] = False
    n, x, p = 250, 5, 0.01
    lr_uc = 2 * (x * np.log(x / n) + (n - x) * np.log(1 - x / n) - x * np.log(p) - (n - x) * np.log(1 - p))
    # transitions: n01 = 4 (hit -> miss), n11 = 1, n00 = 249 - 5 - ... counted over the 249 pairs
    n01, n11, n10 = 4, 1, 4
    n00 = 249 - n01 - n11 - n10
    pi0, pi1, pi = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / 249
    lr_ind = 2 * (n00 * np.log(1 - pi0) + n01 * np.log(pi0) + n10 * np.log(1 - pi1) + n11 * np.log(pi1)
                  - (n00 + n10) * np.log(1 - pi) - (n01 + n11) * np.log(pi))
    found = conditional_coverage(hits, 99)
    assert kupiec(hits, 99).statistic == pytest.approx(lr_uc)
    assert christoffersen(hits).statistic == pytest.approx(lr_ind)
    assert found.statistic == pytest.approx(lr_uc + lr_ind)
    assert found.pvalue == pytest.approx(stats.chi2.sf(lr_uc + lr_ind, 2))


@pytest.mark.parametrize(("exceptions", "zone"), [(0, "green"), (4, "green"), (5, "yellow"), (9, "yellow"),
                                                  (10, "red"), (30, "red")])
def test_traffic_light_zones(exceptions, zone):
    from stockcast.metrics import traffic_light

    assert traffic_light(exceptions) == zone


def test_z2_is_near_zero_for_a_correct_model_and_negative_for_a_too_narrow_one():
    """Student-t pnl; the model's VaR and ES at 97.5 % from the right scale, then from 70 % of it."""
    from scipy import stats

    from stockcast.metrics import acerbi_szekely_z2

    level, days, df = 0.975, 250, 5
    rng = np.random.default_rng(1)
    scale = np.exp(rng.normal(0, 0.3, (400, days)))  # a different volatility every day, known to the model
    pnl = stats.t.rvs(df, size=(400, days), random_state=rng) * scale
    q = stats.t.ppf(1 - level, df)
    es_unit = (df + q ** 2) / (df - 1) * stats.t.pdf(q, df) / (1 - level)  # the t's ES at level, positive
    correct = [acerbi_szekely_z2(p, -q * s, es_unit * s, level) for p, s in zip(pnl, scale, strict=True)]
    narrow = [acerbi_szekely_z2(p, -q * s * 0.7, es_unit * s * 0.7, level) for p, s in zip(pnl, scale, strict=True)]
    assert abs(np.mean(correct)) < 0.05
    assert np.mean(np.array(correct) < -0.70) < 0.10  # about 5 % rejections of a right model
    assert np.mean(narrow) < -0.70 and np.mean(np.array(narrow) < -0.70) > 0.6


def test_fz0_is_lowest_at_the_true_var_and_es():
    """The expected FZ0 loss of a normal pnl: the true pair beats a scaled one in either direction."""
    from scipy import stats

    from stockcast.metrics import fz0_loss

    pnl = np.random.default_rng(2).normal(size=200_000)
    level = 0.975
    var, es = stats.norm.ppf(level), stats.norm.pdf(stats.norm.ppf(level)) / (1 - level)
    losses = {k: fz0_loss(pnl, np.full(pnl.size, var * k), np.full(pnl.size, es * k), level).mean()
              for k in (0.8, 1.0, 1.25)}
    assert losses[1.0] < losses[0.8] and losses[1.0] < losses[1.25]
    # one day by hand: an exception of y = -3
    one = fz0_loss(np.array([-3.0]), np.array([var]), np.array([es]), level)[0]
    assert one == pytest.approx(-(-var + 3) / (0.025 * -es) + var / es + np.log(es) - 1)
