"""Calibration on a series whose true distribution is known: a simulated GARCH(1,1).

Returns r_t = sigma_t e_t with sigma_t^2 = omega + alpha r_{t-1}^2 + beta sigma_{t-1}^2 (Student-t
shocks, as daily returns have): volatility clusters, so a constant-width range over-covers in calm
spells and under-covers in wild ones, while a forecaster that tracks sigma covers about 80 % throughout.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from stockcast.data.datamodule import make_windows
from stockcast.eval.baselines import EmpiricalNaive, Ewma
from stockcast.metrics import Quantiles, distribution_metrics
from stockcast.models.module import Forecaster
from stockcast.models.net import ForecastNet, ewma_variance

LEVELS = [round(0.05 * k, 2) for k in range(1, 20)]
WINDOW, CONTEXT, HORIZON = 20, 100, 10


def garch_closes(days: int, seed: int) -> np.ndarray:
    """Closes from GARCH(1,1) returns: omega 8e-6, alpha 0.08, beta 0.90 (about 2 % daily volatility)."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(df=6, size=days) / np.sqrt(6 / 4)  # unit variance
    variance, returns = 4e-4, np.empty(days)
    for day in range(days):
        returns[day] = np.sqrt(variance) * shocks[day]
        variance = 8e-6 + 0.08 * returns[day] ** 2 + 0.90 * variance
    return 50 * np.exp(np.cumsum(returns))


@pytest.fixture(scope="module")
def windows() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Training and test windows of closes [N, C] and their next closes [N, H]: 3,000 days to fit on,
    the next 2,000 to score (fewer would leave the coverage a sampling accident)."""
    closes = garch_closes(5000, seed=7)
    train = make_windows(closes[:3000, None], CONTEXT, HORIZON)
    test = make_windows(closes[3000 - CONTEXT:, None], CONTEXT, HORIZON)
    return {"train": (train[0][..., 0], train[1]), "test": (test[0][..., 0], test[1])}


def _coverage(forecast: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return distribution_metrics(Quantiles(forecast, np.array(LEVELS)), targets, inputs[:, -1], "test")


def test_ewma_covers_80_percent_and_the_constant_range_does_not_track_volatility(windows):
    (train_in, train_out), (test_in, test_out) = windows["train"], windows["test"]
    ewma = _coverage(Ewma(LEVELS).fit(train_in, train_out).predict(test_in), test_in, test_out)
    naive = _coverage(EmpiricalNaive(LEVELS).fit(train_in, train_out).predict(test_in), test_in, test_out)
    print(f"\nGARCH: EWMA 80 % coverage {ewma['test_coverage_80']:.3f}, "
          f"naive-empirical {naive['test_coverage_80']:.3f}")
    assert ewma["test_coverage_80"] == pytest.approx(0.80, abs=0.03)
    assert ewma["test_crps"] < naive["test_crps"]  # tracking sigma is worth something on GARCH data


@pytest.mark.slow
def test_a_short_trained_quantile_net_covers_80_percent(windows):
    (train_in, train_out), (test_in, test_out) = windows["train"], windows["test"]
    torch.manual_seed(0)
    net = ForecastNet(["Close"], hidden=16, layers=1, dropout=0.0, horizon=HORIZON, quantiles=LEVELS,
                      window=WINDOW, context=CONTEXT)
    inputs, targets = torch.tensor(train_in[..., None]), torch.tensor(train_out)
    returns = inputs[:, :, 0].log().diff(dim=1)
    median_variance = float(ewma_variance(returns, returns.square().mean()).median())  # as the data module does
    net.set_scaler([float(train_in.min())], [float(train_in.max())], 1.0, median_variance)
    model = Forecaster(net, optimizer=lambda params: torch.optim.Adam(params, lr=1e-3), quantiles=LEVELS)
    loader = DataLoader(TensorDataset(inputs.float(), targets.float()), batch_size=64, shuffle=True)
    L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False).fit(model, loader)
    with torch.no_grad():
        forecast = net.eval()(torch.tensor(test_in[..., None], dtype=torch.float32)).double().numpy()
    coverage = _coverage(forecast, test_in, test_out)["test_coverage_80"]
    print(f"\nGARCH: quantile net 80 % coverage {coverage:.3f}")
    assert coverage == pytest.approx(0.80, abs=0.03)
