"""The three CSV shapes users really bring, and the checks that keep bad prices out of training."""

import logging

import numpy as np
import pandas as pd
import pytest

from stockcast.data.prices import COLUMNS, check_prices, read_price_csv, warn_split_jumps, write_price_csv
from stockcast.errors import StockcastError


def assert_canonical(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == COLUMNS and frame.index.name == "Date"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert not frame[["Open", "High", "Low", "Close"]].isna().all(axis=1).any()


def test_plain_csv(shared_data):
    frame = read_price_csv(shared_data / "VALE3.SA.csv")
    assert_canonical(frame)
    assert frame.loc["2018-01-02", "Close"] == 41.72
    assert (frame["Adj Close"] == frame["Close"]).all()  # no Adj Close column: Close stands in


def test_yahoo_csv_drops_null_rows(shared_data):
    path = shared_data / "yahoo" / "VALE3.SA.csv"
    raw_lines = path.read_text().splitlines()
    null_rows = sum("null" in line for line in raw_lines)
    frame = read_price_csv(path)
    assert_canonical(frame)
    assert null_rows > 0 and len(frame) == len(raw_lines) - 1 - null_rows
    assert frame.loc["2000-01-03", "Adj Close"] == pytest.approx(2.058778)


def test_yfinance_multilevel_csv(shared_data):
    frame = read_price_csv(shared_data / "yfinance-multiindex" / "PETR4.SA.csv")
    assert_canonical(frame)
    assert frame.index[0] == pd.Timestamp("2015-01-02")
    assert frame.loc["2015-01-02", "Close"] == pytest.approx(2.572509527206421)


def test_canonical_csv_round_trip_sorts_and_dedups(tmp_path):
    dates = pd.to_datetime(["2024-01-03", "2024-01-02", "2024-01-03"])
    frame = pd.DataFrame({"Close": [3.0, 1.0, 3.0], "Open": 1.0, "High": 3.0, "Low": 1.0, "Volume": 5},
                         index=dates)
    write_price_csv(read_price_csv_from(frame, tmp_path), tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text().splitlines()
    assert text[0] == "Date,Open,High,Low,Close,Adj Close,Volume"
    assert [line.split(",")[0] for line in text[1:]] == ["2024-01-02", "2024-01-03"]
    assert text[2].split(",")[4] == "3.0"  # the exact repeat is dropped (a conflicting one is an error)


def read_price_csv_from(frame: pd.DataFrame, tmp_path) -> pd.DataFrame:
    frame.to_csv(tmp_path / "raw.csv", index_label="Date")
    return read_price_csv(tmp_path / "raw.csv")


@pytest.mark.parametrize("bad, message", [(np.nan, "missing or non-positive Close"),
                                          (0.0, "missing or non-positive Close"),
                                          (-3.0, "missing or non-positive Close")])
def test_missing_or_non_positive_prices_are_refused(shared_data, bad, message):
    frame = read_price_csv(shared_data / "VALE3.SA.csv")
    frame.loc["2019-05-02", "Close"] = bad
    with pytest.raises(StockcastError, match=f"1 {message} value\\(s\\), first on 2019-05-02"):
        check_prices(frame, ["Close"], "VALE3.SA")


def test_unknown_feature_column_is_refused(shared_data):
    with pytest.raises(StockcastError, match="unknown feature"):
        check_prices(read_price_csv(shared_data / "VALE3.SA.csv"), ["Close", "RSI"], "VALE3.SA")


def test_unadjusted_split_is_flagged_with_date_ratio_and_reason(shared_data, caplog):
    with caplog.at_level(logging.WARNING):
        warnings = warn_split_jumps(read_price_csv(shared_data / "unadjusted" / "ITUB4.SA.csv"), "ITUB4.SA")
    assert len(warnings) == 1
    assert "2018-11-21" in warnings[0] and "ratio 1.520" in warnings[0]
    assert "suspect an unadjusted split" in warnings[0] and "the day's volume ordinary" in warnings[0]
    assert "the new level held" in warnings[0]
    assert "2018-11-21" in caplog.text


@pytest.mark.parametrize("volume", ["raw", "none"])
def test_a_split_put_into_an_adjusted_file_is_flagged(shared_data, volume):
    """AAPL un-adjusted for a 2:1 split on 2022-06-01: prices before doubled, and the raw volume halved (or no
    Volume column at all, as a closes-only file has)."""
    frame = read_price_csv(shared_data / "AAPL.csv")
    before = frame.index < "2022-06-01"
    frame.loc[before, ["Open", "High", "Low", "Close"]] *= 2
    frame.loc[before, "Volume"] /= 2
    if volume == "none":
        frame = frame.drop(columns="Volume")
    [warning] = warn_split_jumps(frame, "AAPL")
    assert "on 2022-06-01" in warning and "suspect an unadjusted split" in warning
    assert "the new level held" in warning
    assert ("the day's volume ordinary" in warning) == (volume == "raw")


@pytest.mark.parametrize("path, day", [("us/APA.csv", "2020-03-16"), ("us/EOG.csv", "2020-03-09"),
                                       ("us/HES.csv", "2020-03-09"), ("us/DG.csv", "2024-08-29"),
                                       ("us/EW.csv", "2024-07-25"), ("us/SMCI.csv", "2024-10-30"),
                                       ("us/AMD.csv", "2016-04-22")])
def test_real_moves_near_a_split_ratio_are_not_flagged(universe, caplog, path, day):
    """Earnings days and the COVID crash, split-adjusted: each traded several times its usual volume. Said at
    DEBUG, with why."""
    with caplog.at_level(logging.DEBUG, logger="stockcast.data.prices"):
        assert warn_split_jumps(read_price_csv(universe / path), path) == []
    assert f"on {day}: a market move, not a split: traded news" in caplog.text


def test_the_index_clears_a_market_day_without_volume(universe):
    """HES fell a third on 2020-03-09, the day the S&P 500 fell 7.6 %: with no volume to read, the index says."""
    frame = read_price_csv(universe / "us" / "HES.csv").drop(columns="Volume").loc["2020-01":"2020-06"]
    assert warn_split_jumps(frame, "HES") != []  # closes alone: the level held, so suspect
    market = read_price_csv(universe / "index" / "^GSPC.csv")["Close"]
    assert warn_split_jumps(frame, "HES", market) == []


@pytest.mark.parametrize("name", ["VALE3.SA.csv", "PETR4.SA.csv", "ITUB4.SA.csv", "BBAS3.SA.csv", "AAPL.csv",
                                  "MSFT.csv"])
def test_adjusted_files_raise_no_split_warning(shared_data, name):
    """March 2020's real crashes (PETR4 -30 % in a day) must not look like splits."""
    assert warn_split_jumps(read_price_csv(shared_data / name), name) == []


def test_every_shared_file_reads(shared_data, sp100):
    """The sp100/ slice too: 100 real files, one with an empty Open/High/Low on a day (BHF 2017-07-26)."""
    paths = sorted({*shared_data.rglob("*.csv"), *sp100.glob("*.csv")})
    assert len(paths) > 100
    for path in paths:
        assert_canonical(read_price_csv(path))


def test_bom_blank_lines_and_yfinance_time_offsets_read(tmp_path):
    """Excel's UTF-8 BOM, blank lines, and tz-aware yfinance dates whose offset changes with daylight saving."""
    path = tmp_path / "VALE3.SA.csv"
    path.write_text("\ufeffDate,Close\n2018-02-16 00:00:00-02:00,50.5\n\n,\n2018-02-19 00:00:00-03:00,51.0\n")
    frame = read_price_csv(path)
    assert_canonical(frame)
    assert list(frame.index) == [pd.Timestamp("2018-02-16"), pd.Timestamp("2018-02-19")]
    assert list(frame["Close"]) == [50.5, 51.0]


def test_closes_outside_their_range_are_repaired_with_one_warning(shared_data, caplog):
    """Yahoo's own PETR4 history has 20 closes outside their day's [Low, High]: each range is widened to hold
    its open and close, one warning gives the count and the first date, the run records it."""
    with caplog.at_level(logging.WARNING):
        frame = read_price_csv(shared_data / "yahoo" / "PETR4.SA.csv")
    (message,) = [r.getMessage() for r in caplog.records if "outside their day's" in r.getMessage()]
    assert "20 row(s)" in message and "2006-05-10" in message and message in frame.attrs["repairs"]
    assert (frame["High"] >= frame[["Open", "Close"]].max(axis=1)).all()
    assert (frame["Low"] <= frame[["Open", "Close"]].min(axis=1)).all()
    assert frame.loc["2006-05-10", ["High", "Low"]].tolist() == [24.075001, 23.76]


def test_high_below_low_is_widened_and_a_day_without_range_is_kept(shared_data, sp100):
    frame = read_price_csv(sp100 / "AOS.csv")  # 2014-05-19: High 23.595 below Low 23.85 (an Open on another scale)
    day = frame.loc["2014-05-19"]
    assert day["High"] >= day["Open"] and day["High"] >= day["Close"] and day["Low"] <= day["Close"]
    flat = read_price_csv(shared_data / "yfinance-multiindex" / "PETR4.SA.csv").loc["2016-04-19"]
    assert flat["High"] == flat["Low"] == pytest.approx(flat["Close"], rel=1e-12)  # thin trading: real data, kept


def test_a_file_with_many_inconsistent_rows_is_refused(tmp_path):
    rows = [f"2024-01-{day:02d},10,11,9,{12 if day % 10 == 0 else 10},1000" for day in range(1, 31)]  # 3 of 30
    path = tmp_path / "X.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n")
    with pytest.raises(StockcastError, match=r"3 of 30 rows .* first on 2024-01-10: more than 1%"):
        read_price_csv(path)
