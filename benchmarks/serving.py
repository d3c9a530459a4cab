"""`make bench` (`python -m benchmarks.serving`): load-test the running server beside its two peers, in one run.

The request is what `make predict` sends (the served default ticker's last `context` days, with the day's bars
where the model reads them, the ticker and the last date), for `--windows` windows ending on as many different
days, sent in turn: every request runs its own forward pass. The servers: the running TorchServe (`make serve`,
the shipped configuration), the bare peer (benchmarks/bare_peer.py: 2 uvicorn workers, an LSTM of the served
net's size, the medians out) and the same-handler peer (benchmarks/peer.py: the archived handler in one FastAPI
process); the peers serve the running server's startup archive on free loopback ports. Each cell (server,
connections, request) runs `--runs` times with wrk (or the Python clients), the cells taken in turns, so a change
in the machine's load meanwhile reaches every server alike; beside them the in-process floors. The results go
into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from benchmarks.cli import bench_main
from stockcast import ROOT
from stockcast.errors import StockcastError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=8, help="different windows sent in turn (default 8)")
    parser.add_argument("--python-client", action="store_true", help="use the Python client even if wrk is installed")
    bench_main(parser, run, seconds=10)


def run(args: argparse.Namespace) -> str:
    from benchmarks.load import InTurn
    from benchmarks.measure import Level, Target, floors, log_bytes, machine, measure, served_config
    from benchmarks.peers import BARE as BARE_PEER
    from benchmarks.peers import HANDLER as HANDLER_PEER
    from benchmarks.peers import peer_server
    from benchmarks.report import BARE, CELLS, FULL, HANDLER, SHORT, TORCHSERVE, Cell, Compared, report
    from stockcast.config import load_config
    from stockcast.markdown import replace_section
    from stockcast.predict import request_body, served_prices
    from stockcast.runtime.bars import BAR_FIELDS
    from stockcast.serving.server import Server
    from stockcast.serving.versions import startup_archive

    server = Server.default(ROOT)
    if not server.ready():
        raise StockcastError("no ready TorchServe at the configured addresses: make serve first")
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    client = "wrk" if use_wrk else "the Python client" + ("" if args.python_client else
                                                         " (wrk is not installed: apt-get install -y wrk)")
    symbol, described, prices = served_prices(server, Path(load_config("train").paths.data_dir), online=False)
    full = InTurn(request_body(prices.iloc[:len(prices) - back], symbol, described) for back in range(args.windows))
    window = described["window"]
    short = InTurn({**body, **{field: body[field][-window:] for field in ("prices", *BAR_FIELDS) if field in body}}
                   for body in full)
    payloads = {FULL: full, SHORT: short}
    archive = startup_archive(server.model_store)
    with peer_server(BARE_PEER, archive) as bare, peer_server(HANDLER_PEER, archive) as same:
        targets = {TORCHSERVE: Target.torchserve(server), BARE: Target(bare.url, None, bare.pid),
                   HANDLER: Target(same.url, None, same.pid)}
        print(f"warming up, then {args.runs} x {args.seconds} s per cell with {client}, {len(CELLS)} cells in turn")
        for target in targets.values():
            measure(target, 32, 3, use_wrk, full)
        logs_before, ts_seconds = log_bytes(server), 0.0
        runs: dict[tuple[str, Cell], list] = {}
        for number in range(args.runs):
            for cell in CELLS:
                for name in cell.servers:
                    found = measure(targets[name], cell.connections, args.seconds, use_wrk, payloads[cell.request])
                    runs.setdefault((name, cell), []).append(found)
                    ts_seconds += args.seconds if name == TORCHSERVE else 0
                    print(f"  run {number + 1}: {name}, {cell.connections} connections, {cell.request} rows: "
                          f"{found.rps:,.0f} req/s p50 {found.p50:.2f} p99 {found.p99:.2f} ms errors {found.errors} "
                          f"other {found.other_cpu:.0f} %")
        log_rate = (log_bytes(server) - logs_before) / 2**20 / (ts_seconds / 60)
    compared = Compared({key: Level(key[1].connections, found) for key, found in runs.items()},
                        floors(archive, list(full)), symbol, len(full[0]["prices"]), window, len(full))
    section = report(compared, served_config(server), machine(), log_rate, args.seconds, client)
    replace_section(args.output, "bench", section)
    return section


if __name__ == "__main__":
    main()
