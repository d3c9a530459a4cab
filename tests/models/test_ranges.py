"""Calibration on a series whose true distribution is known: a simulated GARCH(1,1).

Returns r_t = sigma_t e_t with sigma_t^2 = omega + alpha r_{t-1}^2 + beta sigma_{t-1}^2 (Student-t
shocks, as daily returns have): volatility clusters, so a constant-width range over-covers in calm
spells and under-covers in wild ones, while a forecaster that tracks sigma covers about 80 % throughout.
Each day is walked in 50 steps, which gives it an open, a high and a low: the day's range measures sigma
with less noise than its close-to-close return, so the range baselines should be sharper.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from stockcast.data.datamodule import make_windows
from stockcast.errors import StockcastError
from stockcast.eval.baselines import EmpiricalNaive, Ewma, Har
from stockcast.metrics import Quantiles, distribution_metrics
from stockcast.models.module import Forecaster, PinballLoss
from stockcast.models.net import BARS, ForecastNet

LEVELS = [round(0.05 * k, 2) for k in range(1, 20)]
WINDOW, CONTEXT, HORIZON = 20, 100, 10


def garch_bars(days: int, seed: int, steps: int = 50) -> np.ndarray:
    """[days, 4] bars (Close, Open, High, Low) from GARCH(1,1) returns: omega 8e-6, alpha 0.08, beta 0.90 (about
    2 % daily volatility), each day a walk of `steps` normal steps from the previous close (no overnight gap)."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(df=6, size=days) / np.sqrt(6 / 4)  # unit variance
    variance, sigmas = 4e-4, np.empty(days)
    for day in range(days):
        sigmas[day] = np.sqrt(variance)
        variance = 8e-6 + 0.08 * (sigmas[day] * shocks[day]) ** 2 + 0.90 * variance
    returns = sigmas * shocks
    # A Brownian bridge from 0 to the day's return, with the day's volatility, is the path within the day.
    time = np.linspace(1 / steps, 1, steps)
    walk = np.cumsum(rng.normal(size=(days, steps)), axis=1) / np.sqrt(steps)  # [days, steps]
    path = (walk - time * walk[:, -1:]) * sigmas[:, None] + time * returns[:, None]  # log moves from the open
    path = np.concatenate([np.zeros((days, 1)), path], axis=1)  # [days, steps + 1]
    opens = 50 * np.exp(np.concatenate([[0.0], np.cumsum(returns)[:-1]]))
    prices = opens[:, None] * np.exp(path)
    return np.stack([prices[:, -1], prices[:, 0], prices.max(axis=1), prices.min(axis=1)], axis=1)


@pytest.fixture(scope="module")
def windows() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Training and test windows of bars [N, C, 4] and their next closes [N, H]: 3,000 days to fit on,
    the next 2,000 to score (fewer would leave the coverage a sampling accident)."""
    bars = garch_bars(5000, seed=7)
    return {"train": make_windows(bars[:3000], CONTEXT, HORIZON), "test": make_windows(bars[3000 - CONTEXT:], CONTEXT,
                                                                                       HORIZON)}


def _coverage(forecast: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return distribution_metrics(Quantiles(forecast, np.array(LEVELS)), targets, inputs[:, -1, 0], "test")


def test_ewma_covers_80_percent_and_the_constant_range_does_not_track_volatility(windows):
    (train_in, train_out), (test_in, test_out) = windows["train"], windows["test"]
    ewma = _coverage(Ewma(LEVELS).fit(train_in, train_out).predict(test_in), test_in, test_out)
    naive = _coverage(EmpiricalNaive(LEVELS).fit(train_in, train_out).predict(test_in), test_in, test_out)
    print(f"\nGARCH: EWMA 80 % coverage {ewma['test_coverage_80']:.3f}, "
          f"naive-empirical {naive['test_coverage_80']:.3f}")
    assert ewma["test_coverage_80"] == pytest.approx(0.80, abs=0.03)
    assert ewma["test_crps"] < naive["test_crps"]  # tracking sigma is worth something on GARCH data


@pytest.mark.parametrize("estimator", ["garman_klass", "parkinson", "rogers_satchell"])
def test_range_baselines_cover_80_percent_and_are_sharper_than_squared_returns(windows, estimator):
    (train_in, train_out), (test_in, test_out) = windows["train"], windows["test"]
    ewma = _coverage(Ewma(LEVELS).fit(train_in, train_out).predict(test_in), test_in, test_out)
    ranged = _coverage(Ewma(LEVELS, estimator).fit(train_in, train_out).predict(test_in), test_in, test_out)
    har = _coverage(Har(LEVELS, estimator).fit(train_in, train_out).predict(test_in), test_in, test_out)
    print(f"\nGARCH bars, {estimator}: CRPS EWMA {ewma['test_crps']:.4f}, range EWMA {ranged['test_crps']:.4f}, "
          f"HAR {har['test_crps']:.4f}; 80 % coverage {ranged['test_coverage_80']:.3f} / {har['test_coverage_80']:.3f}")
    for found in (ranged, har):
        assert found["test_coverage_80"] == pytest.approx(0.80, abs=0.03)
        assert found["test_crps"] < ewma["test_crps"]


@pytest.mark.slow
def test_a_short_trained_quantile_net_covers_80_percent(windows):
    (train_in, train_out), (test_in, test_out) = windows["train"], windows["test"]
    torch.manual_seed(0)
    net = ForecastNet(["Close"], hidden=16, layers=1, dropout=0.0, horizon=HORIZON, quantiles=LEVELS,
                      window=WINDOW, context=CONTEXT)
    inputs, targets = torch.tensor(train_in[..., :1]), torch.tensor(train_out)
    net.set_scaler([float(train_in[..., 0].min())], [float(train_in[..., 0].max())], 1.0)
    net.calibrate(inputs, targets)  # as the pipeline does
    model = Forecaster(net, optimizer=lambda params: torch.optim.Adam(params, lr=1e-3), quantiles=LEVELS)
    loader = DataLoader(TensorDataset(inputs.float(), targets.float()), batch_size=64, shuffle=True)
    L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False).fit(model, loader)
    with torch.no_grad():
        forecast = net.eval()(torch.tensor(test_in[..., :1], dtype=torch.float32)).double().numpy()
    coverage = _coverage(forecast, test_in, test_out)["test_coverage_80"]
    print(f"\nGARCH: quantile net 80 % coverage {coverage:.3f}")
    assert coverage == pytest.approx(0.80, abs=0.03)


def test_an_untrained_range_net_is_the_range_ewma_baseline(windows):
    """Calibrated on the training windows, the net starts at the baseline the pipeline scores it against: the
    LSTM can only add what the bars say beyond sigma."""
    (train_in, train_out), (test_in, _) = windows["train"], windows["test"]
    net = ForecastNet(list(BARS), hidden=8, layers=1, horizon=HORIZON, quantiles=LEVELS, window=WINDOW,
                      context=CONTEXT, volatility="garman_klass")
    net.calibrate(torch.tensor(train_in), torch.tensor(train_out))
    with torch.no_grad():
        served = net.eval()(torch.tensor(test_in, dtype=torch.float32)).double().numpy()
    baseline = Ewma(LEVELS, "garman_klass").fit(train_in, train_out).predict(test_in)
    np.testing.assert_allclose(served, baseline, rtol=1e-4)


def test_volatility_weighting_scores_the_loss_in_log_price_units():
    """Pinball is positively homogeneous: standardized changes weighted by sigma sqrt(h) are the pinball loss of
    the log changes themselves against the decoded quantiles, over the mean weight."""
    torch.manual_seed(0)
    quantiles, standardized, scale = torch.randn(8, 3, len(LEVELS)).sort(-1).values, torch.randn(8, 3), torch.rand(8, 3)
    loss = PinballLoss(LEVELS)
    weighted = loss(quantiles, standardized, scale)
    in_log_prices = loss(quantiles * scale[..., None], standardized * scale) / scale.mean()
    assert weighted == pytest.approx(float(in_log_prices), rel=1e-6)
    assert loss(quantiles, standardized, torch.ones(8, 3)) == pytest.approx(float(loss(quantiles, standardized)))
    level_net = ForecastNet(["Close"], horizon=3, quantiles=LEVELS, target="level")
    with pytest.raises(StockcastError, match="volatility needs the pinball loss and model.net.target=volatility"):
        Forecaster(level_net, optimizer=torch.optim.Adam, quantiles=LEVELS, weighting="volatility")
