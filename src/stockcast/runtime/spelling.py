"""A ticker's one spelling: what a request's `stock`, the price store's file names and the training side's tickers
are all reduced to, so that VALE3, vale3 and VALE3.SA name one stock everywhere."""

from __future__ import annotations

import re

# A ticker a global model answers without listing it: a Yahoo symbol's characters (BRK-B, ^GSPC, VALE3.SA, EURUSD=X).
TICKER = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.\-^=]{0,19}")
# B3 equities, units and BDRs: four letters, then 1-2 digits (VALE3, PETR4, TAEE11, AAPL34); Yahoo adds ".SA".
B3_CODE = re.compile(r"[A-Z]{4}\d{1,2}")


def spelled(name: str) -> str:
    """A ticker's one spelling, its Yahoo symbol: upper case, no spaces around, a B3 code with its ".SA" (`vale3`,
    ` VALE3 `, `VALE3.SA` -> `VALE3.SA`; `aapl` -> `AAPL`)."""
    symbol = name.strip().upper()
    return f"{symbol}.SA" if B3_CODE.fullmatch(symbol) else symbol
