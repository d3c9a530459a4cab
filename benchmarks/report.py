"""The Markdown results section `make bench` writes into BENCHMARKS.md."""

from __future__ import annotations

import time

from benchmarks.measure import Level


def report(levels: list[Level], floor: dict[int, float], config: dict[str, str], host: dict[str, str],
           log_mb_per_minute: float, seconds: int, client: str) -> str:
    """Medians per connection count, the in-process floor beside them, log volume, config and machine."""
    runs = len(levels[0].runs)
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `make bench`: {client}, {runs} runs of {seconds} s "
             "per connection count, medians (errors: total over the runs).", "",
             "| connections | req/s | p50 ms | p99 ms | errors | other load % | req/s per run |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for level in levels:
        per_run = ", ".join(f"{run.rps:,.0f}" for run in level.runs)
        lines.append(f"| {level.connections} | {level.median('rps'):,.0f} | {level.median('p50'):.2f} | "
                     f"{level.median('p99'):.2f} | {sum(run.errors for run in level.runs)} | "
                     f"{level.median('other_cpu'):.0f} | {per_run} |")
    single = next(level for level in levels if level.connections == 1)
    busiest = max(levels, key=lambda level: level.median("rps"))
    per_core = 1e3 * 32 / floor[32]
    lines += ["", "In-process floor (the archived module, `torch.set_num_threads(1)` as in a worker):", "",
              "| batch | forward ms | per request ms | server / floor |", "|---:|---:|---:|---|",
              f"| 1 | {floor[1]:.3f} | {floor[1]:.3f} | single-client p50 is {single.median('p50') / floor[1]:.1f}x "
              "the forward pass |",
              f"| 32 | {floor[32]:.3f} | {floor[32] / 32:.4f} | best throughput ({busiest.median('rps'):,.0f} req/s at "
              f"{busiest.connections} connections) is {100 * busiest.median('rps') / (2 * per_core):.0f} % of "
              f"2 cores x {per_core:,.0f} req/s |", "",
              f"Log volume under load: {log_mb_per_minute:.2f} MB per minute (all files in the server's logs/).", "",
              "Config: " + "; ".join(f"{key} {value}" for key, value in config.items()) + ".", "",
              "Machine: " + "; ".join(f"{key} {value}" for key, value in host.items()) + "."]
    return "\n".join(lines)
