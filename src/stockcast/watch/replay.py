"""`scripts/admin.py replay`: the daily loop (refresh, monitor, retrain on drift) run over stored history through
a fake clock, to show what the monitor would have said and done.

Everything lives in a scratch folder of its own (`outputs/replay/<time>/`: price caches, model store, server
run folder): the repo's `data/`, `model_store/` and `serve/` are untouched and no TorchServe starts. The
trainings log to the configured MLflow store under `stockcast-replay` (not `stockcast`, whose newest runs
`make archive` serves) and register no model versions (the `champion` aliases are the live server's);
the figures go to `stockcast-monitoring` under the track `replay-<time>`.

1. The caches hold the stored history before `start`; each ticker is trained on it (configs/train.yaml and
   the overrides) and the runs are deployed as version 1 the evening before `start`, as `make archive`
   would (ungated: each gate result is said).
2. Each day with a stored session, at 23:00 UTC (after every exchange's close): the real refresh
   (`watch.refresh`), its downloads answered from the stored history up to that day; then the monitor.
3. With `retrain`, drifted tickers are trained again on the history up to that day and gated as
   `admin.py retrain` gates; those that passed are deployed at once as the next version: the next
   served set written into the scratch store and remembered in its `deployed.json`, a deploy without a
   server. A ticker is not retrained again before `DriftRules.window` more of its sessions have passed
   (its new model needs that many scored forecasts to be judged; a refused one gets the same wait).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from mlflow import MlflowClient
from omegaconf import DictConfig, open_dict

from stockcast.cli import Say
from stockcast.data.download import Downloader
from stockcast.errors import StockcastError
from stockcast.pipeline import RunResult, run
from stockcast.release import history as deploy_history
from stockcast.release.policy import Policy
from stockcast.release.retrain import gate_run
from stockcast.serving.archive import ServedSet, archive, write
from stockcast.serving.versions import archives, next_version, versioned_name
from stockcast.symbols import normalize_symbol
from stockcast.watch.drift import DriftRules
from stockcast.watch.monitor import Settings, Status, check, history, table, vol_ratios
from stockcast.watch.publish import log_figures
from stockcast.watch.refresh import refresh
from stockcast.watch.track_record import TrackRecord

EXPERIMENT = "stockcast-replay"
EVENING = pd.Timedelta(hours=23)  # the fake clock's time of day: after B3's and the NYSE's closes (UTC)


class StoredHistory(Downloader):
    """The replay's Yahoo and its price caches. Downloads are answered from history loaded beforehand, never
    past the fake clock's day (the refresh asks up to the last session closed by its `now`). The caches stay
    in memory between days, the refresh and the monitor reading and writing them as they would the files (a
    CSV read and written per ticker and day would take most of the replay's time); `flush` writes them to
    the data folder, as trainings read them there."""

    def __init__(self, data_dir: Path, history: dict[str, pd.DataFrame]) -> None:
        super().__init__(data_dir, use_sample=False)
        self.history = history
        self.caches: dict[str, tuple[pd.DataFrame, dt.date, dt.date]] = {}  # frame, covered start and end

    def download(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        rows = self.history[symbol].loc[pd.Timestamp(start):pd.Timestamp(end)]
        if rows.empty:
            raise StockcastError(f"no stored rows of {symbol} in {start}..{end}")
        return rows

    def read_cache(self, symbol: str) -> pd.DataFrame:
        return self.caches[symbol][0]

    def covered(self, symbol: str) -> tuple[dt.date, dt.date] | None:
        return self.caches[symbol][1:]

    def store(self, symbol: str, frame: pd.DataFrame, start: dt.date, end: dt.date) -> None:
        if symbol not in self.caches:  # the refresh checks that a cache file exists
            super().store(symbol, frame, start, end)
        self.caches[symbol] = (frame, start, end)

    def flush(self) -> None:
        for symbol, (frame, start, end) in self.caches.items():
            super().store(symbol, frame, start, end)


@dataclass
class Event:
    day: pd.Timestamp
    symbol: str
    what: str  # "drift", "retrained", "refused"
    detail: str


@dataclass
class Replay:
    """What a replay did and measured."""

    folder: Path
    track: str  # the MLflow track of its figures
    statuses: list[Status]  # each ticker at the end
    history: dict[str, pd.DataFrame]  # ticker -> its figures after each scored origin (all versions)
    first_model: dict[str, tuple[str, pd.Timestamp, pd.Timestamp]]  # ticker -> (version, first, last scored origin)
    events: list[Event] = field(default_factory=list)
    days: int = 0
    seconds: float = 0.0  # the daily loop's wall time, the initial trainings excluded
    training_seconds: float = 0.0
    settings: Settings = Settings()  # what the monitor judged by, and whether it retrained


def replay(stocks: list[str], configure: Callable[[str], DictConfig], start: dt.date, end: dt.date, retrain: bool,
           rules: DriftRules, policy: Policy, folder: Path, say: Say = print) -> Replay:
    """Replay `start`..`end` for `stocks` in `folder` (module docstring). `configure(stock)`: a fresh training
    config of the ticker (`retrain.train_config`); the replay sets its end, data folder and experiment."""
    symbols = [normalize_symbol(stock) for stock in stocks]
    data, store, run_dir = folder / "data", folder / "model_store", folder / "serve"
    run_dir.mkdir(parents=True, exist_ok=True)
    base = configure(stocks[0])
    tracking_uri, first_day = base.logger.tracking_uri, dt.date.fromisoformat(str(base.start))
    source = Downloader(base.paths.data_dir)  # the stored history: the configured caches, or copies of them
    stored = {symbol: source.load(symbol, first_day, end) for symbol in symbols}
    feed = StoredHistory(data, stored)
    before = pd.Timestamp(start)
    for symbol in symbols:
        rows = stored[symbol].loc[:before - pd.Timedelta(days=1)]
        feed.store(symbol, rows, min(first_day, rows.index[0].date()), rows.index[-1].date())
    trainer = _Trainer(configure, feed, say)
    started = time.monotonic()
    eve = before - pd.Timedelta(days=1)
    results = [trainer(symbol, eve) for symbol in symbols]
    client = MlflowClient(tracking_uri)  # its store exists now: the trainings made it
    for result in results:
        gate_run(client, result, policy, say)
    archive(tracking_uri, EXPERIMENT, store, run_ids=[r.run_id for r in results], version=1,
            file_name=versioned_name(1))
    deploy_history.remember(run_dir, "1", (eve + EVENING).tz_localize("UTC").to_pydatetime())
    outcome = Replay(folder, f"replay-{folder.name}", [], {}, {}, training_seconds=time.monotonic() - started,
                     settings=Settings(rules, policy, retrain))
    say(f"version 1 deployed on {eve:%Y-%m-%d} (trained in {outcome.training_seconds:.0f} s); replaying "
        f"{start}..{end}")
    days = sorted(set().union(*(frame.loc[pd.Timestamp(start):pd.Timestamp(end)].index for frame in stored.values())))
    started = time.monotonic()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny baseline fits: threads only add overhead
    try:
        with TrackRecord(run_dir, store, feed) as track:
            _Loop(track, trainer, client, outcome).run(symbols, days)
            outcome.seconds = time.monotonic() - started
            feed.flush()
            for symbol in symbols:
                origins = track.origins(symbol)
                outcome.history[symbol] = history(origins)
                first = [o.date for o in origins if o.bundle.meta.version == "1" and o.scores is not None]
                outcome.first_model[symbol] = ("1", first[0], first[-1])
                log_figures(tracking_uri, outcome.track, symbol, outcome.history[symbol], vol_ratios(origins))
    finally:
        torch.set_num_threads(threads)
    return outcome


@dataclass
class _Loop:
    """Day by day: the refresh, then the monitor's check (`watch.monitor.check`) with the outcome's settings. A
    drift reason new to a ticker is an event; a drifted ticker is retrained, when the settings say so, unless
    its wait is still running."""

    track: TrackRecord
    trainer: _Trainer
    client: MlflowClient
    outcome: Replay
    drifting: dict[str, set[str]] = field(default_factory=dict)  # ticker -> its drift reasons the day before
    waits: dict[str, int] = field(default_factory=dict)  # ticker -> sessions before it may be retrained again

    def run(self, symbols: list[str], days: list[pd.Timestamp]) -> None:
        for day in days:
            now = (day + EVENING).tz_localize("UTC")
            for result in refresh(self.trainer.feed, symbols, lambda _: None, now=now):
                if result.error:
                    raise StockcastError(f"replay refresh of {result.symbol} on {day:%Y-%m-%d} failed: "
                                         f"{result.error}")
            self.outcome.statuses = check(self.track, symbols, self.outcome.settings, partial(self._note, day),
                                          partial(self._retrain, day, now))
            self.outcome.days += 1

    def _note(self, day: pd.Timestamp, statuses: list[Status]) -> None:
        """The day's new drift reasons as events; every ticker's wait a session shorter."""
        for status in statuses:
            known = self.drifting.get(status.symbol, set())
            self.outcome.events += [Event(day, status.symbol, "drift", drift.message) for drift in status.drifts
                                    if drift.reason not in known]
            self.drifting[status.symbol] = {drift.reason for drift in status.drifts}
            self.waits[status.symbol] = self.waits.get(status.symbol, 0) - 1

    def _retrain(self, day: pd.Timestamp, now: pd.Timestamp, drifted: list[Status]) -> None:
        """Train the drifted tickers whose wait is over on the history up to `day`, gate them, deploy those that
        passed as one version; each then waits a window of sessions."""
        due = [status for status in drifted if self.waits[status.symbol] <= 0]
        passed = []
        for status in due:
            reasons = ", ".join(drift.reason for drift in status.drifts)
            result = self.trainer(status.symbol, day)
            refused = gate_run(self.client, result, self.outcome.settings.policy, self.trainer.say)
            self.outcome.events.append(Event(day, status.symbol, "refused" if refused else "retrained",
                                             f"drift: {reasons}; " + (refused or f"run {result.run_id[:8]} passed "
                                                                                 "the gate")))
            if not refused:
                passed.append(result)
        if passed:
            _deploy(self.track, passed, now, self.trainer.say)
        self.waits |= {status.symbol: self.outcome.settings.rules.window for status in due}


@dataclass(frozen=True)
class _Trainer:
    """Trains a ticker on the replay's caches up to a day, logged to the replay's experiment."""

    configure: Callable[[str], DictConfig]
    feed: StoredHistory
    say: Say

    def __call__(self, symbol: str, end: pd.Timestamp) -> RunResult:
        self.say(f"training {symbol} up to {end:%Y-%m-%d}")
        self.feed.flush()
        cfg = self.configure(symbol)
        with open_dict(cfg):
            cfg.end, cfg.logger.experiment_name = f"{end:%Y-%m-%d}", EXPERIMENT
            cfg.paths.data_dir = str(self.feed.data_dir)
        return run(cfg)


def _deploy(track: TrackRecord, results: list[RunResult], now: pd.Timestamp, say: Say) -> None:
    """The next served set with the runs' bundles, written into the scratch store and made the default at `now`:
    what `retrain` deploys, without a server to register it with."""
    store, run_dir = track.model_store, track.run_dir
    current = deploy_history.defaults(run_dir)[-1][0]
    version = next_version(store)
    with tempfile.TemporaryDirectory(prefix="stockcast-bundles-") as work:
        after = ServedSet.read(archives(store)[current]).with_runs(
            results[0].tracking_uri, [result.run_id for result in results], version, Path(work))
        write(after, store, version, versioned_name(version))
    deploy_history.remember(run_dir, str(version), now.to_pydatetime())
    say(f"{now:%Y-%m-%d}: version {version} deployed ({', '.join(r.symbol for r in results)})")


def summary(outcome: Replay) -> str:
    """The closing report of a replay: each ticker at the end, its figures at each quarter's end, the events,
    the first model's scored span (to backtest it on), the times."""
    spans = ", ".join(f"{symbol} {first:%Y-%m-%d}..{last:%Y-%m-%d}"
                      for symbol, (_, first, last) in outcome.first_model.items())
    return "\n".join([
        f"\n## At the end ({outcome.days} trading days replayed)\n\n{table(outcome.statuses, outcome.settings.rules)}",
        "\n## 80 % coverage and skill_crps over the last 60 scored forecasts, at each quarter's end\n\n"
        f"{over_time(outcome).to_markdown()}",
        "\n## Events\n",
        *(f"- {event.day:%Y-%m-%d} {event.symbol} {event.what}: {event.detail}" for event in outcome.events),
        f"\nfirst model's scored origins (for evaluate.py backtest.start/end): {spans}",
        f"initial trainings {outcome.training_seconds:.0f} s; the daily loop {outcome.seconds:.1f} s wall time "
        f"({'with' if outcome.settings.retrain else 'without'} retrains); scratch folder {outcome.folder}; MLflow "
        f"track {outcome.track}"])


def over_time(outcome: Replay, every: str = "QE") -> pd.DataFrame:
    """Per ticker at each quarter's end: the serving version's 80 % coverage and CRPS skill over its last 60
    scored origins (the replay's table)."""
    columns = {}
    for symbol, figures in outcome.history.items():
        ends = figures.groupby(pd.Grouper(freq=every)).tail(1)
        columns[symbol] = {f"{day.to_period('Q')}": f"v{row.model_version} (filling)" if pd.isna(row.coverage_80_60)
                           else f"v{row.model_version} {row.coverage_80_60:.2f} {row.skill_crps_60:+.3f}"
                           for day, row in ends.iterrows()}
    return pd.DataFrame(columns)
