"""The arguments several admin commands share, declared once, and the `Policy` they make. Their defaults are
`Policy`'s and `DriftRules`', which import no torch, so `--help` stays fast."""

from __future__ import annotations

import argparse
from dataclasses import fields

from stockcast.release.policy import DEFAULT, Policy
from stockcast.watch.drift import DriftRules


def gate(parser: argparse.ArgumentParser) -> None:
    """The quality and range gates a newly trained model must pass to be deployed."""
    parser.add_argument("--min-skill", type=float, default=DEFAULT.min_skill,
                        help="quality gate: lowest skill_mape deployed (default %(default)s: at most 5 %% worse than "
                             "the naive forecast on the test period)")
    parser.add_argument("--min-coverage", type=float, default=DEFAULT.min_coverage,
                        help="range gate: lowest test 80 %% interval coverage deployed (default %(default)s)")
    parser.add_argument("--max-coverage", type=float, default=DEFAULT.max_coverage,
                        help="range gate: highest test 80 %% interval coverage deployed (default %(default)s)")
    parser.add_argument("--min-skill-crps", type=float, default=DEFAULT.min_skill_crps,
                        help="range gate: lowest skill_crps vs the naive-empirical ranges (default %(default)s)")


def wait(parser: argparse.ArgumentParser, other: str) -> None:
    """How long the command waits for the lock another command (`other`) holds."""
    parser.add_argument("--wait", type=float, default=DEFAULT.wait,
                        help=f"seconds to wait for another {other} to finish (default: refuse at once)")


def changes(parser: argparse.ArgumentParser) -> None:
    """What every command that changes the served set takes: the versions kept registered, the lock wait."""
    parser.add_argument("--keep", type=int, default=DEFAULT.keep,
                        help="earlier versions kept registered for an instant rollback (default %(default)s)")
    wait(parser, "admin command")


def drift(parser: argparse.ArgumentParser) -> None:
    """The monitor's window and whether it retrains, for the monitor and its replay."""
    parser.add_argument("--window", type=int, default=DriftRules().window,
                        help="scored forecasts the coverage and skill drift rules look at (default %(default)s)")
    parser.add_argument("--retrain", action="store_true", help="retrain (gated) exactly the drifted tickers")


def overrides(parser: argparse.ArgumentParser) -> None:
    """The command takes Hydra overrides of configs/train.yaml: `stockcast.admin.main` puts the arguments
    left over into `args.overrides`, and refuses them for every other command."""
    parser.set_defaults(overrides=[])


def policy(args: argparse.Namespace) -> Policy:
    """The policy of the command's arguments; the defaults where the command takes none of them."""
    return Policy(**{field.name: getattr(args, field.name) for field in fields(Policy) if hasattr(args, field.name)})
