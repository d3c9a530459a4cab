"""`make bench` (`python -m benchmarks.serving`): load-test the running server at 1, 32 and 128 connections
with wrk (or the Python clients), beside the in-process floor; the results go into BENCHMARKS.md."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from stockcast import ROOT
from stockcast.cli import user_errors_exit
from stockcast.errors import StockcastError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 32, 128])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--python-client", action="store_true", help="use the Python client even if wrk is installed")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    with user_errors_exit():
        from benchmarks.measure import Level, forward_floor, log_bytes, machine, measure, served_config
        from benchmarks.report import report
        from stockcast.markdown import replace_section
        from stockcast.serving.server import Server

        server = Server.default(ROOT)
        if not server.ready():
            raise StockcastError("no ready TorchServe at the configured addresses: make serve first")
        use_wrk = shutil.which("wrk") is not None and not args.python_client
        client = "wrk" if use_wrk else "the Python client" + ("" if args.python_client else
                                                             " (wrk is not installed: apt-get install -y wrk)")
        print(f"warming up, then {args.runs} x {args.seconds} s per connection count with {client}")
        measure(server, 32, 5, use_wrk)
        logs_before, started = log_bytes(server), time.monotonic()
        levels = []
        for connections in args.connections:
            runs = [measure(server, connections, args.seconds, use_wrk) for _ in range(args.runs)]
            levels.append(Level(connections, runs))
            print(f"  {connections:4d} connections: " + "; ".join(
                f"{run.rps:,.0f} req/s p50 {run.p50:.2f} p99 {run.p99:.2f} ms errors {run.errors} "
                f"other {run.other_cpu:.0f} %" for run in runs))
        log_rate = (log_bytes(server) - logs_before) / 2**20 / ((time.monotonic() - started) / 60)
        floor = {batch: forward_floor(server.model_store, batch) for batch in (1, 32)}
        section = report(levels, floor, served_config(server), machine(), log_rate, args.seconds, client)
        replace_section(args.output, "bench", section)
    print(f"\n{section}\n\nwritten to {args.output}")


if __name__ == "__main__":
    main()
