"""The Markdown results section `make bench` writes into BENCHMARKS.md."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.measure import Floors, Level
from benchmarks.store import Refreshed

TORCHSERVE, BARE, HANDLER = "TorchServe", "bare peer", "same-handler peer"
FULL, SHORT = "context", "window"  # the request make predict sends; the same cut to the model's window
BY_NAME = "name"  # {"stock": X}: the server reads X's bars (TorchServe from its price store, the bare peer from memory)


@dataclass(frozen=True)
class Cell:
    request: str  # FULL or SHORT
    connections: int
    servers: Sequence[str]


# What the comparison needs: a single client, 32 connections (both requests and by name), 128 (errors).
CELLS = (Cell(FULL, 1, (TORCHSERVE, BARE, HANDLER)), Cell(FULL, 32, (TORCHSERVE, BARE, HANDLER)),
         Cell(SHORT, 32, (TORCHSERVE, BARE)), Cell(FULL, 128, (TORCHSERVE, BARE)),
         Cell(BY_NAME, 1, (TORCHSERVE, BARE)), Cell(BY_NAME, 32, (TORCHSERVE, BARE)),
         Cell(BY_NAME, 128, (TORCHSERVE, BARE)))


@dataclass(frozen=True)
class Compared:
    """One run's figures: each (server, cell)'s runs, the in-process floors, and what the request was."""

    levels: dict[tuple[str, Cell], Level]
    floors: Floors
    symbol: str
    days: int  # rows of the full request
    window: int  # rows of the short one
    windows: int  # different windows sent in turn
    refreshed: Refreshed  # the by-name store's files rewritten under load

    def level(self, server: str, request: str, connections: int) -> Level:
        return next(level for (name, cell), level in self.levels.items()
                    if (name, cell.request, cell.connections) == (server, request, connections))


def report(compared: Compared, config: dict[str, str], host: dict[str, str], log_mb_per_minute: float,
           seconds: int, client: str) -> str:
    """Every cell's medians, the comparison with the peers against the goals, the in-process floors, log volume,
    config and machine."""
    runs = len(next(iter(compared.levels.values())).runs)
    rows = {FULL: f"{compared.days} days", SHORT: f"{compared.window} days", BY_NAME: "by name"}
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `make bench`: {client}, {runs} runs of {seconds} s per "
             "cell, the cells taken in turns, medians (errors: total over the runs). The request: what `make predict` "
             f"sends ({compared.symbol}: {compared.days} days of closes with the day's open, high and low, the "
             f"ticker, the last date), {compared.windows} windows ending on {compared.windows} different days, sent "
             f"in turn; \"{compared.window} days\": the same windows cut to the model's window; \"by name\": "
             f"`{{\"stock\": \"{compared.symbol}\"}}` alone, which a private TorchServe of the same archive and "
             "config answers from a price store of the served tickers' real bars relabelled to the latest sessions "
             "(a temp folder), and the bare peer from the same bars held in memory.", "",
             "| server | connections | request | req/s | p50 ms | p99 ms | errors | other load % | req/s per run |",
             "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for server in (TORCHSERVE, BARE, HANDLER):
        for cell in CELLS:
            if server in cell.servers:
                level = compared.levels[server, cell]
                lines.append(f"| {server} | {cell.connections} | {rows[cell.request]} | {level.median('rps'):,.0f} | "
                             f"{level.median('p50'):.2f} | {level.median('p99'):.2f} | "
                             f"{sum(run.errors for run in level.runs)} | {level.median('other_cpu'):.0f} | "
                             f"{', '.join(f'{run.rps:,.0f}' for run in level.runs)} |")
    lines += ["", *_against_peers(compared, rows), "", *_floors(compared), "",
              f"Log volume under load: {log_mb_per_minute:.2f} MB per minute (all files in the server's logs/).", "",
              "Config: " + "; ".join(f"{key} {value}" for key, value in config.items()) + ".", "",
              "Machine: " + "; ".join(f"{key} {value}" for key, value in host.items()) + "."]
    return "\n".join(lines)


def _against_peers(compared: Compared, rows: dict[str, str]) -> list[str]:
    def median(server: str, request: str, connections: int, field: str) -> float:
        return compared.level(server, request, connections).median(field)

    def errors(server: str, request: str = FULL) -> str:
        counts = [sum(run.errors for run in compared.level(server, request, n).runs) for n in (32, 128)]
        return f"{counts[0]}, {counts[1]} ({median(server, request, 128, 'rps'):,.0f} req/s at 128)"

    lines = ["Against the peers, from the medians above:", "",
             f"| | {TORCHSERVE} (shipped) | {BARE} | ratio | goal | {HANDLER} | ratio |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for request in (SHORT, FULL):
        shown = rows[request] + (f", {compared.windows} windows in turn" if request == FULL else "")
        ts, bare = median(TORCHSERVE, request, 32, "rps"), median(BARE, request, 32, "rps")
        same = median(HANDLER, FULL, 32, "rps")
        peer = f"{same:,.0f} | {ts / same:.2f}x" if request == FULL else " | "
        lines.append(f"| req/s at 32 connections, {shown} | {ts:,.0f} | {bare:,.0f} | {ts / bare:.2f}x | "
                     f"{_mark(ts >= 2 * bare)} >= 2x | {peer} |")
    ts, bare, same = (median(server, FULL, 1, "p50") for server in (TORCHSERVE, BARE, HANDLER))
    lines += [f"| single-client p50, {rows[FULL]} | {ts:.2f} ms | {bare:.2f} ms | {ts / bare:.1f}x | "
              f"{_mark(ts < 3 * bare)} < 3x | {same:.2f} ms | {ts / same:.1f}x |",
              f"| errors at 32 and 128 connections | {errors(TORCHSERVE)} | {errors(BARE)} | | "
              f"{_mark(errors(TORCHSERVE).startswith('0, 0 '))} 0 | | |"]
    ts, bare = median(TORCHSERVE, BY_NAME, 32, "rps"), median(BARE, BY_NAME, 32, "rps")
    lines.append(f"| by name: req/s at 32 connections | {ts:,.0f} | {bare:,.0f} | {ts / bare:.2f}x | "
                 f"{_mark(ts >= 2 * bare)} >= 2x | | |")
    ts, bare = median(TORCHSERVE, BY_NAME, 1, "p50"), median(BARE, BY_NAME, 1, "p50")
    lines += [f"| by name: single-client p50 | {ts:.2f} ms | {bare:.2f} ms | {ts / bare:.1f}x | "
              f"{_mark(ts < 3 * bare)} < 3x | | |",
              f"| by name: errors at 32 and 128 connections | {errors(TORCHSERVE, BY_NAME)} | {errors(BARE, BY_NAME)} "
              f"| | {_mark(errors(TORCHSERVE, BY_NAME).startswith('0, 0 '))} 0 | | |",
              f"| by name: a refresh of every served file during load | {compared.refreshed.line()} | | | "
              f"{_mark(compared.refreshed.met)} 0 failed, the next answers read the new bar | | |"]
    return lines


def _floors(compared: Compared) -> list[str]:
    floors = compared.floors
    per_core = 1e3 * 32 / floors.net[32]
    best = max(level.median("rps") for (name, cell), level in compared.levels.items()
               if name == TORCHSERVE and cell.request != BY_NAME)
    single = compared.level(TORCHSERVE, FULL, 1).median("p50")
    lines = ["In-process floors (one torch thread, as in a worker; CPU time, medians of 300 calls each over the same "
             "windows, the calls taking turns):", "",
             "| what | ms | against | ms | ratio | goal |", "|---|---:|---|---:|---:|---|"]
    for batch, goal in ((1, 2.0), (32, 1.5)):
        net, bare = floors.net[batch], floors.bare[batch]
        lines.append(f"| the served net's forward pass, batch {batch} | {net:.3f} | the bare peer's LSTM, batch "
                     f"{batch} | {bare:.3f} | {net / bare:.2f}x | {_mark(net <= goal * bare)} within {goal}x |")
    ratio = floors.handler / floors.net[1]
    lines += [f"| the handler, one request (parse, forward, answer, JSON) | {floors.handler:.3f} | the served net's "
              f"forward pass, batch 1 | {floors.net[1]:.3f} | {ratio:.2f}x | {_mark(ratio <= 1.5)} within 1.5x |",
              f"| the handler, per request of a full batch ({floors.batch} requests) | {floors.handler_batch:.3f} | "
              f"the handler, one request | {floors.handler:.3f} | {floors.handler_batch / floors.handler:.2f}x | |",
              "",
              f"TorchServe's single-client p50 is {single / floors.handler:.1f}x the handler's in-process time; its "
              f"best throughput ({best:,.0f} req/s) is {100 * best / (2 * per_core):.0f} % of 2 cores x "
              f"{per_core:,.0f} forward passes a second (batch 32)."]
    return lines


def _mark(met: bool) -> str:
    return "met:" if met else "missed:"
