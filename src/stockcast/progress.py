"""Progress of long work: a bar with counts and time left on a terminal (rich; Lightning's TQDM bar for a fit),
and plain lines, at most one a minute per step and no control characters, when the output is not a terminal
(a log file, CI, a container, a SLURM job)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any, TypeVar

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

log = logging.getLogger(__name__)
T = TypeVar("T")

EVERY = 60.0  # seconds between two plain lines of one step


def on_terminal() -> bool:
    """Whether the console is a terminal a bar can redraw."""
    return sys.stdout.isatty()


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class Plain:
    """One step's plain progress lines: "scoring: 120/494 (24 %), 1.2 min, about 3.8 min left", said at most
    every `every` seconds, and once at the end (how far it got: a fit may stop early) where any was said."""

    def __init__(self, description: str, total: int, every: float = EVERY,
                 say: Callable[[str], None] = log.info) -> None:
        self.description, self.total, self.every, self.say = description, total, every, say
        self.started = self.last = time.monotonic()
        self.said, self.done = False, 0

    def update(self, done: int, detail: str = "") -> None:
        self.done = done
        now = time.monotonic()
        if now - self.last < self.every or done >= self.total:
            return
        self.last, self.said = now, True
        elapsed = now - self.started
        left = f", about {_minutes(elapsed * (self.total - done) / done)} left" if done else ""
        self.say(f"{self.description}: {done}/{self.total} ({100 * done / self.total:.0f} %), {_minutes(elapsed)}{left}"
                 + (f"; {detail}" if detail else ""))

    def finish(self, detail: str = "") -> None:
        if self.said:
            self.say(f"{self.description}: {self.done}/{self.total} in {_minutes(time.monotonic() - self.started)}"
                     + (f"; {detail}" if detail else ""))


def tracked(items: Iterable[T], description: str, total: int | None = None, every: float = EVERY) -> Iterator[T]:
    """`items`, with progress: rich's bar on a terminal (none for a single item), `Plain` lines otherwise."""
    count = total if total is not None else len(items) if isinstance(items, Sized) else 0
    if on_terminal():
        if count == 1:
            yield from items
            return
        from rich.progress import track

        yield from track(items, description=description, total=count or None)
        return
    plain = Plain(description, count, every)
    for done, item in enumerate(items, start=1):
        yield item
        plain.update(done)
    plain.finish()


class PlainProgressBar(ProgressBar):
    """Lightning's progress bar as plain lines, for a fit whose output is not a terminal: the epoch, the batch,
    the time and the last validation loss, at most every `every` seconds; a long validation its own lines."""

    def __init__(self, every: float = EVERY) -> None:
        super().__init__()
        self.every = every
        self.enabled = True
        self.plain: Plain | None = None
        self.validation: Plain | None = None

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batches = int(self.total_train_batches) if self.total_train_batches != float("inf") else 0
        self.plain = Plain("fit", trainer.max_epochs * batches if trainer.max_epochs else 0, self.every)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.enabled and self.plain is not None:
            done = trainer.current_epoch * int(self.total_train_batches) + batch_idx + 1
            self.plain.update(done, f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}{self._loss(trainer)}")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and not trainer.sanity_checking:
            self.validation = Plain("validation", int(self.total_val_batches), self.every)

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.enabled and self.validation is not None and not trainer.sanity_checking:
            self.validation.update(batch_idx + 1, f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and self.validation is not None and not trainer.sanity_checking:
            self.validation.finish(self._loss(trainer).lstrip(", "))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and self.plain is not None:
            epochs = trainer.current_epoch
            self.plain.finish(f"{epochs} epoch{'s' if epochs != 1 else ''}{self._loss(trainer)}")

    @staticmethod
    def _loss(trainer: pl.Trainer) -> str:
        val_loss = trainer.callback_metrics.get("val_loss")
        return f", val_loss {float(val_loss):.4f}" if val_loss is not None else ""


def progress_bar(refresh_rate: int = 10, every: float = EVERY) -> ProgressBar:
    """The fit's progress bar (configs/callbacks): Lightning's TQDM bar on a terminal, plain lines otherwise."""
    return TQDMProgressBar(refresh_rate) if on_terminal() else PlainProgressBar(every)
