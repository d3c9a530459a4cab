"""`make risk`'s parts on synthetic markets: the portfolios its config lists are the seeded rule's, every method
walks the same origins and a right model passes its tests, the tables have the columns checks read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockcast.config import load_config
from stockcast.eval import risk
from stockcast.eval.risk_methods import FilteredHistorical, Historical, RiskMetrics, Served, Window
from stockcast.portfolios import B3_KINDS, KINDS, draw, draw_b3
from stockcast.runtime.copula import Sampler
from stockcast.universe import SHARED, members
from tests.bundles import LEVELS

SIGMA = np.array([0.01, 0.015, 0.02])
CORRELATION = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])


def test_the_config_lists_the_seeded_rules_portfolios():
    cfg = load_config("risk")
    listed = {name: dict(weights) for name, weights in cfg.portfolios.items()}
    assert listed == draw() and len(listed) == sum(KINDS.values()) + 1 >= 50
    assert set(listed["shared"]) == set(SHARED)
    for name, weights in listed.items():
        assert sum(abs(w) for w in weights.values()) == pytest.approx(1, abs=1e-3), name
        assert len(weights) == (6 if name == "shared" else 10 if "equal" in name else 20)
        assert (min(weights.values()) < 0) == name.startswith("long_short"), name
    b3 = {name: dict(weights) for name, weights in cfg.portfolios_b3.items()}
    assert b3 == draw_b3() and len(b3) == sum(B3_KINDS.values()) + 1 >= 20
    pool = set(members("b3")) | set(SHARED)
    for name, weights in b3.items():
        assert set(weights) <= pool and sum(abs(w) for w in weights.values()) == pytest.approx(1, abs=1e-3), name
        assert len(weights) == (6 if name == "shared" else 10 if "equal" in name else 12)
        assert (min(weights.values()) < 0) == name.startswith("b3_long_short"), name
    assert {year.portfolios for year in cfg.tests.values()} == {"portfolios", "portfolios_b3"}


def _market(days: int = 700) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Three tickers of correlated normal log returns, each day's forecast their true quantiles at every horizon
    (sqrt(h) wide)."""
    rng = np.random.default_rng(5)
    returns = rng.multivariate_normal(np.zeros(3), CORRELATION, days) * SIGMA
    dates = pd.bdate_range("2023-01-02", periods=days)
    closes = pd.DataFrame(100 * np.exp(np.cumsum(returns, axis=0)), index=dates, columns=["A", "B", "C"])
    z = stats.norm.ppf(LEVELS)
    steps = np.sqrt(np.arange(1, 11))[:, None]
    forecasts = {ticker: pd.Series([close * np.exp(SIGMA[k] * steps * z) for close in closes[ticker]], index=dates,
                                   dtype=object) for k, ticker in enumerate(closes)}
    return closes, forecasts


def test_every_method_walks_the_same_days_and_a_right_model_passes():
    closes, forecasts = _market()
    weights = {"A": 0.5, "B": 0.3, "C": -0.2}
    methods = {risk.SERVED: Served(Sampler(4000)), risk.INDEPENDENT: Served(Sampler(4000), independent=True),
               "historical": Historical(), "riskmetrics": RiskMetrics(), "fhs": FilteredHistorical()}
    span = (closes.index[260], closes.index[-12])
    walked = risk.walk("synthetic", weights, closes, forecasts, np.array(LEVELS), methods, span, 250, 100)
    days = walked.daily.groupby("method").date.apply(tuple)
    assert days.nunique() == 1 and len(days.iloc[0]) == 429
    backtest, joint = risk.scored("synthetic", walked)
    table = pd.DataFrame(backtest, columns=risk.BACKTEST_COLUMNS)
    assert list(pd.DataFrame(joint).columns) == risk.JOINT_COLUMNS and len(joint) == 5
    assert len(table) == 5 * 3 and set(table.zone[(table.horizon == 1) & (table.level == 0.99)]) <= {
        "green", "yellow", "red"}
    served = table[table.method == risk.SERVED].set_index(["horizon", "level"])
    assert (served.kupiec_p > 0.05).all() and (served.cc_p > 0.05).all(), served
    assert served.loc[(10, 0.99), "days"] == 43  # non-overlapping 10-day windows
    assert served.loc[(1, 0.975), "z2"] > -0.7
    # the true model's joint forecast beats the independent one's on the variogram score (dependence)
    scores = pd.DataFrame(joint).set_index("method")
    assert scores.loc[risk.SERVED, "variogram"] < scores.loc[risk.INDEPENDENT, "variogram"]
    # the goals read the summary and the pooled tests, FHS among the peers
    tests = risk.pooled(walked.daily.assign(portfolio="synthetic"), walked.joint.assign(portfolio="synthetic"),
                        [risk.INDEPENDENT, risk.RISKMETRICS, risk.HISTORICAL, risk.FHS])
    goals = risk.goals(risk.summary(table, pd.DataFrame(joint)), tests).set_index("measure")
    assert len(goals) == 8 and set(goals.met) <= {"yes", "no"}
    assert goals.loc["1-day VaR 99 % and 97.5 %: Kupiec p >= 0.05", "met"] == "yes"  # one portfolio, passing
    assert "vs FHS p" in goals.loc["mean FZ0 loss vs historical simulation, RiskMetrics and FHS", "served"]


def test_the_peers_var_is_their_textbook_formula():
    """RiskMetrics: z sqrt(w' S w) of the EWMA covariance; historical simulation: the window's empirical quantile."""
    closes, _ = _market(300)
    window = Window(closes.to_numpy()[-251:], np.array([0.5, 0.3, 0.2]), np.zeros((3, 10, 19)), np.array(LEVELS), 1)
    asked = ((1, 0.99), (10, 0.99))
    returns = np.log1p(window.returns)
    covariance = np.cov(returns[:25].T, bias=True)
    for row in returns:
        covariance = 0.94 * covariance + 0.06 * np.outer(row, row)
    spread = np.sqrt(window.weights @ covariance @ window.weights)
    found = RiskMetrics()(window, asked, 10)
    assert found.var[1, 0.99] == pytest.approx(stats.norm.ppf(0.99) * spread)
    assert found.var[10, 0.99] == pytest.approx(np.sqrt(10) * found.var[1, 0.99])
    pnl = np.sort(window.returns @ window.weights)
    assert Historical()(window, asked, 10).var[1, 0.99] == pytest.approx(-pnl[int(round((1 - 0.99) * 250)) - 1])


def test_make_risk_chooses_on_validation_then_scores_each_year_into_its_own_run(tmp_path, monkeypatch):
    """backtest() end to end on the synthetic market (its folds' forecasts stand in for the MLflow runs'): the
    grid walked on the validation span, the choice applied to each test year, a run per year with the artifacts
    checks read, and the report's section showing every year."""
    from mlflow import MlflowClient

    from stockcast.eval import risk_backtest
    from stockcast.eval.report import risk_section
    from tests.bundles import tiny_bundle
    from tests.conftest import compose_config

    closes, forecasts = _market()
    bundle = tiny_bundle("g", {"symbol": "g"})

    def synthetic(client, uri, fold, portfolios, span):
        return risk_backtest.Marginals(f"run-{fold}", bundle, forecasts,
                                       {name: closes[list(weights)] for name, weights in portfolios.items()})

    monkeypatch.setattr(risk_backtest, "_forecasts", synthetic)
    cfg = compose_config(
        "risk", tmp_path, "validation.start=2024-01-01", "validation.end=2024-03-31",
        "tests.risk2025.start=2025-01-01", "tests.risk2025.end=2025-03-31",
        "tests.risk2024.start=2024-04-01", "tests.risk2024.end=2024-06-30",
        "+portfolios_synthetic={pair: {A: 0.6, B: 0.4}, hedged: {A: 0.5, C: -0.5}}",
        "validation.portfolios=portfolios_synthetic", "tests.risk2025.portfolios=portfolios_synthetic",
        "tests.risk2024.portfolios=portfolios_synthetic", "grid.fitted_tail=[false]", "grid.reaction=[0.0,1.0]",
        "grid.correlation_decay=[null]", "scenarios=1000", "validation_scenarios=300", "ensemble=50")
    results = risk_backtest.backtest(cfg, tmp_path / "outputs")
    assert [result.run_name for result in results] == ["risk2025", "risk2024"]
    assert len(results[0].tails) == 2 and set(results[0].chosen) == set(cfg.grid) | {"scenarios"}
    client = MlflowClient(cfg.logger.tracking_uri)
    for result in results:
        names = {item.path for item in client.list_artifacts(result.run_id)}
        assert {risk_backtest.RISK_BACKTEST, risk_backtest.JOINT_SCORES, "risk_goals.csv",
                "validation_tails.csv"} <= names
        assert list(result.backtest.columns) == risk.BACKTEST_COLUMNS
        assert client.get_run(result.run_id).data.params["reaction"] == str(result.chosen["reaction"])
    section = risk_section(client)
    assert "### 2024" in section and "### 2025" in section and "Chosen on validation" in section
