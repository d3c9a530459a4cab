"""Broken price CSVs a user could bring: each is one clear error naming the file, or a warning saying what was done."""

import logging

import pandas as pd
import pytest

from stockcast.data.prices import canonicalize, check_price_file, read_price_csv
from stockcast.errors import StockcastError

HEADER = "Date,Open,High,Low,Close,Volume\n"


def row(date: str, close: float | str) -> str:
    return f"{date},{close},{close},{close},{close},1000\n"


def good_rows(count: int) -> str:
    return "".join(row(day.strftime("%Y-%m-%d"), 10 + i) for i, day in enumerate(pd.bdate_range("2024-01-01",
                                                                                                periods=count)))


def write(tmp_path, content: str | bytes):
    path = tmp_path / "VALE3.SA.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def refused(path, pattern: str) -> str:
    with pytest.raises(StockcastError, match=pattern) as caught:
        read_price_csv(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def test_dates_with_conflicting_closes_are_refused(tmp_path):
    path = write(tmp_path, HEADER + good_rows(3) + row("2024-01-02", 99) + row("2024-01-03", 98))
    refused(path, r"2 date\(s\) appear in several rows with different values, e\.g\. 2024-01-02 \(Open 11 vs 99\)")


def test_exact_duplicate_rows_are_dropped_with_a_warning(tmp_path, caplog):
    path = write(tmp_path, HEADER + good_rows(3) + row("2024-01-02", 11))
    with caplog.at_level(logging.WARNING):
        frame = read_price_csv(path)
    assert len(frame) == 3 and frame.index.is_unique
    assert "dropped 1 exact duplicate row(s), e.g. 2024-01-02" in caplog.text


def test_unsorted_dates_are_sorted_with_a_warning(tmp_path, caplog):
    path = write(tmp_path, HEADER + row("2024-01-03", 12) + row("2024-01-01", 10) + row("2024-01-02", 11))
    with caplog.at_level(logging.WARNING):
        frame = read_price_csv(path)
    assert list(frame["Close"]) == [10, 11, 12]
    assert "dates were not in ascending order; sorted 3 rows by date" in caplog.text


def test_half_unparseable_dates_are_refused_with_count_and_examples(tmp_path):
    lines = good_rows(4).splitlines(keepends=True)
    lines[1], lines[3] = row("02/01/2024", 11), row("Jan 4 2024", 13)
    refused(write(tmp_path, HEADER + "".join(lines)),
            r"2 of 4 rows have no valid ISO date \(YYYY-MM-DD\), e\.g\. '02/01/2024', 'Jan 4 2024'")


def test_mixed_date_formats_are_refused(tmp_path):
    """A day-first date among ISO ones is not guessed: 03/01 could be March or January."""
    refused(write(tmp_path, HEADER + good_rows(2) + row("03/01/2024", 12)), r"1 of 3 rows have no valid ISO date")


def test_impossible_dates_are_refused(tmp_path):
    refused(write(tmp_path, HEADER + good_rows(2) + row("2024-02-30", 12)), r"1 of 3 rows .* '2024-02-30'")


def test_a_trailing_junk_line_is_refused(tmp_path):
    """Not tolerated: a footer or a repeated header is one line to delete, and it may be a cut-off row."""
    refused(write(tmp_path, HEADER + good_rows(3) + "Source: Yahoo Finance,,,,,\n"),
            r"1 of 4 rows have no valid ISO date .* 'Source: Yahoo Finance'")


def test_not_utf8_is_refused(tmp_path):
    refused(write(tmp_path, "Data,Abertura,Máxima,Mínima,Close,Volume\n".encode("latin-1") + good_rows(2).encode()),
            r"is not UTF-8 \(byte 0xe1 on line 1\): save it as CSV UTF-8")


@pytest.mark.parametrize("content, kind", [(b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, r"a binary file \(an Excel"),
                                           ((HEADER + good_rows(2)).encode("utf-16"), "UTF-16 text")],
                         ids=["xlsx", "utf16"])
def test_binary_and_utf16_files_are_refused(tmp_path, content, kind):
    refused(write(tmp_path, content), f"is {kind}.*, not a CSV")


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file_is_refused(tmp_path, content):
    refused(write(tmp_path, content), r"price file .* is empty$")


def test_header_only_is_refused(tmp_path):
    refused(write(tmp_path, HEADER), "has a header but no rows")


def test_only_null_rows_are_refused(tmp_path):
    refused(write(tmp_path, HEADER + "2024-01-02,null,null,null,null,null\n"), r"has only empty \(null\) price rows")


def test_missing_close_column_is_refused(tmp_path):
    path = write(tmp_path, "Date,Open,Volume\n2024-01-02,10,5\n")
    refused(path, r"has no Close column \(columns: \['Open', 'Volume'\]\)")


def test_semicolon_separated_file_is_refused(tmp_path):
    refused(write(tmp_path, "Date;Close\n2024-01-02;41,72\n"), "has a single column .*separate the columns with commas")


def test_non_numeric_closes_are_refused(tmp_path):
    path = write(tmp_path, HEADER + good_rows(2) + "2024-01-03,12,12,12,12.5O,1000\n")
    refused(path, r"1 non-numeric Close value\(s\), e\.g\. '12\.5O' on 2024-01-03")


def test_infinite_prices_are_refused(tmp_path):
    path = write(tmp_path, HEADER + good_rows(2) + row("2024-01-03", "inf"))
    refused(path, r"1 infinite Open value\(s\), first on 2024-01-03")


def test_truncated_last_line_is_refused(tmp_path):
    path = write(tmp_path, HEADER + good_rows(3) + "2024-01-04,13,13.")
    refused(path, r"1 line\(s\) do not have the header's 6 fields \(the file looks truncated\), "
                  r"e\.g\. line 5 has 3: '2024-01-04,13,13\.'")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(StockcastError, match=r"cannot read price file .*NOPE\.csv: No such file"):
        read_price_csv(tmp_path / "NOPE.csv")


def test_the_checks_run_on_their_own(tmp_path):
    """The daily refresh reuses them: the raw-file check returns the text, the frame check takes a parsed frame."""
    assert check_price_file(write(tmp_path, HEADER + good_rows(2))) == HEADER + good_rows(2)
    frame = pd.DataFrame({"Close": [1.0, 2.0]}, index=pd.to_datetime(["2024-01-02", "2024-01-02"]))
    with pytest.raises(StockcastError, match=r"^yfinance download of X: 1 date\(s\) appear in several rows"):
        canonicalize(frame, "yfinance download of X")
