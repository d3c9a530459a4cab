"""serve/deployed.json: which versions were deployed, the stack a rollback walks back, each switch's time."""

from __future__ import annotations

import datetime as dt

import pytest

from stockcast.errors import StockcastError
from stockcast.release import history


def test_undo_walks_back_and_every_switch_is_dated(tmp_path):
    times = [dt.datetime(2025, 1, day, tzinfo=dt.UTC) for day in range(1, 8)]
    for version, at in zip(["1", "2", "3", "2", "2", "4"], times, strict=False):
        history.remember(tmp_path, version, at)
    assert history.deployed(tmp_path, "4") == [1, 2, 3, 4]
    assert history.previous(tmp_path, "4") == 2  # 3 was undone (back to 2), then 4 deployed
    assert history.defaults(tmp_path) == [(1, times[0]), (2, times[1]), (3, times[2]), (2, times[3]), (4, times[5])]
    with pytest.raises(StockcastError, match="no earlier version to roll back to"):
        history.previous(tmp_path, "3")  # not what serves now
