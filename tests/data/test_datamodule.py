"""Windows, chronological split without leakage, scaler fit on the training rows only."""

import numpy as np
import pandas as pd
import pytest

from stockcast.data.datamodule import PriceDataModule, make_windows
from stockcast.data.download import Downloader
from stockcast.errors import StockcastError


def test_make_windows_by_hand():
    values = np.arange(1.0, 8.0)[:, None]  # closes 1..7, one feature
    inputs, targets = make_windows(values, window=3, horizon=2)
    assert inputs.shape == (3, 3, 1) and targets.shape == (3, 2)
    assert inputs[0, :, 0].tolist() == [1, 2, 3] and targets[0].tolist() == [4, 5]
    assert inputs[-1, :, 0].tolist() == [3, 4, 5] and targets[-1].tolist() == [6, 7]


def datamodule(tmp_path, **kwargs) -> PriceDataModule:
    options = {"stock": "VALE3", "start": "2018-01-01", "end": "2025-11-07",
               "downloader": Downloader(tmp_path, use_sample=False)} | kwargs
    dm = PriceDataModule(**options)
    dm.setup()
    return dm


@pytest.mark.usefixtures("shared_data")
def test_targets_stay_inside_their_period(tmp_path):
    dm = datamodule(tmp_path, val_start="2023-01-01", test_start="2024-06-01")
    val_start, test_start = pd.Timestamp("2023-01-01"), pd.Timestamp("2024-06-01")
    assert all(d[-1] < val_start for d in dm.train.target_dates)
    assert all(val_start <= d[0] and d[-1] < test_start for d in dm.val.target_dates)
    assert all(test_start <= d[0] for d in dm.test.target_dates)
    # The first test window targets the first test day exactly, reading the 20 days before it.
    prices = dm.prices["VALE3.SA"]
    first_test_row = prices.index.searchsorted(test_start)
    assert dm.test.target_dates[0][0] == prices.index[first_test_row]
    expected_inputs = prices["Close"].iloc[first_test_row - 20:first_test_row].to_numpy()
    np.testing.assert_allclose(dm.test.inputs[0, :, 0].numpy(), expected_inputs, rtol=1e-6)
    # Windows straddling a boundary are dropped: each period loses horizon - 1 windows.
    rows_in_test = len(prices) - first_test_row
    assert len(dm.test) == rows_in_test - 10 + 1


@pytest.mark.usefixtures("shared_data")
def test_fraction_split_is_chronological(tmp_path):
    dm = datamodule(tmp_path)
    assert dm.train.target_dates[-1][-1] < dm.val.target_dates[0][0]
    assert dm.val.target_dates[-1][-1] < dm.test.target_dates[0][0]
    assert len(dm.test) == pytest.approx(0.15 * len(dm.prices["VALE3.SA"]), abs=10)


def test_scaler_sees_training_rows_only(tmp_path, shared_data):
    before = datamodule(tmp_path / "a", test_start="2024-01-01", val_start="2023-01-01").scaler
    prices = pd.read_csv(shared_data / "VALE3.SA.csv")
    prices.loc[prices["Date"] >= "2023-01-01", ["Open", "High", "Low", "Close"]] *= 10  # change val+test only
    (tmp_path / "changed").mkdir()
    prices.to_csv(tmp_path / "changed" / "VALE3.SA.csv", index=False)
    after = datamodule(tmp_path / "b", test_start="2024-01-01", val_start="2023-01-01",
                       downloader=Downloader(tmp_path / "b", extra_dirs=[str(tmp_path / "changed")],
                                             use_sample=False)).scaler
    assert after.feature_min == before.feature_min and after.feature_max == before.feature_max
    assert after.change_std == before.change_std


@pytest.mark.usefixtures("shared_data")
def test_more_features(tmp_path):
    dm = datamodule(tmp_path, features=["Close", "Volume"])
    assert dm.train.inputs.shape[1:] == (20, 2) and len(dm.scaler.feature_min) == 2


@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("kwargs, message", [
    ({"start": "2025-09-01"}, "too little history for context 20 \\+ horizon 10"),
    ({"features": ["Volume", "Close"]}, "first feature must be Close"),
    ({"window": 0}, "must be positive"),
    ({"val_start": "2030-01-01"}, "split dates must satisfy"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "sum below 1"),
])
def test_bad_settings_get_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(StockcastError, match=message):
        datamodule(tmp_path, **kwargs)


@pytest.mark.usefixtures("shared_data")
def test_pooled_tickers_share_split_dates_and_never_mix_in_a_window(tmp_path):
    dm = datamodule(tmp_path, stock=["vale3", "PETR4.SA", "AAPL"], test_start="2024-06-03", val_start="2023-06-01")
    assert dm.symbols == ["VALE3.SA", "PETR4.SA", "AAPL"] and dm.symbol == "VALE3.SA+PETR4.SA+AAPL"
    assert len(dm.test) == sum(len(periods["test"]) for periods in dm.by_symbol.values())
    for symbol, periods in dm.by_symbol.items():
        split = periods["test"]
        closes = dm.prices[symbol]["Close"]
        assert split.target_dates[0][0] == closes.loc["2024-06-03":].index[0]
        # Each window's inputs are consecutive closes of this ticker only.
        last_input_date = closes.index[closes.index.get_loc(split.target_dates[5][0]) - 1]
        assert split.inputs[5, -1, 0].item() == pytest.approx(closes[last_input_date], rel=1e-6)
    apple_train_max = dm.prices["AAPL"].loc[:"2023-05-31", "Close"].max()
    assert dm.scaler.feature_max[0] == pytest.approx(apple_train_max)  # one scaler over all tickers


def test_repairs_of_a_users_file_are_recorded_for_the_run(tmp_path, shared_data):
    """An exact duplicate row in a user's CSV is dropped with a warning that the run is tagged with."""
    mine = tmp_path / "mine"
    mine.mkdir()
    lines = (shared_data / "VALE3.SA.csv").read_text().splitlines(keepends=True)
    (mine / "VALE3.SA.csv").write_text("".join([*lines[:200], lines[199], *lines[200:]]))
    dm = datamodule(tmp_path, downloader=Downloader(tmp_path / "cache", extra_dirs=[str(mine)], use_sample=False))
    assert any("dropped 1 exact duplicate row(s)" in warning for warning in dm.warnings), dm.warnings


def test_a_pooled_model_leaves_out_tickers_it_cannot_use_and_a_single_one_fails(tmp_path, sp100):
    """sp100/: APTV has 18 rows; CFG starts on 2014-09-24, after the validation start chosen here, so it has no
    training window."""
    downloader = Downloader(tmp_path, extra_dirs=[str(sp100)], use_sample=False)
    options = {"start": "2013-01-01", "end": "2017-12-29", "downloader": downloader, "context": 100}
    dm = datamodule(tmp_path, stock=["AAPL", "APTV", "CFG", "AMZN"], val_start="2014-06-02", test_start="2016-01-04",
                    **options)
    assert dm.symbols == ["AAPL", "AMZN"] and dm.symbol == "AAPL+AMZN" and set(dm.by_symbol) == {"AAPL", "AMZN"}
    assert "APTV has 18 trading days" in dm.skipped["APTV"] and "CFG: the train period has no" in dm.skipped["CFG"]
    assert sum("left out of the pooled model: APTV" in warning for warning in dm.warnings) == 1
    with pytest.raises(StockcastError, match="APTV has 18 trading days"):
        datamodule(tmp_path, stock="APTV", **options)
    with pytest.raises(StockcastError, match="no ticker of the pooled model is usable: APTV has 18"):
        datamodule(tmp_path, stock=["APTV", "BHF"], **options)


def test_a_long_pooled_name_is_shortened_for_mlflow(tmp_path):
    dm = PriceDataModule([f"T{number:03d}" for number in range(40)], "2020-01-02", None, Downloader(tmp_path))
    assert dm.symbol.startswith("T000+39-more-") and len(dm.symbol) < 60
