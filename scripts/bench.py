"""`make bench`: load-test the running server at 1, 32 and 128 connections; results go into BENCHMARKS.md."""

import argparse
import os
import re
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("STOCKCAST_ROOT", str(ROOT))

from stockcast.cli import user_errors_exit  # noqa: E402
from stockcast.errors import StockcastError  # noqa: E402

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 32, 128])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--python-client", action="store_true", help="use the Python client even if wrk is installed")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    with user_errors_exit():
        from stockcast.serving import bench
        from stockcast.serving.server import Server

        server = Server.default(ROOT)
        if not server.ready():
            raise StockcastError("no ready TorchServe at the configured addresses: make serve first")
        use_wrk = shutil.which("wrk") is not None and not args.python_client
        client = "wrk" if use_wrk else "the Python client" + ("" if args.python_client else
                                                             " (wrk is not installed: apt-get install -y wrk)")
        print(f"warming up, then {args.runs} x {args.seconds} s per connection count with {client}")
        bench.measure(server, 32, 5, use_wrk)
        logs_before, started = bench.log_bytes(server), time.monotonic()
        levels = []
        for connections in args.connections:
            runs = [bench.measure(server, connections, args.seconds, use_wrk) for _ in range(args.runs)]
            levels.append(bench.Level(connections, runs))
            print(f"  {connections:4d} connections: " + "; ".join(
                f"{run.rps:,.0f} req/s p50 {run.p50:.2f} p99 {run.p99:.2f} ms errors {run.errors} "
                f"other {run.other_cpu:.0f} %" for run in runs))
        log_rate = (bench.log_bytes(server) - logs_before) / 2**20 / ((time.monotonic() - started) / 60)
        floor = {batch: bench.forward_floor(server.model_store, batch) for batch in (1, 32)}
        section = bench.report(levels, floor, bench.served_config(server), bench.machine(), log_rate, args.seconds,
                               client)
    text = args.output.read_text() if args.output.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    text = re.sub(f"{START}.*?{END}", lambda _: f"{START}\n{section}\n{END}", text, flags=re.S)
    args.output.write_text(text)
    print(f"\n{section}\n\nwritten to {args.output}")


if __name__ == "__main__":
    main()
