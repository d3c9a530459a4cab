"""A portfolio's risk: the copula's arithmetic against closed forms and scikit-learn, and the `risk` request's
rules on tiny bundles built in memory (a real TorchServe answers them in tests/served/test_risk_served.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.covariance import LedoitWolf

from stockcast.runtime import copula, inference, postprocess, risk
from stockcast.runtime.body import BadRequest
from stockcast.runtime.copula import Sampler
from stockcast.runtime.preprocess import parse_batch
from stockcast.runtime.risk import Model
from tests.bundles import portfolio_of, tiny_bundle

SESSIONS = [str(day) for day in np.arange("2025-01-01", "2026-01-01", dtype="datetime64[D]")
            if np.is_busday(day)]
CALENDAR = {"exchanges": {"XNYS": {"sessions": SESSIONS}, "BVMF": {"sessions": SESSIONS}},
            "stocks": {"AAA": "XNYS", "BBB": "XNYS", "VALE3.SA": "BVMF"}}
LAST = "2025-11-07"


def test_shrunk_correlation_is_scikit_learns_ledoit_wolf():
    """More tickers than days: the sample correlation is singular, the shrunk one is scikit-learn's, positive
    definite."""
    scaled = torch.from_numpy(np.random.default_rng(3).standard_t(5, size=(40, 60)) @
                              np.random.default_rng(4).normal(size=(60, 60)) * 0.2)
    found = copula.shrunk_correlation(scaled)
    expected = LedoitWolf().fit(scaled.numpy())
    scale = np.sqrt(np.diag(expected.covariance_))
    assert found.shrinkage == pytest.approx(expected.shrinkage_, rel=1e-9)
    np.testing.assert_allclose(found.correlation.numpy(), expected.covariance_ / np.outer(scale, scale), atol=1e-12)
    assert torch.linalg.eigvalsh(found.correlation).min() > 0


def _constant_correlation_by_the_paper(x: np.ndarray) -> float:
    """Ledoit and Wolf's (2004, "Honey, I shrunk...") intensity towards the constant-correlation matrix, term by
    term as the paper's appendix writes it."""
    t, n = x.shape
    y = x - x.mean(0)
    s = y.T @ y / t
    r = s / np.sqrt(np.outer(np.diag(s), np.diag(s)))
    mean = (r.sum() - n) / (n * (n - 1))
    f = mean * np.sqrt(np.outer(np.diag(s), np.diag(s)))
    np.fill_diagonal(f, np.diag(s))
    pi = np.array([[np.mean((y[:, i] * y[:, j] - s[i, j]) ** 2) for j in range(n)] for i in range(n)])
    theta = np.array([[np.mean((y[:, i] ** 2 - s[i, i]) * (y[:, i] * y[:, j] - s[i, j])) for j in range(n)]
                      for i in range(n)])
    rho = np.trace(pi) + sum(mean / 2 * (np.sqrt(s[j, j] / s[i, i]) * theta[i, j] + np.sqrt(s[i, i] / s[j, j])
                                         * theta[j, i]) for i in range(n) for j in range(n) if i != j)
    kappa = (pi.sum() - rho) / ((f - s) ** 2).sum()
    return float(max(0.0, min(1.0, kappa / t)))


def test_the_constant_correlation_target_is_the_papers_and_keeps_the_level_of_co_movement():
    rng = np.random.default_rng(9)
    correlation = np.full((12, 12), 0.35) + 0.65 * np.eye(12)
    scaled = rng.multivariate_normal(np.zeros(12), correlation, 250) * rng.uniform(0.5, 2, 12)
    x = torch.from_numpy(scaled)
    constant = copula.shrunk_correlation(x, "constant")
    assert constant.shrinkage == pytest.approx(_constant_correlation_by_the_paper(scaled), rel=1e-9)
    off = ~np.eye(12, dtype=bool)
    sample = np.corrcoef(scaled.T)[off].mean()
    assert constant.correlation.numpy()[off].mean() == pytest.approx(sample, abs=1e-9)  # only dispersion shrinks
    towards_zero = copula.shrunk_correlation(x, "identity")
    assert towards_zero.correlation.numpy()[off].mean() < sample - 0.01
    assert torch.linalg.eigvalsh(constant.correlation).min() > 0


@pytest.mark.parametrize("target", copula.TARGETS)
def test_a_ticker_that_never_moved_is_independent_not_a_nan(target):
    closes = torch.tensor([[10.0, 20.0 + day % 3, 5.0 + (day * 7) % 5] for day in range(30)], dtype=torch.float64)
    closes[:, 2] = 5.0
    found = copula.shrunk_correlation(copula.standardized(closes)[0], target).correlation
    assert torch.isfinite(found).all() and found[0, 0] == found[2, 2] == 1 and found[0, 1] == found[1, 2] == 0
    copula.uniforms(copula.Dependence(found, 0.0, 29), 3, 10, seed=1)  # drawn from, too


def test_standardized_returns_follow_their_ewma_volatility():
    """A calm stretch then a wild one: over the EWMA volatility (the recursion's) both come out near unit scale."""
    rng = np.random.default_rng(0)
    returns = np.concatenate([rng.normal(0, 0.01, 300), rng.normal(0, 0.04, 300)])
    closes = torch.from_numpy(100 * np.exp(np.cumsum(np.r_[0, returns])))[:, None]
    scaled, today = copula.standardized(closes)
    variance = np.mean(returns ** 2)  # the recursion, day by day
    for day, value in enumerate(returns):
        assert float(scaled[day, 0]) == pytest.approx(value / np.sqrt(variance), rel=1e-9)
        variance = 0.94 * variance + 0.06 * value ** 2
    assert float(today[0]) == pytest.approx(np.sqrt(variance), rel=1e-9)
    scaled = scaled[:, 0].numpy()
    assert abs(returns[300:].std() / returns[:300].std() - 4) < 0.5
    assert scaled[50:300].std() == pytest.approx(1, abs=0.15) and scaled[350:].std() == pytest.approx(1, abs=0.15)


def _gaussian_position(scenarios: int):
    """Three tickers' normal changes (a fine grid of levels: the tails barely matter), correlated, and a long-short
    position: its simulated changes per scenario and the closed-form standard deviation."""
    sigma = np.array([1.0, 2.0, 0.5])
    correlation = np.array([[1.0, 0.6, -0.2], [0.6, 1.0, 0.1], [-0.2, 0.1, 1.0]])
    shares = np.array([10.0, -4.0, 20.0])
    levels = torch.linspace(0.0005, 0.9995, 1999, dtype=torch.float64)
    grid = torch.from_numpy(sigma[:, None] * stats.norm.ppf(levels.numpy())[None, :])
    dependence = copula.Dependence(torch.from_numpy(correlation), 0.0, 100)
    u = copula.uniforms(dependence, 3, scenarios, seed=11)
    tails = copula.Tails.of([None] * 3, 1, levels).parameters[:, 0]
    changes = copula.Located.of(levels, u).changes(grid, tails).T.double()
    covariance = correlation * np.outer(sigma, sigma)
    return changes, shares, covariance


def test_gaussian_var_and_es_are_the_closed_form_within_monte_carlo_error():
    scenarios = 400_000
    changes, shares, covariance = _gaussian_position(scenarios)
    spread = math.sqrt(shares @ covariance @ shares)
    found = copula.measures(changes, torch.from_numpy(shares), [0.99, 0.975], [0.01, 0.5])
    for level, var, es in zip([0.99, 0.975], found.var, found.es, strict=True):
        z = stats.norm.ppf(level)
        # the standard error of a sample quantile: sqrt(p (1 - p) / n) / density at it
        error = math.sqrt(level * (1 - level) / scenarios) / stats.norm.pdf(z) * spread
        assert abs(var - z * spread) < 4 * error
        assert es == pytest.approx(stats.norm.pdf(z) / (1 - level) * spread, rel=0.01)
    assert found.quantiles[0] == pytest.approx(-found.var[0], rel=1e-3)


def test_component_var_sums_to_var_and_is_eulers_allocation():
    changes, shares, covariance = _gaussian_position(400_000)
    found = copula.measures(changes, torch.from_numpy(shares), [0.99], [0.5])
    assert sum(found.contributions[0]) == pytest.approx(found.var[0], rel=1e-12)
    spread = math.sqrt(shares @ covariance @ shares)
    euler = stats.norm.ppf(0.99) * shares * (covariance @ shares) / spread  # each position's share of the VaR
    np.testing.assert_allclose(found.contributions[0], euler, atol=0.05 * found.var[0])


def _fixed(levels: torch.Tensor, shape: float, count: int = 1) -> torch.Tensor:
    """[N, 2, 3] one horizon's tails of `shape` (a bundle without fitted ones)."""
    return copula.Tails.of([None] * count, 1, levels, shape).parameters[:, 0]


def test_tails_continue_the_quantile_function():
    """Beyond the served 5..95 %, the tail is continuous at the end levels, increasing, and a heavier shape
    reaches further; uneven levels are located as even ones are."""
    levels = torch.tensor([0.05, 0.1, 0.5, 0.9, 0.95], dtype=torch.float64)
    grid = torch.tensor([[-2.0, -1.5, 0.0, 1.5, 2.0]], dtype=torch.float64)
    u = torch.tensor([[0.001, 0.01, 0.05, 0.07, 0.95, 0.99, 0.999]])
    light = copula.Located.of(levels, u).changes(grid, _fixed(levels, 0.0))[0]
    heavy = copula.Located.of(levels, u).changes(grid, _fixed(levels, 0.3))[0]
    assert light[2] == pytest.approx(-2.0) and light[4] == pytest.approx(2.0) and light[3] == pytest.approx(-1.8)
    assert (light.diff() > 0).all() and (heavy.diff() > 0).all()
    assert heavy[0] < light[0] < -2 and heavy[-1] > light[-1] > 2
    # exponential tail with the last segment's slope (10 per unit of probability): 0.05 * 10 * log(5) below -2
    assert light[1] == pytest.approx(-2 - 0.5 * math.log(5))
    even = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    grid = torch.from_numpy(stats.norm.ppf(even.numpy()))[None, :]
    u = torch.rand(1, 1000, generator=torch.Generator().manual_seed(0))
    uneven = torch.cat([even[:3], even[3:4] + 1e-4, even[4:]])  # searched, not computed
    np.testing.assert_allclose(copula.Located.of(even, u).changes(grid, _fixed(even, 0.1)),
                               copula.Located.of(uneven, u).changes(grid, _fixed(uneven, 0.1)), atol=2e-3)


def test_a_student_ts_far_quantiles_come_back_from_its_served_ones_and_its_errors():
    """A Student-t with 4 degrees of freedom served at exactly its 5..95 % quantiles: the tails fitted to its
    standardized errors (eval.risk_tail) give its 1 % and 0.5 % quantiles within 3 %; the exponential tail falls
    17 % short at 1 %."""
    from stockcast.eval.risk_tail import fitted

    even = np.round(np.linspace(0.05, 0.95, 19), 2)
    served = stats.t.ppf(even, 4) * 0.01  # log changes
    outcomes = np.exp(np.random.default_rng(0).standard_t(4, (100_000, 1)) * 0.01)
    tail = fitted(np.exp(np.broadcast_to(served, (100_000, 1, 19))), outcomes, np.ones(100_000), even)
    assert tail is not None and 0.1 < tail["lower"]["shape"][0] < 0.4  # t4's tail index is 1/4
    asked = [0.005, 0.01, 0.99, 0.995]
    levels = torch.from_numpy(even)
    located = copula.Located.of(levels, torch.tensor([asked], dtype=torch.float64))
    grid = torch.from_numpy(served)[None, :]
    found = located.changes(grid, copula.Tails.of([tail], 1, levels).parameters[:, 0])[0].numpy() / 0.01
    np.testing.assert_allclose(found, stats.t.ppf(asked, 4), rtol=0.03)
    exponential = located.changes(grid, _fixed(levels, 0.0))[0].numpy() / 0.01
    assert exponential[1] == pytest.approx(stats.t.ppf(0.01, 4) * 0.83, rel=0.01)


def test_a_shock_on_the_last_day_widens_the_next_days_var():
    """The same served marginals: with `reaction` the spread follows today's EWMA volatility, so a 5-sigma move
    on the last day widens the next day's VaR; without it (reaction 0) the VaR stays the marginals' own."""
    rng = np.random.default_rng(2)
    calm = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (251, 3)), axis=0))
    shocked = calm.copy()
    shocked[-1] = shocked[-2] * np.exp([-0.05, -0.05, 0.05])
    levels = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)

    def var(closes: np.ndarray, reaction: float) -> float:
        last = torch.from_numpy(closes[-1])
        quantiles = last[:, None, None] * torch.exp(0.01 * torch.special.ndtri(levels))[None, None, :]
        _, [changes] = Sampler(20_000, reaction=reaction).draw(torch.from_numpy(closes), last, quantiles, levels,
                                                                [1], seed=5)
        return copula.measures(changes, 1 / last, [0.99], [0.5]).var[0]

    assert var(shocked, 1.0) > 1.3 * var(calm, 1.0)  # EWMA: sqrt(0.94 + 0.06 * 25) = 1.56 times the spread
    assert var(shocked, 0.0) == pytest.approx(var(calm, 0.0), rel=0.1)


def test_a_recent_stress_raises_the_decayed_correlation():
    """Ten tickers unrelated for most of a year, then driven by one common shock for 15 days: the equally weighted
    correlation barely sees it, a decay of 0.97 a day does."""
    rng = np.random.default_rng(1)
    scaled = torch.from_numpy(rng.normal(size=(250, 10)))
    scaled[-15:] = scaled[-15:] * 0.3 + torch.from_numpy(rng.normal(size=(15, 1)))

    def mean_correlation(decay: float | None) -> float:
        return float((copula.shrunk_correlation(scaled, decay=decay).correlation.sum() - 10) / 90)

    assert mean_correlation(None) < 0.05 and mean_correlation(0.97) > 0.2


def _portfolio():
    bundle = tiny_bundle("global", {"symbol": "global", "any_ticker": True})
    return portfolio_of(bundle, members={"AAA": "global", "BBB": "global", "VALE3.SA": "global"},
                        calendar=CALENDAR)


def _instance(stock: str, seed: int, days: int = 60, last_date: str | None = LAST) -> dict:
    rng = np.random.default_rng(seed)
    closes = (50 * np.exp(np.cumsum(rng.normal(0, 0.015, days)))).round(4).tolist()
    return {"stock": stock, "prices": closes} | ({"last_date": last_date} if last_date else {})


def _answer(body: dict, scenarios: int = 4000):
    portfolio = _portfolio()
    model = Model(portfolio, Sampler(scenarios))
    batch = risk.checked(parse_batch([({"body": body}, {})], portfolio), model)
    outputs = inference.forecast(batch.instances)
    return postprocess.reply(batch.requests[0], batch.instances, outputs, model)


def test_a_portfolio_with_risk_keeps_its_predictions_and_answers_the_contract():
    body = {"instances": [_instance("AAA", 1), _instance("BBB", 2), _instance("VALE3", 3)],
            "risk": {"positions": [100, -50, 30]}}
    status, answer = _answer(body)
    assert status == 200 and len(answer["predictions"]) == 3
    risk = answer["risk"]
    assert set(risk) == {"value", "horizons", "levels", "var", "es", "pnl_quantiles", "contributions", "method"}
    assert risk["horizons"] == [1, 10] and risk["levels"] == [0.99, 0.975]
    closes = [instance["prices"][-1] for instance in body["instances"]]
    assert risk["value"] == pytest.approx(100 * closes[0] - 50 * closes[1] + 30 * closes[2])
    for level in ("0.99", "0.975"):
        assert all(es >= var > 0 for var, es in zip(risk["var"][level], risk["es"][level], strict=True))
        for var, parts in zip(risk["var"][level], risk["contributions"][level], strict=True):
            assert len(parts) == 3 and sum(parts) == pytest.approx(var)
    assert risk["var"]["0.99"][0] >= risk["var"]["0.975"][0]
    assert risk["pnl_quantiles"]["0.01"][0] == pytest.approx(-risk["var"]["0.99"][0], rel=0.05)
    assert risk["method"]["dependence"]["days"] == 59 and risk["method"]["scenarios"] == 4000
    assert "currencies" in risk["method"]  # a B3 ticker beside US ones: said, not converted
    assert _answer(body)[1]["risk"] == risk  # seeded by the request: the same numbers again


def test_a_portfolio_of_one_ticker_works_and_same_exchange_says_nothing_of_currencies():
    status, answer = _answer({"instances": [_instance("AAA", 1)], "risk": {"positions": [10], "horizons": [3],
                                                                        "levels": [0.95]}})
    assert status == 200 and list(answer["risk"]["var"]) == ["0.95"] and len(answer["risk"]["var"]["0.95"]) == 1
    assert "currencies" not in answer["risk"]["method"]


@pytest.mark.parametrize(("risk", "message"), [
    ([1, 2], "'risk' must be an object"),
    ({"positions": [1, 2], "alpha": 1}, "unknown 'risk' field(s) 'alpha'"),
    ({}, "'positions' must be a list of 2 finite numbers"),
    ({"positions": [1]}, "'positions' must be a list of 2 finite numbers"),
    ({"positions": [1, "2"]}, "'positions' must be a list of 2 finite numbers"),
    ({"positions": [1, True]}, "'positions' must be a list of 2 finite numbers"),
    ({"positions": [1, float("nan")]}, "'positions' must be a list of 2 finite numbers"),
    ({"positions": [1, 1e300]}, "'positions' must be a list of 2 finite numbers"),
    ({"positions": [0, 0.0]}, "'positions' are all zero"),
    ({"positions": [1, 2], "levels": [1.0]}, "'levels' must be 1 to 10 different numbers between 0.5 and 1"),
    ({"positions": [1, 2], "levels": [0.5]}, "'levels' must be"),
    ({"positions": [1, 2], "levels": [0.99, 0.99]}, "'levels' must be"),
    ({"positions": [1, 2], "levels": []}, "'levels' must be"),
    ({"positions": [1, 2], "horizons": [0]}, "'horizons' must be 1 to 10 different whole numbers"),
    ({"positions": [1, 2], "horizons": [1.5]}, "'horizons' must be"),
    ({"positions": [1, 2], "horizons": [11]}, "'horizons' reach 11 trading days; these models forecast 1 to 10"),
])
def test_each_bad_risk_field_is_the_requests_400_naming_it(risk, message):
    status, answer = _answer({"instances": [_instance("AAA", 1), _instance("BBB", 2)], "risk": risk})
    assert status == 400 and answer["message"].startswith(message), answer


@pytest.mark.parametrize(("instances", "message"), [
    ([_instance("AAA", 1), _instance("BBB", 2, last_date=None)],
     "instance 1 (BBB) has no 'last_date': the risk aligns"),
    ([_instance("AAA", 1), _instance("ZZZ", 2)], "instance 1: stock 'ZZZ' has no deployed model"),
    ([_instance("AAA", 1, days=20), _instance("BBB", 2, days=20)], "the instances' bars share 20 trading days"),
    ([_instance("AAA", 1), _instance("BBB", 2, last_date="2025-08-01")], "the instances' bars share"),
])
def test_a_bad_or_unalignable_instance_fails_the_whole_risk_request(instances, message):
    status, answer = _answer({"instances": instances, "risk": {"positions": [1, 2]}})
    assert status == 400 and answer["message"].startswith(message), answer


def test_risk_on_a_single_request_says_to_use_instances():
    status, answer = _answer({**_instance("AAA", 1), "risk": {"positions": [1]}})
    assert status == 400 and "'risk' is a portfolio's: send {\"instances\"" in answer["message"]


def test_the_model_reads_model_configs_risk_settings_and_refuses_unknown_ones():
    portfolio = _portfolio()
    assert Model.configured(portfolio, {"scenarios": 123, "tail_shape": 0.2, "min_days": 30}) == \
        Model(portfolio, Sampler(123, tail_shape=0.2, min_days=30))
    assert Model.configured(portfolio, None) == Model(portfolio)
    with pytest.raises(ValueError, match=r"unknown risk setting\(s\) \['tail_shapes'\]"):
        Model.configured(portfolio, {"tail_shapes": 0.2})


def test_the_risks_checks_come_before_any_forward_pass(monkeypatch):
    """A horizon beyond the models', or a forecast without its last_date, is the request's 400 while its
    forecasts are not yet computed: `checked` runs between parsing and inference."""
    portfolio = _portfolio()
    model = Model(portfolio, Sampler(100))
    for body, message in (
            ({"instances": [_instance("AAA", 1), _instance("BBB", 2)], "risk": {"positions": [1, 2],
                                                                                "horizons": [11]}}, "'horizons' reach"),
            ({"instances": [_instance("AAA", 1), _instance("BBB", 2, last_date=None)], "risk": {"positions": [1, 2]}},
             "instance 1 (BBB) has no 'last_date'")):
        batch = risk.checked(parse_batch([({"body": body}, {})], portfolio), model)
        assert isinstance(batch.requests[0], BadRequest) and str(batch.requests[0]).startswith(message)
    assert isinstance(risk.checked(parse_batch([({"body": {"instances": [_instance("AAA", 1)], "risk": {
        "positions": [1]}}}, {})], portfolio), None).requests[0], BadRequest)  # a server answering no risk


_ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=12)
_NUMBER = st.integers(-10**15, 10**15) | st.floats(allow_nan=True, allow_infinity=True) | _ANY
_RISK = st.fixed_dictionaries({}, optional={"positions": st.lists(_NUMBER, min_size=2, max_size=2) | _ANY,
                                            "levels": st.lists(st.floats(0.4, 1.1) | _ANY, max_size=3) | _ANY,
                                            "horizons": st.lists(st.integers(-2, 12) | _ANY, max_size=3) | _ANY,
                                            "other": _ANY}) | _ANY


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(risk=_RISK)
def test_any_risk_value_is_answered_finite_or_is_a_400(risk):
    status, answer = _answer({"instances": [_instance("AAA", 1), _instance("BBB", 2)], "risk": risk}, scenarios=200)
    assert status in (200, 400), answer
    json.dumps(answer, allow_nan=False)  # no NaN or infinity in any answer
    if status == 200:
        assert set(answer["risk"]["var"]) == {f"{level:g}" for level in answer["risk"]["levels"]}
