"""The portfolios `make risk` backtests, drawn from the market universe by a seeded rule.

Weights are shares of the position's gross value (a negative one: short), held constant: each day's shares are
the weights at that day's closes. 2024's kinds (`portfolios`): equal-weight 10-stock US and B3 baskets, random
long-only and long-short 20-stock US ones, and the six shared tickers (two exchanges: each in its own currency,
added as they are). 2025's (`portfolios_b3`: universe2025 trains the B3 stocks and the shared tickers, the US
files end in 2024): equal-weight 10-stock, random long-only and long-short 12-stock baskets of those, and the
shared six. `python -m stockcast.portfolios` writes both into configs/risk.yaml (after the PORTFOLIOS marker), so
a backtest reads them from its config, and tests/eval/test_risk_backtest.py checks the rule still gives them.
"""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from stockcast.universe import SHARED, members

SEED = 30  # the issue that asked for them
KINDS = {"us_equal": 12, "b3_equal": 6, "long_only": 16, "long_short": 16}  # kind -> how many; one `shared` more
B3_SEED = 39  # the issue that asked for 2025's
B3_KINDS = {"b3_equal": 8, "b3_long_only": 6, "b3_long_short": 6}  # 2025's: kind -> how many; one `shared` more
PORTFOLIOS = "# ---- the portfolios below are written by `python -m stockcast.portfolios` from its rule"


def draw() -> dict[str, dict[str, float]]:
    """2024's: name -> {ticker: weight}: each kind's baskets in turn from one `random.Random(SEED)`, tickers from
    the sorted market lists (B3's for b3_equal, the US's otherwise), 10 to an equal-weight basket, 20 otherwise."""
    us, b3 = members("us"), members("b3")
    return _drawn(random.Random(SEED), KINDS, {kind: b3 if kind == "b3_equal" else us for kind in KINDS}, 20)


def draw_b3() -> dict[str, dict[str, float]]:
    """2025's: the same rule from `random.Random(B3_SEED)` over the B3 stocks and the shared tickers, 10 to an
    equal-weight basket, 12 otherwise."""
    pool = sorted(set(members("b3")) | set(SHARED))
    return _drawn(random.Random(B3_SEED), B3_KINDS, {kind: pool for kind in B3_KINDS}, 12)


def _drawn(rng: random.Random, kinds: dict[str, int], pools: dict[str, list[str]],
           size: int) -> dict[str, dict[str, float]]:
    """Each kind's baskets in turn, weights rounded to 4 decimals (equal ones 1/n, the others uniform in
    [0.5, 1.5] normalized, a long-short one's signs drawn too), and the shared tickers equally weighted."""
    drawn: dict[str, dict[str, float]] = {}
    for kind, count in kinds.items():
        equal = kind.endswith("equal")
        for number in range(1, count + 1):
            tickers = sorted(rng.sample(pools[kind], 10 if equal else size))
            sizes = [1.0] * len(tickers) if equal else [rng.uniform(0.5, 1.5) for _ in tickers]
            signs = [rng.choice((-1, 1)) for _ in tickers] if kind.endswith("long_short") else [1] * len(tickers)
            drawn[f"{kind}_{number:02d}"] = {ticker: round(sign * size / sum(sizes), 4)
                                              for ticker, size, sign in zip(tickers, sizes, signs, strict=True)}
    drawn["shared"] = {ticker: round(1 / len(SHARED), 4) for ticker in SHARED}
    return drawn


def write(path: Path) -> None:
    """Rewrite the config's portfolios (the part after the PORTFOLIOS marker) from the rule."""
    head = path.read_text().split(PORTFOLIOS)[0]
    listed = yaml.safe_dump({"portfolios": draw(), "portfolios_b3": draw_b3()}, default_flow_style=None, width=115,
                            sort_keys=False)
    path.write_text(head + PORTFOLIOS + "\n" + listed)


if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "configs" / "risk.yaml")
