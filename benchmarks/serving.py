"""`make bench` (`python -m benchmarks.serving`): load-test the running server beside its two peers, in one run.

The request is what `make predict` sends (the served default ticker's last `context` days, with the day's bars
where the model reads them, the ticker and the last date), for `--windows` windows ending on as many different
days, sent in turn: every request runs its own forward pass. The servers: the running TorchServe (`make serve`,
the shipped configuration), the bare peer (benchmarks/bare_peer.py: 2 uvicorn workers, an LSTM of the served
net's size, the medians out) and the same-handler peer (benchmarks/peer.py: the archived handler in one FastAPI
process); the peers serve the running server's startup archive on free loopback ports. By name (`{"stock": X}`,
no bars): a private TorchServe of the same archive and config.properties on free ports answers from a price store
in a temp folder (benchmarks/store.py: the served tickers' real bars, relabelled to the latest closed sessions),
the bare peer from the same bars held in memory; at the end every file of that store gets one more bar while
clients send by-name requests. Each cell (server, connections, request) runs `--runs` times with wrk (or the
Python clients), the cells taken in turns, so a change in the machine's load meanwhile reaches every server alike;
beside them the in-process floors. The results go into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from contextlib import ExitStack
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
    from benchmarks.report import BARE, BY_NAME, CELLS, FULL, HANDLER, SHORT, TORCHSERVE, Cell, Compared, report
    from benchmarks.store import BenchStore, local_bars, refresh_under_load, served_from
    from stockcast.config import load_config
    from stockcast.data.download import Downloader
    from stockcast.markdown import replace_section
    from stockcast.predict import request_body, served_prices
    from stockcast.runtime.bars import BAR_FIELDS
    from stockcast.serving.management import Management
    from stockcast.serving.private_server import private_server
    from stockcast.serving.server import Server
    from stockcast.serving.versions import startup_archive

    server = Server.default(ROOT)
    if not server.ready():
        raise StockcastError("no ready TorchServe at the configured addresses: make serve first")
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    client = "wrk" if use_wrk else "the Python client" + ("" if args.python_client else
                                                         " (wrk is not installed: apt-get install -y wrk)")
    data_dir = Path(load_config("train").paths.data_dir)
    served = Management(server).description()
    symbol, described, prices = served_prices(server, data_dir, online=False, served=served)
    full = InTurn(request_body(prices.iloc[:len(prices) - back], symbol, described) for back in range(args.windows))
    window = described["window"]
    short = InTurn({**body, **{field: body[field][-window:] for field in ("prices", *BAR_FIELDS) if field in body}}
                   for body in full)
    payloads = {FULL: full, SHORT: short, BY_NAME: {"stock": symbol}}
    archive = startup_archive(server.model_store)
    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as work, ExitStack() as servers:
        work_dir = Path(work)
        (work_dir / "store").mkdir()
        store = BenchStore.written(work_dir / "store", archive, {symbol: prices, **local_bars(
            Downloader(data_dir, online=False), {stock: found["training_data"]["start"] for stock, found in
                                                 served["stocks"].items() if stock != symbol})})
        (work_dir / "model_store").mkdir()
        shutil.copyfile(archive, work_dir / "model_store" / archive.name)
        with served_from(store.folder):  # the private TorchServe's workers read the bench store
            by_name_server = servers.enter_context(private_server(work_dir / "model_store", work_dir / "ts"))
        bare = servers.enter_context(peer_server(BARE_PEER, archive, store.folder))
        same = servers.enter_context(peer_server(HANDLER_PEER, archive))
        targets = {TORCHSERVE: Target.torchserve(server), BARE: Target(bare.url, None, bare.pid),
                   HANDLER: Target(same.url, None, same.pid)}
        by_name = {TORCHSERVE: Target.torchserve(by_name_server), BARE: targets[BARE]}
        print(f"warming up, then {args.runs} x {args.seconds} s per cell with {client}, {len(CELLS)} cells in turn")
        for target in targets.values():
            measure(target, 32, 3, use_wrk, full)
        measure(by_name[TORCHSERVE], 32, 8, use_wrk, payloads[BY_NAME])  # started just now: its JVM's JIT too
        logs_before, ts_seconds = log_bytes(server), 0.0
        runs: dict[tuple[str, Cell], list] = {}
        for number in range(args.runs):
            for cell in CELLS:
                for name in cell.servers:
                    target = (by_name if cell.request == BY_NAME else targets)[name]
                    found = measure(target, cell.connections, args.seconds, use_wrk, payloads[cell.request])
                    runs.setdefault((name, cell), []).append(found)
                    ts_seconds += args.seconds if target == targets[TORCHSERVE] else 0
                    print(f"  run {number + 1}: {name}, {cell.connections} connections, {cell.request} rows: "
                          f"{found.rps:,.0f} req/s p50 {found.p50:.2f} p99 {found.p99:.2f} ms errors {found.errors} "
                          f"other {found.other_cpu:.0f} %")
        log_rate = (log_bytes(server) - logs_before) / 2**20 / (ts_seconds / 60)
        refreshed = refresh_under_load(by_name[TORCHSERVE].url, by_name[TORCHSERVE].key, store, payloads[BY_NAME])
        print(f"  refresh: {refreshed.line()}")
    compared = Compared({key: Level(key[1].connections, found) for key, found in runs.items()},
                        floors(archive, list(full)), symbol, len(full[0]["prices"]), window, len(full), refreshed)
    section = report(compared, served_config(server), machine(), log_rate, args.seconds, client)
    replace_section(args.output, "bench", section)
    return section


if __name__ == "__main__":
    main()
