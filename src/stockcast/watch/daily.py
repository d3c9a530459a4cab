"""The daily job: refresh the served tickers' prices, then score what was served (monitor), on a cron line.

Each step runs as its own `scripts/admin.py` process, as cron would run it, so one failing or crashing
leaves the scheduler and the next day's run alone. APScheduler reads the cron line (UTC) and waits for it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_SCHEDULER_STARTED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

SCHEDULE = "30 22 * * mon-fri"  # weekdays at 22:30 UTC: B3 and NYSE have both closed by 21:00 UTC
STEPS = ("refresh", "monitor")


def say_now(line: str) -> None:
    """Print at once: a container's log is a pipe, where print would hold lines until its buffer fills."""
    print(line, flush=True)


def run_once(admin: Path, say: Callable[[str], None] = say_now) -> int:
    """Every step once, in order, whatever the one before returned; the highest exit status (0: all done)."""
    codes = []
    for step in STEPS:
        say(f"daily: {step}")
        codes.append(subprocess.run([sys.executable, str(admin), step]).returncode)
        say(f"daily: {step} exited {codes[-1]}")
    return max(codes)


def trigger(schedule: str) -> CronTrigger:
    """The cron line (minute hour day month weekday) in UTC; a malformed one raises ValueError. Weekdays by
    name only: APScheduler 3 numbers them from Monday = 0, cron from Sunday = 0, so `1-5` would mean Tuesday
    to Saturday here."""
    fields = schedule.split()
    if len(fields) == 5 and any(char.isdigit() for char in fields[4]):
        raise ValueError(f"write the weekdays by name (e.g. mon-fri), not {fields[4]!r}: cron counts 0 as Sunday, "
                         "the scheduler as Monday")
    return CronTrigger.from_crontab(schedule, timezone="UTC")


def run_on(schedule: str, admin: Path, say: Callable[[str], None] = say_now) -> None:
    """Run the steps at every time the cron line names, until stopped; a run missed by under an hour (the
    machine asleep, the container restarting) still runs, several missed runs run once."""
    scheduler = BlockingScheduler(timezone="UTC")
    job = scheduler.add_job(run_once, trigger(schedule), args=[admin, say], misfire_grace_time=3600, coalesce=True)
    scheduler.add_listener(lambda _: say(f"daily: next run {job.next_run_time:%Y-%m-%d %H:%M %Z}"),
                           EVENT_SCHEDULER_STARTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    say(f"daily: '{schedule}' (UTC), steps {', '.join(STEPS)}")
    scheduler.start()
