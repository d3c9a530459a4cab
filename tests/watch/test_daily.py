"""The daily job's schedule (a cron line read by APScheduler) and its steps, each its own process."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from stockcast.watch.daily import SCHEDULE, STEPS, run_once, trigger
from tests.serving import ROOT


def test_the_shipped_schedule_is_weekdays_at_22_30_utc():
    fires, moment = [], dt.datetime(2026, 12, 4, 23, 0, tzinfo=dt.UTC)  # a Friday, after that day's run
    for _ in range(3):
        moment = trigger(SCHEDULE).get_next_fire_time(None, moment)
        fires.append(moment)
        moment += dt.timedelta(minutes=1)
    assert [f"{fire:%a %H:%M %Z}" for fire in fires] == ["Mon 22:30 UTC", "Tue 22:30 UTC", "Wed 22:30 UTC"]


def test_compose_runs_the_shipped_schedule():
    import yaml

    daily = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["daily"]
    assert daily["entrypoint"][-1] == "daily" and daily["command"] == ["--cron", SCHEDULE]


def test_a_malformed_cron_line_is_refused_by_the_command():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "admin.py"), "daily", "--cron", "30 22 * *"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--cron '30 22 * *'" in done.stderr


@pytest.mark.parametrize("codes, expected", [((0, 0), 0), ((1, 0), 1), ((2, 1), 2)])
def test_every_step_runs_in_order_and_the_worst_exit_status_is_returned(tmp_path, codes, expected):
    """A stand-in admin script that records each step and exits with its code: a failed refresh still lets
    the monitor run."""
    admin = tmp_path / "admin.py"
    admin.write_text(f"import sys\nopen({str(tmp_path / 'ran')!r}, 'a').write(sys.argv[1] + '\\n')\n"
                     f"sys.exit({dict(zip(STEPS, codes, strict=True))!r}[sys.argv[1]])\n")
    said = []
    assert run_once(admin, said.append) == expected
    assert (tmp_path / "ran").read_text().split() == list(STEPS)
    assert said[-1] == f"daily: monitor exited {codes[1]}"


def test_numbered_weekdays_are_refused_cron_and_the_scheduler_count_them_differently():
    with pytest.raises(ValueError, match="by name"):
        trigger("30 22 * * 1-5")
