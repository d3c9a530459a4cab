"""ForecastNet: shapes for each target form, and transforms that invert each other."""

import pytest
import torch

from stockcast.models.net import ForecastNet


@pytest.fixture
def prices() -> torch.Tensor:
    torch.manual_seed(0)
    closes = 50 + torch.cumsum(torch.randn(4, 20), dim=1)  # [B=4, W=20]
    volume = torch.rand(4, 20) * 1e6
    return torch.stack([closes, volume], dim=-1)  # [4, 20, 2]


@pytest.mark.parametrize("target", ["relative", "level"])
def test_output_shape_and_transform_round_trip(prices, target):
    net = ForecastNet(features=["Close", "Volume"], hidden=8, layers=2, horizon=10, target=target)
    net.set_scaler(feature_min=[30.0, 0.0], feature_max=[70.0, 1e6], change_std=0.05)
    assert net(prices).shape == (4, 10)
    assert net.encode_inputs(prices).shape == (4, 20, 2)
    targets = 50 + torch.rand(4, 10)
    torch.testing.assert_close(net.decode(net.encode_target(targets, prices), prices), targets)


def test_relative_form_is_scale_free_in_price(prices):
    """Relative inputs depend on prices only through ratios to the last close."""
    net = ForecastNet(features=["Close"], hidden=8, layers=1, horizon=3, target="relative")
    closes = prices[..., :1]
    torch.testing.assert_close(net.encode_inputs(closes), net.encode_inputs(closes * 3))
    torch.testing.assert_close(net(closes * 3), 3 * net(closes))


def test_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        ForecastNet(features=["Close"], target="log")
    with pytest.raises(ValueError, match="start with Close"):
        ForecastNet(features=["Volume", "Close"])
