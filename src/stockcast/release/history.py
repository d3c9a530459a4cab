"""The server's deploy history, `deployed.json` in its run folder: which versions were a committed default,
in what order they served, and when each became the default. Release commands write it after a commit;
the track record and the replay read it (`defaults`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from stockcast.errors import StockcastError
from stockcast.files import replacing
from stockcast.serving.versions import as_version

DEPLOYED = "deployed.json"  # in the server's run folder: the committed defaults (see `_read`)


def deployed(run_dir: Path, default: str) -> list[int]:
    """The versions that were ever a committed default of this server (the one serving at the first admin
    command counts: it was started with it)."""
    if not (run_dir / DEPLOYED).exists():
        remember(run_dir, default)
    return _read(run_dir)["deployed"]


def previous(run_dir: Path, current: str) -> int:
    """The version that served before the current default: what undoing the last deploy returns to."""
    served = _read(run_dir)["served"]
    if len(served) < 2 or str(served[-1]) != current:
        raise StockcastError(f"no earlier version to roll back to: the defaults served so far are {served} and "
                             f"version {current} serves now; name one with --to")
    return served[-2]


def remember(run_dir: Path, version: str, now: dt.datetime | None = None) -> None:
    """Record `version` as the committed default (atomically): a new default goes on top of the served ones;
    the one below the top is an undo, which takes the top off; the top itself is already recorded."""
    number = as_version(version)
    if number is None:
        return
    history = _read(run_dir)
    served = history["served"]
    if served[-1:] == [number]:
        return
    if served[-2:-1] == [number]:
        served.pop()
    else:
        served.append(number)
    history["deployed"] = sorted({*history["deployed"], number})
    history["defaults"].append([number, (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")])
    with replacing(run_dir / DEPLOYED) as partial:
        partial.write_text(json.dumps(history))


def defaults(run_dir: Path) -> list[tuple[int, dt.datetime]]:
    """Each version that became the default, with when, in order (what the track record replays)."""
    return [(version, dt.datetime.fromisoformat(at)) for version, at in _read(run_dir)["defaults"]]


def _read(run_dir: Path) -> dict[str, list]:
    """deployed.json: every version that was a committed default (`deployed`), the defaults in the order they
    served (`served`, a stack: an undo takes the top off) and every switch of the default with its time
    (`defaults`, [version, ISO time] pairs)."""
    path = run_dir / DEPLOYED
    history = json.loads(path.read_text()) if path.exists() else {}
    return {"deployed": [], "served": [], "defaults": [], **history}
