"""`make bench`'s second part (`python -m benchmarks.portfolio`): serving many tickers from one archive.

Archives the trained tickers of an MLflow store (default: every ticker with a finished run in the
project's store) twice, the first ticker alone and all of them, serves each from a private TorchServe
(free loopback ports) and measures in one run: single-ticker requests at 1 and 32 connections with 1
vs all tickers loaded, each worker's resident memory, portfolio requests (one instance per ticker)
beside the in-process floor of their forward passes, and the time to deploy one ticker's model while
all are served, with the failed requests during it. The deploy registers in a copy of the store. With
`--pooled-run`, a pooled model's portfolio too, with its bars and by name (`{"instances": [{"stock": t}, ...]}`,
answered from a price store of the tickers' real bars relabelled to the latest sessions, benchmarks/store.py),
each beside its in-process floor, and every file of that store refreshed while the portfolio is asked by name.
(The peers are measured in the first part, benchmarks/serving.py.)
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil

from benchmarks.cli import bench_main
from stockcast import ROOT
from stockcast.serving.client import with_bars

PRICES = [60.0 * (1 + 0.01 * ((day * 7919) % 11 - 5) / 5) for day in range(100)]  # 100 closes: the context
COMPACT = {"quantiles": [], "intervals": [80], "p_up": False}  # the median and one interval (docs/serving.md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracking-uri", help="MLflow store with the trained tickers (default: the project's)")
    parser.add_argument("--experiment", default="stockcast")
    parser.add_argument("--stock", default="all", help="tickers separated by commas, or all (default)")
    parser.add_argument("--pooled-run", help="a pooled model's run: its portfolio requests are measured too")
    parser.add_argument("--prices", type=Path, default=ROOT / "prices" / "sp100",
                        help="where the by-name price store's bars come from first (default: prices/sp100, where "
                             "`make sp100` extracts them; then the training's data/ and prices/)")
    bench_main(parser, run, seconds=10)


def run(args: argparse.Namespace) -> str:
    from benchmarks.inprocess import forward_ms, interleaved_ms, worker
    from benchmarks.load import Load, wrk_run
    from benchmarks.store import BenchStore, local_bars, refresh_under_load, served_from
    from stockcast.config import load_config
    from stockcast.data.download import Downloader
    from stockcast.markdown import replace_section
    from stockcast.release.policy import Policy
    from stockcast.release.retrain import deploy_runs
    from stockcast.serving.archive import archive
    from stockcast.serving.client_loop import ClientLoop
    from stockcast.serving.private_server import private_server
    from stockcast.symbols import normalize_symbol
    from stockcast.tracking import existing_store, find_run, trained_symbols

    config = load_config("train")
    uri = args.tracking_uri or config.logger.tracking_uri
    client = existing_store(uri)
    symbols = (trained_symbols(client, args.experiment) if args.stock == "all"
               else [normalize_symbol(stock) for stock in args.stock.split(",")])
    single = {"stock": symbols[0], **with_bars(PRICES)}
    portfolio = {"instances": [{"stock": symbol, **with_bars(PRICES)} for symbol in symbols]}
    figures: dict[str, object] = {"tickers": len(symbols), "first": symbols[0]}

    def interleaved(targets: dict[str, tuple[str, str | None]], payload: dict, connections: int,
                    payloads: dict[str, dict] | None = None) -> dict[str, Load]:
        """`args.runs` wrk runs per target (of `payload`, or its own in `payloads`), taken in turns, so a change in
        the machine's load meanwhile reaches every target alike; medians per target (the errors summed)."""
        runs: dict[str, list[Load]] = {name: [] for name in targets}
        for _ in range(args.runs):
            for name, (url, key) in targets.items():
                runs[name].append(wrk_run(url, key, connections, args.seconds, (payloads or {}).get(name, payload)))
        medians = ("rps", "p50", "p99")
        return {name: Load(*(statistics.median(getattr(run, field) for run in found) for field in medians),
                           sum(run.errors for run in found)) for name, found in runs.items()}

    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as work, ExitStack() as servers:
        work_dir = Path(work)
        store = _copied_store(uri, work_dir)
        started = time.monotonic()
        one = archive(store, args.experiment, work_dir / "one", symbols[:1])
        many = archive(store, args.experiment, work_dir / "many", symbols)
        figures["archive_seconds"] = time.monotonic() - started
        print(f"archived 1 and {len(symbols)} tickers in {figures['archive_seconds']:.0f} s")
        served = {name: servers.enter_context(private_server(archived.path.parent, work_dir / f"ts-{name}"))
                  for name, archived in (("one", one), ("many", many))}
        targets = {name: (f"{server.url('inference')}/predictions/lstm", server.key("inference"))
                   for name, server in served.items()}
        for url, key in targets.values():
            wrk_run(url, key, 32, 3, single)  # warm-up
        for connections in (1, 32):
            for name, found in interleaved(targets, single, connections).items():
                figures[f"{name}_{connections}"] = found
        for name, server in served.items():
            figures[f"{name}_rss"] = _worker_rss(server.pid())
        url, key = targets["many"]
        wrk_run(url, key, 2, 3, portfolio)
        figures["portfolio_1"] = interleaved({"many": targets["many"]}, portfolio, 1)["many"]
        figures["portfolio_2"] = interleaved({"many": targets["many"]}, portfolio, 2)["many"]
        policy = Policy(min_skill=-1.0, min_coverage=0.0, max_coverage=1.0, min_skill_crps=-1.0)
        run_id = find_run(existing_store(store), args.experiment, symbols[1]).info.run_id
        with ClientLoop(url, key, single, clients=4, pause=0.005) as loop:
            time.sleep(1)
            deployed = deploy_runs([run_id], store, served["many"], policy, say=lambda line: None)
            time.sleep(1)
        figures["deploy"] = (deployed.seconds, loop.requests, loop.errors)
        print(f"deployed {symbols[1]} as version {deployed.version} in {deployed.seconds:.1f} s, "
              f"{loop.errors} errors in {loop.requests} requests")
        with worker(many.path) as loaded:
            instances = loaded.instances(json.dumps(portfolio))
            figures["floor_ms"] = forward_ms(lambda: loaded.forward(instances), 30)
        if args.pooled_run:
            pooled = archive(store, args.experiment, work_dir / "pooled", run_ids=[args.pooled_run])
            pooled_portfolio = {"instances": [item for item in portfolio["instances"]
                                              if item["stock"] in pooled.served.members]}
            (work_dir / "store").mkdir()
            downloader = Downloader(config.paths.data_dir, extra_dirs=[str(args.prices)], online=False)
            prices = BenchStore.written(work_dir / "store", pooled.path, local_bars(
                downloader, {item["stock"]: None for item in pooled_portfolio["instances"]}))
            by_name = {"instances": [{"stock": symbol} for symbol in prices.bars]}
            with_risk = {**by_name, "risk": {"positions": [100.0] * len(by_name["instances"])}}
            compact = {**by_name, "answer": COMPACT}
            bodies = {"pooled": json.dumps(pooled_portfolio).encode(), "by_name": json.dumps(by_name).encode(),
                      "by_name_risk": json.dumps(with_risk).encode(), "by_name_compact": json.dumps(compact).encode()}
            with served_from(prices.folder):  # the server's workers and the in-process handler read this store
                with private_server(pooled.path.parent, work_dir / "ts-pooled") as server:
                    target = (f"{server.url('inference')}/predictions/lstm", server.key("inference"))
                    wrk_run(*target, 2, 3, pooled_portfolio)
                    wrk_run(*target, 2, 3, by_name)
                    wrk_run(*target, 2, 3, with_risk)
                    wrk_run(*target, 2, 3, compact)
                    loads = interleaved({"pooled": target, "by_name": target, "by_name_risk": target,
                                         "by_name_compact": target}, pooled_portfolio, 2,
                                        {"by_name": by_name, "by_name_risk": with_risk, "by_name_compact": compact})
                    for name, found in loads.items():
                        figures[f"{name}_2"] = found
                    figures["pooled_tickers"] = len(pooled_portfolio["instances"])
                    figures["by_name_tickers"] = len(by_name["instances"])
                    figures["refreshed"] = refresh_under_load(*target, prices, by_name)
                    print(f"refresh: {figures['refreshed'].line()}")
                with worker(pooled.path) as loaded:
                    parsed = {name: loaded.instances(body) for name, body in bodies.items()}
                    assert len(parsed["by_name"]) == figures["by_name_tickers"], "the store answered not every ticker"
                    [(status, answer)] = loaded.handle([bodies["by_name_risk"]])
                    assert status == 200 and b'"risk"' in answer, f"the risk was not answered: {answer[:300]!r}"
                    calls = {}
                    for name, body in bodies.items():
                        if name in ("pooled", "by_name"):  # the others' forward passes are by_name's
                            calls[name, "floor"] = functools.partial(loaded.forward, parsed[name])
                        calls[name, "handler"] = functools.partial(loaded.handle, [body])
                    found = interleaved_ms(calls, 100)
            for (name, part), ms in found.items():
                figures[f"{name}_{part}_ms"] = ms
    section = report(figures, args)
    replace_section(args.output, "portfolio", section)
    return section


def _copied_store(uri: str, folder: Path) -> str:
    """A copy of a sqlite store (the deploy registers model versions in it); another store is used as is."""
    if not uri.startswith("sqlite:///"):
        return uri
    copy = folder / "mlflow.db"
    shutil.copyfile(uri.removeprefix("sqlite:///"), copy)
    return f"sqlite:///{copy}"


def _worker_rss(frontend_pid: int | None) -> list[float]:
    """Resident memory (MiB) of each model worker of the server."""
    workers = [p for p in psutil.Process(frontend_pid).children(recursive=True)
               if "model_service_worker" in " ".join(p.cmdline())]
    return sorted(p.memory_info().rss / 2**20 for p in workers)


def report(figures: dict, args: argparse.Namespace) -> str:
    """The Markdown section for BENCHMARKS.md."""
    n, first = figures["tickers"], figures["first"]
    one_32, many_32, one_1, many_1 = figures["one_32"], figures["many_32"], figures["one_1"], figures["many_1"]
    p1, p2 = figures["portfolio_1"], figures["portfolio_2"]
    floor = 1e3 * n / figures["floor_ms"]  # windows/s of the in-process forward passes, one thread
    seconds, requests, errors = figures["deploy"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `make bench` (`python -m benchmarks.portfolio`): wrk, "
        f"{args.runs} runs of {args.seconds} s per row, medians (errors: total over the runs); the servers of a "
        f"comparison run at once and take their runs in turns; {n} tickers "
        f"({first} alone for the single-ticker rows), single requests of 100 closes naming {first}.", "",
        "| what | server | req/s | p50 ms | p99 ms | errors |", "|---|---|---:|---:|---:|---:|",
        f"| single ticker, 1 connection | TorchServe, 1 ticker loaded | {one_1.rps:,.0f} | {one_1.p50:.2f} | "
        f"{one_1.p99:.2f} | {one_1.errors} |",
        f"| single ticker, 1 connection | TorchServe, {n} tickers loaded | {many_1.rps:,.0f} | {many_1.p50:.2f} | "
        f"{many_1.p99:.2f} | {many_1.errors} |",
        f"| single ticker, 32 connections | TorchServe, 1 ticker loaded | {one_32.rps:,.0f} | {one_32.p50:.2f} | "
        f"{one_32.p99:.2f} | {one_32.errors} |",
        f"| single ticker, 32 connections | TorchServe, {n} tickers loaded | {many_32.rps:,.0f} | {many_32.p50:.2f} | "
        f"{many_32.p99:.2f} | {many_32.errors} |",
        f"| portfolio of {n}, 1 connection | TorchServe, {n} tickers | {p1.rps:,.1f} ({p1.rps * n:,.0f} windows/s) | "
        f"{p1.p50:.1f} | {p1.p99:.1f} | {p1.errors} |",
        f"| portfolio of {n}, 2 connections | TorchServe, {n} tickers | {p2.rps:,.1f} ({p2.rps * n:,.0f} windows/s) | "
        f"{p2.p50:.1f} | {p2.p99:.1f} | {p2.errors} |",
    ]
    if "pooled_2" in figures:
        for what, key in (("", "pooled"), (" by name", "by_name")):
            found, count = figures[f"{key}_2"], figures[f"{key}_tickers"]
            lines.append(f"| portfolio of {count}{what}, 2 connections | TorchServe, one pooled model | "
                         f"{found.rps:,.1f} ({found.rps * count:,.0f} windows/s) | {found.p50:.1f} | {found.p99:.1f} | "
                         f"{found.errors} |")
        for what, key in (("with `risk`", "by_name_risk"), ("compact answer", "by_name_compact")):
            found = figures[f"{key}_2"]
            lines.append(f"| portfolio of {figures['by_name_tickers']} by name, {what}, 2 connections | TorchServe, "
                         f"one pooled model | {found.rps:,.1f} | {found.p50:.1f} | {found.p99:.1f} | {found.errors} |")
    lines += [
        "", "Ratios (the goals in brackets):", "",
        f"- {n} vs 1 ticker loaded, single-ticker req/s at 32 connections: {many_32.rps / one_32.rps:.2f} "
        "[within 10 %: 0.90 or more]",
        f"- portfolio windows/s vs the in-process floor ({figures['floor_ms']:.1f} ms for the {n} forward passes "
        f"of one request, {floor:,.0f} windows/s on one thread): {p1.rps * n / floor:.0%} at 1 connection, "
        f"{p2.rps * n / floor:.0%} at 2 (two workers) [at 2: at least 80 %]",
    ]
    if "pooled_floor_ms" in figures:
        pooled_floor, by_name_floor = figures["pooled_floor_ms"], figures["by_name_floor_ms"]
        refreshed = figures["refreshed"]
        lines += [f"- the pooled model's floor: {pooled_floor:.1f} ms for {figures['pooled_tickers']} windows in "
                  f"one forward pass; its p50 at 2 connections is {figures['pooled_2'].p50 / pooled_floor:.1f}x "
                  f"that [at most 2.5x]; the handler's whole request in process (the body read, checked, "
                  f"forecast, answered, written) {figures['pooled_handler_ms']:.1f} ms",
                  f"- the same portfolio by name ({figures['by_name_tickers']} instances `{{\"stock\": t}}`, the bars "
                  f"from a price store of the tickers' real bars relabelled to the latest sessions): its floor (the "
                  f"forward pass of its parsed instances) {by_name_floor:.1f} ms; its p50 at 2 connections is "
                  f"{figures['by_name_2'].p50 / by_name_floor:.1f}x that [at most 2.5x]; the handler's whole request "
                  f"in process (the store's bars read and checked included) {figures['by_name_handler_ms']:.1f} ms",
                  f"- the same portfolio by name asking for its `risk` (100 shares each; the default levels 0.99, "
                  f"0.975 and horizons 1, 10; a year of each ticker's bars read, 5,000 scenarios): p50 at 2 "
                  f"connections {figures['by_name_risk_2'].p50:.1f} ms against {figures['by_name_2'].p50:.1f} ms "
                  f"without, {figures['by_name_risk_2'].p50 / figures['by_name_2'].p50:.2f}x [at most 2x]; "
                  f"{figures['by_name_risk_2'].errors} errors; in process {figures['by_name_risk_handler_ms']:.1f} "
                  f"against {figures['by_name_handler_ms']:.1f} ms",
                  f"- the same portfolio by name with a compact answer (`\"answer\": {json.dumps(COMPACT)}`: the "
                  f"median and the 80 % interval): p50 at 2 connections {figures['by_name_compact_2'].p50:.1f} ms, "
                  f"{figures['by_name_compact_2'].p50 / by_name_floor:.1f}x its floor [at most 2.5x]; in process "
                  f"{figures['by_name_compact_handler_ms']:.1f} ms against {figures['by_name_handler_ms']:.1f} ms "
                  "for the full answer",
                  f"- the handler's whole request by name against the same portfolio with its bars, in process: "
                  f"{figures['by_name_handler_ms']:.1f} against {figures['pooled_handler_ms']:.1f} ms, "
                  f"{figures['by_name_handler_ms'] / figures['pooled_handler_ms']:.2f}x [at most 0.5x]",
                  f"- a refresh of every file of that store while 4 clients asked the portfolio by name: "
                  f"{refreshed.line()} [0 failed, the next answers read the new bar]"]
    rss_one, rss_many = figures["one_rss"], figures["many_rss"]
    lines += [
        f"- resident memory per worker: {', '.join(f'{r:.0f}' for r in rss_one)} MiB with 1 ticker, "
        f"{', '.join(f'{r:.0f}' for r in rss_many)} MiB with {n}",
        f"- deploying one ticker's model ({figures['first']}'s neighbour, `deploy_runs`, the admin `deploy` path) "
        f"while {n} are served: {seconds:.1f} s, {errors} failed of {requests} requests during it [0]",
        f"- archiving 1 and {n} tickers from MLflow: {figures['archive_seconds']:.0f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
