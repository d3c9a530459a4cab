import datetime as dt

import pytest

from stockcast.errors import StockcastError
from stockcast.symbols import normalize_symbol, parse_date, parse_range


@pytest.mark.parametrize("given", ["vale3", "VALE3", "VALE3.SA", " vale3.sa "])
def test_b3_codes_get_one_symbol(given):
    assert normalize_symbol(given) == "VALE3.SA"


@pytest.mark.parametrize("given, expected", [("^BVSP", "^BVSP"), ("aapl", "AAPL"), ("TAEE11", "TAEE11.SA"),
                                             ("BRK-B", "BRK-B"), ("EURUSD=X", "EURUSD=X")])
def test_indices_and_foreign_tickers_pass_through(given, expected):
    assert normalize_symbol(given) == expected


@pytest.mark.parametrize("given", ["", "VALE 3", "../etc/passwd", "VALE3;rm"])
def test_invalid_tickers_are_refused(given):
    with pytest.raises(StockcastError, match="invalid ticker"):
        normalize_symbol(given)


def test_dates_are_iso():
    assert parse_date("2024-02-29", "start") == dt.date(2024, 2, 29)
    with pytest.raises(StockcastError, match="not an ISO date"):
        parse_date("29/02/2024", "start")
    with pytest.raises(StockcastError, match="not a valid date"):
        parse_date("2023-02-29", "start")


def test_range_end_defaults_to_today_and_must_follow_start():
    assert parse_range("2020-01-01", None) == (dt.date(2020, 1, 1), dt.date.today())
    with pytest.raises(StockcastError, match="start 2021-01-02 is after end 2021-01-01"):
        parse_range("2021-01-02", "2021-01-01")
