"""Bad request bodies: one table for the handler's unit tests and the end-to-end tests, and generated hostile ones.

`BAD` names each body with the words its 400 message must contain. `hostile_bodies` makes reproducible
bodies of every kind a hostile client could send: deep nesting, huge numbers and arrays, wrong types at
every level, invalid UTF-8, empty ones, broken valid ones.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from tests.serving import PRICES


def _prices(prices: list, **fields: object) -> bytes:
    return json.dumps({"prices": prices, **fields}).encode()


def _refused(message: str, bodies: dict[str, bytes]) -> dict[str, tuple[bytes, str]]:
    """`BAD`'s rows of the bodies whose 400 message must contain `message`."""
    return {name: (body, message) for name, body in bodies.items()}


BAD: dict[str, tuple[bytes, str]] = {
    **_refused("not valid JSON", {"not JSON": b"prices=1,2,3", "not JSON text": b"not json",
                                  "integer of 5000 digits": b'{"prices": [' + b"7" * 5000 + b"]}"}),
    **_refused("not UTF-8", {"not UTF-8": b"\xff\xfe"}),
    **_refused("empty body", {"empty": b"", "blank": b" \r\n\t"}),
    **_refused("nests too deep", {"deep nesting": b"[" * 2000 + b"]" * 2000,
                                  "deep nesting in prices": b'{"prices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"}),
    **_refused("must be a JSON object", {"not an object": b"[60, 61]", "a string": b'"prices"'}),
    **_refused("unknown field", {"unknown field": _prices(PRICES, **{"last-date": "2025-11-07"}),
                                 "prices under another name": b'{"closes": [60]}'}),
    **_refused("must be a list", {"prices not a list": b'{"prices": "60,61"}', "prices a number": b'{"prices": 60}',
                                  "prices an object": b'{"prices": {"0": 60}}'}),
    "non-numeric": (_prices([*PRICES[:-1], "61"]), "prices[29] is not a number"),
    "nested price": (_prices([*PRICES, [60.0]]), "prices[30] is not a number"),
    **_refused("prices[0] is not a number", {"boolean": _prices([True, *PRICES]), "null": _prices([None, *PRICES])}),
    **_refused("prices[0] is not finite", {"NaN": b'{"prices": [NaN' + b", 60" * 25 + b"]}",
                                           "overflowing": b'{"prices": [1e400' + b", 60" * 25 + b"]}",
                                           "huge integer": b'{"prices": [' + b"9" * 400 + b", 60" * 25 + b"]}"}),
    "infinite": (b'{"prices": [60' + b", 60" * 25 + b", Infinity]}", "prices[26] is not finite"),
    "beyond float32": (_prices([*PRICES, 1e300]), "prices[30] is beyond float32's range"),
    "zero": (_prices([0, *PRICES]), "prices[0] must be positive"),
    "negative": (_prices([*PRICES, -1.5]), "prices[30] must be positive"),
    "high below low": (_prices(PRICES, high=PRICES, low=[*PRICES[:7], PRICES[7] + 1, *PRICES[8:]]),
                       "high[7] (60.7) is below low[7] (61.7)"),
    "open of another length": (_prices(PRICES, open=PRICES[:-1]), "'open' must be a list as long as 'prices' (30"),
    "low not a list": (_prices(PRICES, low=60), "'low' must be a list as long as 'prices'"),
    "low not positive": (_prices(PRICES, low=[*PRICES[:3], 0, *PRICES[4:]]), "low[3] must be positive"),
    "high not finite": (b'{"prices": [60' + b", 60" * 25 + b'], "high": [60' + b", 60" * 24 + b", NaN]}",
                        "high[25] is not finite"),
    "too few": (_prices(PRICES[:19]), "needs at least 20"),
    "too many": (_prices([60.0] * 5001), "at most 5000"),
    **_refused("has no deployed model", {"wrong stock": _prices(PRICES, stock="PETR4"),
                                         "stock not a string": _prices(PRICES, stock=3),
                                         "stock a list": _prices(PRICES, stock=["VALE3"] * 1000)}),
    **_refused("YYYY-MM-DD", {"last_date format": _prices(PRICES, last_date="07/11/2025"),
                              "last_date without zero padding": _prices(PRICES, last_date="2025-11-7"),
                              "last_date not a string": _prices(PRICES, last_date=20251107)}),
    "last_date invalid": (_prices(PRICES, last_date="2025-02-30"), "not a valid date"),
    **_refused("outside the trading calendar", {"last_date past calendar": _prices(PRICES, last_date="2099-01-01"),
                                                "last_date before calendar": _prices(PRICES, last_date="2001-01-01")}),
}


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice([900, 1000, 3000, 100_000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"prices":', b"}]")])
    inner = opener * depth + b"1" + closer * depth
    return inner if rng.random() < 0.5 else b'{"prices": [' + b"60, " * 25 + inner + b"]}"


def _number(rng: random.Random) -> bytes:
    return rng.choice([b"1e308", b"-1e308", b"1e400", b"-1e400", b"3.5e38", b"3.4e38", b"1e-400", b"5e-324",
                       b"1e-45", b"-0.0", b"0", b"NaN", b"-Infinity", b"9" * rng.randint(20, 5000),
                       b"-" + b"9" * rng.randint(20, 400), b"1" + b"0" * 4301])


def _huge_numbers(rng: random.Random) -> bytes:
    prices = [b"60"] * 25
    for _ in range(rng.randint(1, 3)):
        prices[rng.randrange(len(prices))] = _number(rng)
    return b'{"prices": [' + b", ".join(prices) + b"]}"


def _huge_array(rng: random.Random) -> bytes:
    size = rng.choice([4999, 5000, 5001, 20_000, 100_000])  # at most 0.8 MB: under max_request_size
    item = rng.choice([b"60.5", b"[60.5]", b"null", b'"60"'])
    return b'{"prices": [' + b",".join([item] * size) + b"]}"


_VALUES: list[object] = [None, True, False, 0, -1, 1.5, "", "60", "VALE3", [], [60.0], {}, {"prices": PRICES},
                         [[60.0] * 2] * 25, 1e300, "2025-11-07", "\ud800", "\x00"]


def _wrong_type(rng: random.Random) -> bytes:
    body: object = {"prices": list(PRICES), "stock": "VALE3", "last_date": "2025-11-07"}
    level = rng.choice(["top", "field", "price", "extra"])
    if level == "top":
        body = rng.choice(_VALUES)
    elif level == "field":
        body[rng.choice(["prices", "stock", "last_date"])] = rng.choice(_VALUES)
    elif level == "price":
        body["prices"][rng.randrange(30)] = rng.choice(_VALUES)
    else:
        body[rng.choice(["Prices", "", "prices ", "\u0000", "x" * 10_000])] = rng.choice(_VALUES)
    return json.dumps(body).encode()


def _bad_utf8(rng: random.Random) -> bytes:
    valid = _prices(PRICES, stock="VALE3")
    junk = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\x80" * 10,
                       bytes(rng.randrange(256) for _ in range(64))])
    cut = rng.randrange(len(valid))
    return valid[:cut] + junk + valid[cut:]


def _empty(rng: random.Random) -> bytes:
    return rng.choice([b"", b" ", b"\n", b"\x00", b"\xef\xbb\xbf", b"null", b"{", b"}", b"[]", b'""', b"\x00" * 100])


def _broken(rng: random.Random) -> bytes:
    valid = bytearray(_prices(PRICES, stock="VALE3", last_date="2025-11-07"))
    if rng.random() < 0.5:
        return bytes(valid[:rng.randrange(len(valid))])
    for _ in range(rng.randint(1, 4)):
        valid[rng.randrange(len(valid))] = rng.randrange(256)
    return bytes(valid)


# `stock` values that must never become a file name of the price store: paths, NUL, length, look-alikes.
HOSTILE_STOCKS = ["../VALE3.SA", "/etc/passwd", "VALE3.SA\x00", "V" * 1000, "VALE３", "ＶALE3", "..",
                  "data/VALE3.SA", "VALE3.SA.csv", "%2e%2e%2fVALE3", "VALE3.SA/../VALE3.SA", "C:\\VALE3"]


def _hostile_stock(rng: random.Random) -> bytes:
    """A by-name request (or one with bars) naming a ticker by a path or a look-alike."""
    stock = rng.choice(HOSTILE_STOCKS)
    return json.dumps({"stock": stock} if rng.random() < 0.7 else {"stock": stock, "prices": PRICES}).encode()


KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "deep nesting": _deep, "huge numbers": _huge_numbers, "huge arrays": _huge_array, "wrong types": _wrong_type,
    "invalid UTF-8": _bad_utf8, "empty": _empty, "broken JSON": _broken, "hostile stock": _hostile_stock,
}


def hostile_bodies(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """`count` bodies, the kinds in turn, the same for the same seed: (kind, body)."""
    rng = random.Random(seed)
    kinds = list(KINDS.items())
    return [(kinds[i % len(kinds)][0], kinds[i % len(kinds)][1](rng)) for i in range(count)]
