"""Progress when the output is not a terminal: plain lines, no control characters, at most one a minute."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest

from stockcast import progress
from stockcast.progress import PlainProgressBar, progress_bar, tracked
from tests.test_train_cli import ROOT

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but tab and newline: \r redraws, \x1b[ colours


def test_plain_lines_at_most_once_a_minute(monkeypatch, caplog):
    now = iter(range(0, 10_000, 20))  # each step 20 s later
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(now)))
    with caplog.at_level(logging.INFO, logger="stockcast.progress"):
        assert list(tracked(range(10), "scoring, tickers")) == list(range(10))
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["scoring, tickers: 3/10 (30 %), 60 s, about 2.3 min left",
                     "scoring, tickers: 6/10 (60 %), 2.0 min, about 80 s left",
                     "scoring, tickers: 9/10 (90 %), 3.0 min, about 20 s left",
                     "scoring, tickers: 10/10 in 3.7 min"]


def test_a_short_step_says_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="stockcast.progress"):
        list(tracked(range(5), "reading prices, tickers"))
    assert caplog.records == []


def test_the_fit_gets_plain_lines_when_not_a_terminal():
    assert isinstance(progress_bar(), PlainProgressBar)  # pytest captures stdout: not a terminal


@pytest.mark.slow
def test_a_short_runs_progress_reads_as_plain_text(tmp_path):
    """train.py piped, as CI or a log file sees it: the fit's progress as plain lines, not a control character
    (every=0: a line per batch, however quick the fit)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"paths.data_dir={tmp_path / 'data'}",
         f"paths.mlruns_dir={tmp_path / 'mlruns'}", f"hydra.run.dir={tmp_path / 'outputs'}", "end=2025-11-07",
         "trainer.max_epochs=2", "model.net.hidden=16", "model.net.layers=1", "callbacks.progress_bar.every=0"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert CONTROL.search(output) is None, repr(CONTROL.search(output))
    fit = [line for line in output.splitlines() if "[stockcast.progress]" in line and "- fit: " in line]
    assert fit and re.search(r"- fit: \d+/\d+ \(\d+ %\), .*; epoch [12]/2", fit[0])
    assert re.search(r"- fit: (\d+)/\1 in .*; 2 epochs, val_loss \d", fit[-1])
    assert "1 ticker read from prices, downloads" in output
