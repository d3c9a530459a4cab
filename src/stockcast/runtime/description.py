"""The archive as its handler describes it (`GET /models/<name>?customized=true`): every served ticker, the
bundle answering it, how it was trained and scored, and the request fields. The clients read these keys."""

from __future__ import annotations

from typing import Any, TypedDict

from stockcast.runtime.bundle import Bundle
from stockcast.runtime.fields import MAX_PRICES, RISK_DAYS, RISK_HORIZONS, RISK_LEVELS
from stockcast.runtime.metric_keys import EWMA, NAIVE_POINT, model_key, skill_key
from stockcast.runtime.preprocess import MAX_INSTANCES
from stockcast.runtime.risk import Model
from stockcast.runtime.routing import Portfolio
from stockcast.runtime.store import PriceStore

RANGE_METRICS = ("crps", "coverage_80", "coverage_90", "width_80")


class Described(TypedDict):
    """One served ticker in the description: the bundle answering it, how it was trained and how it scored."""

    model_version: str | None
    model: str  # the bundle's `symbol`: its registered model in MLflow is stockcast-<model>
    answered_by: str  # the bundle's folder in the archive
    pooled_over: list[str] | None  # a pooled model's tickers
    window: int
    context: int
    horizon: int
    features: list[str]
    quantiles: list[float] | None
    training_data: dict[str, Any]  # the bundle's `data` without its warnings and row counts
    trained: str | None
    test_metrics: dict[str, Any]  # {"model": {rmse, mae, mape}, "naive_last_value": {...}, "skill_mape"}
    range_metrics: dict[str, dict[str, float | None]]  # "validation", "test" -> CRPS, coverage, width, skills
    mlflow_run_id: str | None


class Description(TypedDict):
    """An archive as its handler describes it (`GET /models/<name>?customized=true`)."""

    served_version: str  # the archive's version: the served set's
    default_stock: str | None  # the ticker answering requests that name none
    stocks: dict[str, Described]  # every served ticker
    any_ticker: Described | None  # the global model answering tickers `stocks` does not list; None: only those
    calendar: dict[str, Any]  # {"exchanges": {code: {...}}, "stocks": {ticker: code}}, without the sessions
    price_store: dict[str, Any] | None  # {"tickers": [...], "max_stale_sessions": n}: by-name requests; None: none
    risk: dict[str, Any]  # the risk model answering a portfolio's `risk`: {scenarios, tail_shape, copula, min_days}
    request: dict[str, str]  # each request field, described


def describe(portfolio: Portfolio, store: PriceStore | None = None, risk: Model | None = None) -> Description:
    """`GET /models/<name>?customized=true`: every served ticker, the model answering it, how it was trained
    and how it scored; the default ticker, the price store's tickers and the request shapes."""
    calendar = portfolio.calendar
    exchanges = {name: {key: value for key, value in exchange.items() if key != "sessions"}
                 for name, exchange in calendar.get("exchanges", {}).items()}
    return Description(
        served_version=portfolio.version,
        default_stock=portfolio.default,
        stocks={symbol: _described(portfolio.bundles[name]) for symbol, name in portfolio.members.items()},
        any_ticker=None if portfolio.any_ticker is None else _described(portfolio.bundles[portfolio.any_ticker]),
        calendar={**calendar, "exchanges": exchanges},
        price_store=None if store is None else {"tickers": store.tickers(),
                                                "max_stale_sessions": store.max_stale_sessions},
        risk=(risk or Model(portfolio)).described(),
        request={"stock": f"optional: a served ticker (default {portfolio.default or 'none: name one'}), "
                          "with or without .SA, any case, spaces around (one spelling: a B3 code is read with its "
                          ".SA)",
                 "prices": f"window to {MAX_PRICES} closes, oldest first; the last `context` are used (the last "
                           "`window` by the network, up to `context` by its volatility estimate: send them all "
                           "for the full estimate); "
                           + ("optional: without it, the price store's last `context` bars of `stock`"
                              if store else "required: this server holds no price store"),
                 "open": "optional (required where `features` hold Open, High, Low): the same days' opens, as "
                         "many as `prices`; likewise `high` and `low`",
                 "last_date": "optional YYYY-MM-DD: adds the next trading sessions as 'dates'",
                 "instances": f"a portfolio: up to {MAX_INSTANCES} such objects, answered as 'predictions' in "
                              "order (a bad one gets its own error object)",
                 "answer": "optional, beside a forecast's fields or 'instances': what each answer carries beside "
                           "its median 'forecast', {\"quantiles\": [levels kept, of `quantiles`; [] none], "
                           "\"intervals\": [80, 90: those kept; [] none], \"p_up\": true, \"dates\": true}; each "
                           "part left out is kept whole (the default: the full answer)",
                 "risk": "optional, with 'instances': {\"positions\": [shares per instance, negative: short], "
                         f"\"levels\": {list(RISK_LEVELS)}, \"horizons\": {list(RISK_HORIZONS)}}} adds the "
                         "position's VaR, ES, profit-and-loss quantiles and component VaR as 'risk'; every instance "
                         f"needs 'last_date' and a common history (up to {RISK_DAYS} days of returns are read)"},
    )


def _described(bundle: Bundle) -> Described:
    """One bundle as `describe` shows it for each ticker it answers."""
    meta, metrics = bundle.meta, bundle.meta.metrics
    return Described(
        model_version=meta.version,
        model=meta.symbol,
        answered_by=bundle.name,
        pooled_over=list(meta.stocks) if meta.pooled else None,
        window=meta.window,
        context=meta.context,
        horizon=meta.horizon,
        features=list(meta.features),
        quantiles=None if meta.levels is None else list(meta.levels),
        training_data={key: value for key, value in meta.data.items() if key not in ("warnings", "rows")},
        trained=meta.created,
        test_metrics={
            "model": {name: metrics.get(model_key(name)) for name in ("rmse", "mae", "mape")},
            "naive_last_value": {name: metrics.get(f"{NAIVE_POINT}_{name}") for name in ("rmse", "mae", "mape")},
            "skill_mape": metrics.get("skill_mape"),
        },
        # CRPS (% of the origin's close) and coverage, beside the naive-empirical and EWMA baselines.
        range_metrics={period: {name: metrics.get(model_key(name, validation)) for name in RANGE_METRICS}
                       | {"skill_crps": metrics.get(skill_key(None, validation)),
                          "ewma_skill_crps": metrics.get(skill_key(EWMA, validation)),
                          "ewma_coverage_80": metrics.get(EWMA.key("coverage_80", validation))}
                       for period, validation in (("validation", True), ("test", False))},
        mlflow_run_id=meta.run_id,
    )
