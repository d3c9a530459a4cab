"""What `make bench`'s two parts share on their command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from stockcast import ROOT
from stockcast.cli import user_errors_exit


def bench_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], str], seconds: int) -> None:
    """Adds --runs, --seconds (per run) and --output to `parser`, then prints the section `run(args)` wrote there."""
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=seconds)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    with user_errors_exit():
        section = run(args)
    print(f"\n{section}\n\nwritten to {args.output}")
