"""PriceDataModule: a price table -> sliding windows, split chronologically, scaler fit on train only."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from stockcast.data.download import Downloader
from stockcast.data.prices import REPAIRS, check_prices, cut_placeholders, warn_split_jumps
from stockcast.errors import StockcastError
from stockcast.models.net import BARS
from stockcast.progress import tracked
from stockcast.symbols import normalize_symbol, parse_date, parse_range

log = logging.getLogger(__name__)
MAX_POOLED_NAME = 60


@dataclass(frozen=True)
class Scaler:
    """Statistics of the training rows only; the net stores them as buffers."""

    feature_min: list[float]  # per feature, for min-max scaling of levels
    feature_max: list[float]
    change_std: float  # std of the training horizon's relative close changes, to scale targets


@dataclass(frozen=True)
class Split:
    """Windows of one period: inputs [N, context, F] in raw units, targets [N, horizon] raw closes, and the
    same windows' bars [N, context, 4] (Close, Open, High, Low; a missing one is the close) for the baselines,
    which read the day's range whatever the model's features."""

    inputs: torch.Tensor
    targets: torch.Tensor
    target_dates: np.ndarray  # [N, horizon] datetime64: a million DatetimeIndex objects would take gigabytes
    bars: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def rows(self, first: int, stop: int) -> Split:
        """Windows first..stop-1, as views: no copy."""
        shares = self.bars is self.inputs
        inputs = self.inputs[first:stop]
        return Split(inputs, self.targets[first:stop], self.target_dates[first:stop],
                     inputs if shares else self.bars[first:stop])

    @staticmethod
    def concat(splits: list[Split]) -> Split:
        """One split of several, in order; each part's tensors become views of the whole (so they are held once)."""
        inputs = torch.cat([s.inputs for s in splits])
        shares = all(s.bars is s.inputs for s in splits)
        return Split(inputs, torch.cat([s.targets for s in splits]), np.concatenate([s.target_dates for s in splits]),
                     inputs if shares else torch.cat([s.bars for s in splits]))


def make_windows(values: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of `values` [T, F]: inputs [N, window, F] and the next `horizon` closes [N, horizon].

    Window i reads rows i..i+window-1 and targets rows i+window..i+window+horizon-1 (column 0 = Close).
    """
    count = len(values) - window - horizon + 1
    if count <= 0:
        return np.empty((0, window, values.shape[1])), np.empty((0, horizon))
    starts = np.arange(count)
    input_rows = starts[:, None] + np.arange(window)[None, :]  # [N, window]
    target_rows = starts[:, None] + window + np.arange(horizon)[None, :]  # [N, horizon]
    return values[input_rows], values[target_rows, 0]


def bars_of(prices: pd.DataFrame) -> np.ndarray:
    """[T, 4] the days' bars (Close, Open, High, Low) of a checked price table; a missing Open, High or Low (a
    file of closes only) is the close: a day with no range."""
    close = prices["Close"]
    return np.stack([prices[name].fillna(close) for name in BARS], axis=-1).astype(np.float64)


class PriceDataModule(L.LightningDataModule):
    """Windows of daily prices: `window` rows in, the next `horizon` closes out.

    `context` (>= window, default window) is how many rows each window carries: the net reads the
    last `window` of them and estimates the volatility over all of them (an EWMA burn-in).

    The split is chronological by target rows: a window belongs to a period when all of its target
    rows lie in that period (inputs may reach back into the previous one); windows straddling a
    boundary are dropped. Boundaries are `val_start`/`test_start` dates or, when those are null,
    dates at `val_fraction`/`test_fraction` of the trading days.

    `stock` may be a list: one pooled model over several tickers, split at the same dates, with
    windows never crossing tickers and one scaler fit on all tickers' training rows. `unseen` (a subset
    of `stock`) are tickers the model never learns from: their windows are made and scored, but `train`,
    the scaler and the validation loss (`val_seen`) hold none of them.
    """

    def __init__(self, stock: str | list[str], start: str | None, end: str | None, downloader: Downloader,
                 window: int = 20, horizon: int = 10, features: list[str] | None = None,
                 val_fraction: float = 0.15, test_fraction: float = 0.15,
                 val_start: str | None = None, test_start: str | None = None,
                 batch_size: int = 64, context: int | None = None, unseen: list[str] | None = None) -> None:
        super().__init__()
        stocks = [stock] if isinstance(stock, str) else list(stock)
        self.symbols = list(dict.fromkeys(normalize_symbol(s) for s in stocks))
        if not self.symbols:
            raise StockcastError("stock is empty: give a ticker or a list of tickers")
        self.unseen = [normalize_symbol(s) for s in unseen or []]
        strangers = sorted(set(self.unseen) - set(self.symbols))
        if strangers:
            raise StockcastError(f"unseen ticker(s) {strangers} are not among stock: list them there too")
        if set(self.unseen) >= set(self.symbols):
            raise StockcastError("every ticker is unseen: the model would have nothing to learn from")
        self.start, self.end = parse_range(start, end)
        self.downloader = downloader
        if window < 1 or horizon < 1:
            raise StockcastError(f"window ({window}) and horizon ({horizon}) must be positive")
        self.window, self.horizon = window, horizon
        self.context = window if context is None else context
        if self.context < window:
            raise StockcastError(f"context ({context}) must be at least the window ({window})")
        self.features = list(features or ["Close"])
        if self.features[0] != "Close":
            raise StockcastError(f"the first feature must be Close, got {self.features}")
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise StockcastError("val_fraction and test_fraction must be in (0, 1) and sum below 1")
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.val_start = parse_date(val_start, "val_start") if val_start else None
        self.test_start = parse_date(test_start, "test_start") if test_start else None
        self.batch_size = batch_size
        self.prices: dict[str, pd.DataFrame] = {}
        self.warnings: list[str] = []
        self.skipped: dict[str, str] = {}  # pooled: ticker -> why it was left out

    @property
    def symbol(self) -> str:
        """The ticker, or `A+B+...` for a pooled model; `A+96-more-<hash>` when that would be long (it names
        the MLflow run and registered model, whose names are limited to 256 characters)."""
        joined = "+".join(self.symbols)
        if len(joined) <= MAX_POOLED_NAME:
            return joined
        digest = hashlib.sha1(joined.encode()).hexdigest()[:8]
        return f"{self.symbols[0]}+{len(self.symbols) - 1}-more-{digest}"

    def setup(self, stage: str | None = None) -> None:
        if self.prices:
            return
        prices = {}
        for symbol in tracked(self.symbols, "reading prices, tickers"):
            with self._skipped_when_pooled(symbol):
                prices[symbol] = self._load(symbol)
        self._check_some_left(prices)
        log.info(self.downloader.summary())
        union = pd.DatetimeIndex(sorted(set().union(*(frame.index for frame in prices.values()))))
        val_date, test_date = self._boundary_dates(union)
        splits: dict[str, list[Split]] = {"train": [], "val": [], "test": []}
        train_values = []
        for symbol, frame in list(prices.items()):
            with self._skipped_when_pooled(symbol):
                train_rows, own = self._periods(symbol, frame, val_date, test_date)
            if symbol in self.skipped:
                del prices[symbol]
                continue
            train_values.append(train_rows)
            for name, split in own.items():
                splits[name].append(split)
        self._check_some_left(prices)
        self.symbols = list(prices)
        self.unseen = [symbol for symbol in self.unseen if symbol in prices]
        seen = [symbol not in self.unseen for symbol in self.symbols]
        if not any(seen):
            raise StockcastError("no seen ticker is left to learn from: " + "; ".join(self.skipped.values()))
        self.train = self._joined(splits["train"], seen)
        self.val, self.test = self._joined(splits["val"]), self._joined(splits["test"])
        # Per symbol, in `self.symbols` order (the concatenated splits' order): baselines fit per ticker.
        self.by_symbol = {symbol: {name: splits[name][i] for name in splits} for i, symbol in enumerate(self.symbols)}
        self.val_seen = self.val if all(seen) else Split.concat(
            [split for split, keep in zip(splits["val"], seen, strict=True) if keep])
        self.scaler = self._fit_scaler([rows for rows, keep in zip(train_values, seen, strict=True) if keep],
                                       self.train)
        self.prices = prices
        log.info("%s: windows train/val/test = %d/%d/%d (%d unseen ticker(s) scored, never trained on)",
                 self.symbol, len(self.train), len(self.val), len(self.test), len(self.unseen))

    @staticmethod
    def _joined(splits: list[Split], keep: list[bool] | None = None) -> Split:
        """The kept tickers' windows as one split; each kept entry of `splits` is replaced by its view of it."""
        kept = [index for index in range(len(splits)) if keep is None or keep[index]]
        joined, first = Split.concat([splits[index] for index in kept]), 0
        for index in kept:
            splits[index], first = joined.rows(first, first + len(splits[index])), first + len(splits[index])
        return joined

    def _periods(self, symbol: str, frame: pd.DataFrame, val_date: pd.Timestamp,
                 test_date: pd.Timestamp) -> tuple[np.ndarray, dict[str, Split]]:
        """The ticker's training rows (for the scaler) and its train/val/test windows."""
        values = frame[self.features].to_numpy(dtype=np.float64)  # [T, F]
        bars = bars_of(frame)
        val_row, test_row = (int(frame.index.searchsorted(date)) for date in (val_date, test_date))
        rows = {"train": (0, val_row), "val": (val_row, test_row), "test": (test_row, len(frame))}
        own = {name: self._split(frame, values, bars, first, stop) for name, (first, stop) in rows.items()}
        empty = next((name for name, split in own.items() if len(split) == 0), None)
        if empty:
            raise StockcastError(f"{symbol}: the {empty} period has no complete window; "
                                 "widen the date range or move the split dates")
        return values[:val_row], own

    @contextmanager
    def _skipped_when_pooled(self, symbol: str) -> Iterator[None]:
        """A pooled model leaves out a ticker it cannot use (too little history, no window in a period)
        with a warning; a single-ticker model fails with the same message."""
        try:
            yield
        except StockcastError as err:
            if len(self.symbols) == 1:
                raise
            self.skipped[symbol] = str(err)
            self.warnings.append(f"left out of the pooled model: {err}")
            log.warning("left out of the pooled model: %s", err)

    def _check_some_left(self, prices: dict[str, pd.DataFrame]) -> None:
        if not prices:
            raise StockcastError("no ticker of the pooled model is usable: " + "; ".join(self.skipped.values()))

    def _load(self, symbol: str) -> pd.DataFrame:
        frame = self.downloader.load(symbol, self.start, self.end)
        check_prices(frame, self.features, symbol)
        frame, cut = cut_placeholders(frame, symbol)
        needed = self.context + self.horizon
        if len(frame) < 3 * needed:
            raise StockcastError(
                f"{symbol} has {len(frame)} trading days in {self.start}..{self.end}: too little "
                f"history for context {self.context} + horizon {self.horizon} in train, val and test "
                f"(need at least {3 * needed})"
            )
        self.warnings += frame.attrs.get(REPAIRS, []) + cut + warn_split_jumps(frame, symbol)
        return frame

    def _boundary_dates(self, dates: pd.DatetimeIndex) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First day of the validation and of the test period."""
        n = len(dates)
        val_date = (pd.Timestamp(self.val_start) if self.val_start
                    else dates[int(round(n * (1 - self.val_fraction - self.test_fraction)))])
        test_date = (pd.Timestamp(self.test_start) if self.test_start
                     else dates[int(round(n * (1 - self.test_fraction)))])
        if not dates[0] < val_date < test_date <= dates[-1]:
            raise StockcastError(f"split dates must satisfy {dates[0]:%Y-%m-%d} < val_start < "
                                 f"test_start <= {dates[-1]:%Y-%m-%d}")
        return val_date, test_date

    def _fit_scaler(self, train_values: list[np.ndarray], train: Split) -> Scaler:
        """Min/max per feature over the training rows; std of the training windows' relative changes. (The
        volatility's starting point is the net's own: `ForecastNet.calibrate`.)"""
        changes = train.targets / train.inputs[:, -1, :1] - 1  # [N, horizon]
        stacked = np.concatenate(train_values)  # [rows, F]
        return Scaler(feature_min=stacked.min(axis=0).tolist(), feature_max=stacked.max(axis=0).tolist(),
                      change_std=float(changes.double().std(unbiased=False)) or 1.0)

    def _split(self, prices: pd.DataFrame, values: np.ndarray, bars: np.ndarray, first: int, stop: int) -> Split:
        """Windows whose targets lie in rows [first, stop); inputs may start before `first`."""
        lead = max(first - self.context, 0)  # the first window's targets start at row `first`
        windows, targets = make_windows(values[lead:stop], self.context, self.horizon)
        target_start = lead + self.context
        rows = target_start + np.arange(len(targets))[:, None] + np.arange(self.horizon)[None, :]
        dates = prices.index.to_numpy()[rows]  # [N, horizon]
        inputs = torch.tensor(windows, dtype=torch.float32)
        del windows  # the float64 copy, freed before the bars' windows are made
        # The default features are the bars themselves: one tensor serves both (half the memory of a universe).
        bar_windows = inputs if self.features == list(BARS) else torch.tensor(
            make_windows(bars[lead:stop], self.context, self.horizon)[0], dtype=torch.float32)
        return Split(inputs, torch.tensor(targets, dtype=torch.float32), dates, bar_windows)

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        return DataLoader(Windows(split.inputs, split.targets), batch_size=self.batch_size, shuffle=shuffle,
                          collate_fn=_as_fetched)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_seen, shuffle=False)


class Windows(TensorDataset):
    """Windows fetched a batch at a time: one index per batch, not one per window and a stack of them (the
    data loading that dominated a pooled epoch). The loaders' samplers, DDP's included, are unchanged."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        return tuple(tensor[indices] for tensor in self.tensors)


def _as_fetched(batch: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
    """The loaders' collate function: `Windows` returns whole batches already."""
    return batch
