"""ForecastNet: shapes for each target form, transforms that invert each other, quantiles that never cross."""

import math

import pytest
import torch

from stockcast.models.net import EWMA_LAMBDA, ForecastNet, daily_variance, ewma_variance
from stockcast.runtime.bars import widen

LEVELS = [round(0.05 * i, 2) for i in range(1, 20)]


@pytest.fixture
def prices() -> torch.Tensor:
    torch.manual_seed(0)
    closes = 50 + torch.cumsum(torch.randn(4, 20), dim=1)  # [B=4, W=20]
    volume = torch.rand(4, 20) * 1e6
    return torch.stack([closes, volume], dim=-1)  # [4, 20, 2]


def random_walks(generator: torch.Generator, batch: int, rows: int) -> torch.Tensor:
    """[batch, rows, 1] positive closes with a different daily volatility per walk (0.1 % .. 10 %)."""
    sigma = 10 ** (torch.rand(batch, 1, generator=generator) * 2 - 3)
    returns = torch.randn(batch, rows, generator=generator) * sigma
    return ((torch.rand(batch, 1, generator=generator) * 500 + 1) * returns.cumsum(1).exp())[..., None]


@pytest.mark.parametrize("quantiles", [None, LEVELS])
@pytest.mark.parametrize("target", ["volatility", "relative", "level"])
def test_output_shape_and_transform_round_trip(prices, target, quantiles):
    net = ForecastNet(features=["Close", "Volume"], hidden=8, layers=2, horizon=10, target=target,
                      quantiles=quantiles)
    net.set_scaler(feature_min=[30.0, 0.0], feature_max=[70.0, 1e6], change_std=0.05, median_variance=4e-4)
    assert net(prices).shape == ((4, 10) if quantiles is None else (4, 10, 19))
    width = 19 if target == "volatility" else 20  # returns: one row fewer, one feature (the scale) more
    assert net.encode_inputs(prices).shape == (4, width, 3 if target == "volatility" else 2)
    targets = 50 + torch.rand(4, 10)
    torch.testing.assert_close(net.decode(net.encode_target(targets, prices), prices), targets)


@pytest.mark.parametrize("quantiles", [None, [0.1, 0.5, 0.9]])
@pytest.mark.parametrize("target", ["volatility", "relative"])
def test_changes_forms_are_scale_free_in_price(prices, target, quantiles):
    """Inputs depend on prices only through ratios, so scaling the prices scales the forecast."""
    net = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=3, target=target, quantiles=quantiles)
    closes = prices[..., :1]
    torch.testing.assert_close(net.encode_inputs(closes), net.encode_inputs(closes * 3))
    torch.testing.assert_close(net(closes * 3), 3 * net(closes))


@pytest.mark.parametrize("target", ["volatility", "relative", "level"])
def test_quantiles_never_cross_for_any_weights(target):
    """Property over seeds: random weights (std 0.1 .. 100) and random price paths give sorted quantiles."""
    for seed in range(8):
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=5, target=target, quantiles=LEVELS)
        net.set_scaler([1.0], [600.0], 0.05, median_variance=float(torch.rand(1, generator=generator)) * 1e-3)
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.normal_(0, 10 ** (seed % 4 - 1), generator=generator)
            quantiles = net(random_walks(generator, 32, 30))  # [32, 5, 19]
        assert not quantiles.isnan().any()  # huge weights may overflow to inf, which still sorts last
        assert torch.equal(quantiles, quantiles.sort(dim=-1).values), f"seed {seed}"


def test_statistics_are_buffers_saved_with_the_weights(prices):
    net = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=3, quantiles=[0.1, 0.5, 0.9], window=10)
    net.set_scaler([1.0], [2.0], 0.05, median_variance=4e-4)
    state = net.state_dict()
    assert {"is_price", "feature_min", "feature_max", "change_std", "median_variance", "levels"} <= set(state)
    assert state["median_variance"] == pytest.approx(4e-4) and state["levels"].tolist() == pytest.approx([.1, .5, .9])
    fresh = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=3, quantiles=[0.1, 0.5, 0.9], window=10)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(prices[..., :1]), net(prices[..., :1]))
    assert "levels" not in ForecastNet(features=["Close"]).state_dict()  # a point net has no levels


def test_a_request_of_window_closes_works_and_context_reads_more():
    """`window` closes suffice (the EWMA starts from the median variance); up to `context` closes refine sigma."""
    torch.manual_seed(0)
    net = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=3, quantiles=LEVELS, window=20, context=60)
    net.set_scaler([1.0], [100.0], 0.05, median_variance=4e-4)
    history = random_walks(torch.Generator().manual_seed(1), 2, 200)  # [2, 200, 1]
    assert net(history[:, -20:]).shape == (2, 3, 19)
    assert not torch.allclose(net.volatility(history[:, -20:]), net.volatility(history[:, -60:]))
    torch.testing.assert_close(net(history), net(history[:, -60:]))  # rows before the context are not read
    with pytest.raises(ValueError, match="at least 20 rows"):
        net(history[:, -19:])


def test_volatility_is_riskmetrics_from_the_median_variance():
    returns = torch.tensor([[0.01, -0.02, 0.03]])
    variance = torch.tensor(4e-4)
    for value in returns[0]:
        variance = EWMA_LAMBDA * variance + (1 - EWMA_LAMBDA) * value**2
    torch.testing.assert_close(ewma_variance(returns.square(), torch.tensor(4e-4)), variance[None])
    net = ForecastNet(features=["Close"], horizon=2)
    net.set_scaler([1.0], [2.0], 0.05, median_variance=4e-4)
    closes = (100 * torch.cat([torch.zeros(1, 1), returns], dim=1).cumsum(1).exp())[..., None]  # [1, 4, 1]
    torch.testing.assert_close(net.volatility(closes), variance.sqrt()[None])


def test_an_untrained_quantile_head_starts_at_ewma_times_normal_quantiles():
    """With the head's weights zeroed, quantile q of step h is close * exp(Phi^-1(q) sigma sqrt(h))."""
    net = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=4, quantiles=[0.1, 0.5, 0.9])
    net.set_scaler([1.0], [2.0], 0.05, median_variance=4e-4)
    torch.nn.init.zeros_(net.head.weight)
    closes = random_walks(torch.Generator().manual_seed(2), 3, 20)
    spread = net.volatility(closes)[:, None, None] * torch.arange(1, 5).sqrt()[None, :, None]  # [3, 4, 1]
    expected = closes[:, -1:, :1] * (torch.special.ndtri(torch.tensor([0.1, 0.5, 0.9])) * spread).exp()
    torch.testing.assert_close(net(closes), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        ForecastNet(features=["Close"], target="log")
    with pytest.raises(ValueError, match="start with Close"):
        ForecastNet(features=["Volume", "Close"])
    for levels in ([], [0.5, 0.1], [0.0, 0.5], [0.5, 1.0], [0.3, 0.3]):
        with pytest.raises(ValueError, match="quantiles"):
            ForecastNet(features=["Close"], quantiles=levels)
    with pytest.raises(ValueError, match="window"):
        ForecastNet(features=["Close"], window=1)
    with pytest.raises(ValueError, match="context"):
        ForecastNet(features=["Close"], window=20, context=10)


def test_range_estimators_are_the_textbook_formulas():
    """Parkinson, Garman-Klass and Rogers-Satchell on one day; the close estimator is the squared log return."""
    bars = torch.tensor([[[100.0, 99.0, 101.0, 98.0], [103.0, 101.0, 104.0, 100.0]]], dtype=torch.float64)
    close, open_, high, low = (torch.tensor(v, dtype=torch.float64).log() for v in (103.0, 101.0, 104.0, 100.0))
    expected = {
        "close": (close - torch.tensor(100.0, dtype=torch.float64).log()) ** 2,
        "parkinson": (high - low) ** 2 / (4 * math.log(2)),
        "garman_klass": 0.5 * (high - low) ** 2 - (2 * math.log(2) - 1) * (close - open_) ** 2,
        "rogers_satchell": (high - close) * (high - open_) + (low - close) * (low - open_),
    }
    for estimator, value in expected.items():
        torch.testing.assert_close(daily_variance(bars, estimator), value.reshape(1, 1))


def test_a_day_without_range_is_zero_and_a_close_outside_it_widens_it():
    flat = torch.tensor([[[10.0, 10.0, 10.0, 10.0], [10.0, 10.0, 10.0, 10.0]]])
    assert daily_variance(flat, "garman_klass").item() == 0.0
    outside = torch.tensor([[[10.0, 10.0, 10.0, 10.0], [10.5, 10.0, 10.2, 9.9]]])  # close above the high
    widened = torch.tensor([[[10.0, 10.0, 10.0, 10.0], [10.5, 10.0, 10.5, 9.9]]])
    for estimator in ("parkinson", "garman_klass", "rogers_satchell"):
        torch.testing.assert_close(daily_variance(outside, estimator), daily_variance(widened, estimator))


def test_a_range_net_reads_ohlc_rows_and_its_sigma_is_in_close_to_close_units():
    generator = torch.Generator().manual_seed(3)
    closes = random_walks(generator, 64, 120)[..., 0]  # [64, 120]
    spread = 0.01 * torch.rand(64, 120, generator=generator)
    bars = torch.stack([closes, closes * (1 - spread / 3), closes * (1 + spread), closes * (1 - spread)], dim=-1)
    features = ["Close", "Open", "High", "Low"]
    net = ForecastNet(features, hidden=8, layers=1, horizon=3, quantiles=[0.1, 0.5, 0.9], window=20, context=100,
                      volatility="garman_klass", spans=[5, 22])
    net.set_scaler([1.0] * 4, [600.0] * 4, 0.05)
    net.calibrate(bars, bars[:, -3:, 0] * 1.01)
    ratio = daily_variance(bars[:, -100:].double(), "close").mean() / daily_variance(bars[:, -100:].double(),
                                                                                     "garman_klass").mean()
    assert float(net.variance_ratio) == pytest.approx(float(ratio), rel=1e-4)
    assert net.encode_inputs(bars).shape == (64, 19, 4 + 1 + 2)  # returns, 3 spreads, the scale, 2 spans
    forecast = net(bars)
    assert forecast.shape == (64, 3, 3) and torch.isfinite(forecast).all()
    with pytest.raises(ValueError, match="Open, High|'Open', 'High'"):
        ForecastNet(["Close"], volatility="garman_klass")
    with pytest.raises(ValueError, match="volatility"):
        ForecastNet(features, volatility="yang_zhang")
    with pytest.raises(ValueError, match="spans"):
        ForecastNet(features, window=20, context=100, spans=[100])


def _bars(generator: torch.Generator, batch: int, rows: int) -> torch.Tensor:
    """[batch, rows, 4] Close, Open, High, Low with opens and closes often outside the day's [Low, High]."""
    close = random_walks(generator, batch, rows)[..., 0]
    open_ = close * (1 + 0.01 * torch.randn(batch, rows, generator=generator))
    middle = close * (1 + 0.005 * torch.randn(batch, rows, generator=generator))
    spread = 0.01 * torch.rand(batch, rows, generator=generator) * close
    return torch.stack([close, open_, middle + spread, middle - spread], dim=-1)


@pytest.mark.parametrize("estimator", ["parkinson", "garman_klass", "rogers_satchell"])
def test_the_nets_own_widening_is_the_runtimes(estimator):
    """net.py stays self-contained (each bundle freezes its own copy), so it widens the range itself: the same
    values as bars taken through `runtime.bars.widen`, the request checks' and the data checks' rule."""
    bars = _bars(torch.Generator().manual_seed(3), 8, 30).double()
    close, open_, high, low = bars.unbind(-1)
    high, low = widen(high, low, [close, open_], torch.maximum, torch.minimum)
    widened = torch.stack([close, open_, high, low], dim=-1)
    assert (widened != bars).any()  # the case is exercised
    assert torch.equal(daily_variance(bars, estimator), daily_variance(widened, estimator))


@pytest.mark.parametrize("features", [["Close"], ["Close", "Open", "High", "Low"]])
def test_the_fast_encoding_gives_the_general_ones_values(features):
    """The encoding's shortcut for all-price inputs (target volatility) against its general path."""
    generator = torch.Generator().manual_seed(4)
    rows = _bars(generator, 6, 40)[..., :len(features)]
    net = ForecastNet(features, hidden=8, layers=1, window=20, context=40, quantiles=LEVELS,
                      volatility="close" if len(features) == 1 else "garman_klass", spans=[5])
    fast = net.encode_inputs(rows)
    net._all_prices = False  # the general path, as a net with a volume column takes it
    assert torch.allclose(net.encode_inputs(rows), fast, rtol=1e-5, atol=1e-6)


def test_the_served_forecast_is_the_combination_weight_read_from_the_bundle(tmp_path):
    """forward = weight x the net's quantiles + (1 - weight) x its start's, the weight a buffer: a bundle written
    with weight 0.25 answers that mixture when loaded, quantile by quantile, and not the net alone."""
    from stockcast.runtime.bundle import load_bundle, write_bundle

    generator = torch.Generator().manual_seed(3)
    prices = _bars(generator, 6, 60)
    net = ForecastNet(["Close", "Open", "High", "Low"], hidden=8, horizon=5, quantiles=LEVELS, window=20,
                      context=60, volatility="garman_klass", start="panel_har")
    net.set_panel_har([[0.4] * 5, [0.3] * 5, [0.2] * 5])
    net.calibrate(prices, prices[:, -5:, 0] * 1.01)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.3)
    net.weight.fill_(0.25)
    arguments = {"features": ["Close", "Open", "High", "Low"], "hidden": 8, "horizon": 5, "quantiles": LEVELS,
                 "window": 20, "context": 60, "volatility": "garman_klass", "start": "panel_har"}
    loaded = load_bundle(write_bundle(tmp_path, net.eval(), {"symbol": "X", "window": 20, "horizon": 5,
                                                             "features": arguments["features"], "net": arguments})).net
    with torch.no_grad():
        own, start = net.parts(prices)
        served = loaded(prices)
    assert float(loaded.weight) == 0.25
    torch.testing.assert_close(served, 0.25 * own + 0.75 * start)
    assert not torch.allclose(served, own, rtol=1e-3)
