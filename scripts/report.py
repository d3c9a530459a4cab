"""Comparison table of the newest evaluation per ticker.

    python scripts/report.py [--doc docs/results.md] [hydra overrides, e.g. logger.tracking_uri=...]

With --doc, the table also replaces what stands between <!-- results:start --> and <!-- results:end -->
in that file (`make report` writes docs/results.md), and where `make universe` ran, the global net's tables
what stands between <!-- universe:start --> and <!-- universe:end --> (with their figure, written beside the
file as universe_skill.png), and where `make risk` ran, its tables
what stands between <!-- risk:start --> and <!-- risk:end -->; --section writes only the one named (`make report
ARGS="--section risk"` after `make risk`). --readme is the former name of --doc.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlflow import MlflowClient

from stockcast.cli import user_errors_exit
from stockcast.config import load_config
from stockcast.eval.report import (
    RISK,
    SECTION,
    UNIVERSE,
    UNIVERSE_FIGURE,
    comparison_table,
    pooled_tests,
    risk_section,
    universe_figure,
    universe_section,
)
from stockcast.markdown import replace_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doc", "--readme", dest="doc", type=Path, metavar="FILE",
                        help="also write the table into this file's results section (make report: docs/results.md)")
    parser.add_argument("--section", choices=[SECTION, UNIVERSE, RISK],
                        help="only this section (the others' experiments may be in another store)")
    parser.add_argument("overrides", nargs="*", help="overrides of configs/evaluate.yaml")
    args = parser.parse_args()
    cfg = load_config("evaluate", args.overrides)
    with user_errors_exit():
        client = MlflowClient(cfg.logger.tracking_uri)
        wanted = {args.section} if args.section else {SECTION, UNIVERSE, RISK}
        sections = {}
        # Each section from its own experiment: evaluations (make results), the global net (make universe) and
        # the portfolio risk (make risk); with none, the evaluations' error says what to run.
        if SECTION in wanted and (client.get_experiment_by_name(cfg.experiment_name) is not None or
                                  client.get_experiment_by_name(UNIVERSE) is None):
            sections[SECTION] = _evaluations(client, cfg.experiment_name)
        if UNIVERSE in wanted and client.get_experiment_by_name(UNIVERSE) is not None:
            sections[UNIVERSE] = universe_section(client)
            if args.doc:
                universe_figure(client).savefig(args.doc.parent / UNIVERSE_FIGURE, dpi=110)
                sections[UNIVERSE] += (f"\n\n![Per fold: each ticker's CRPS skill against its group's best baseline's, "
                                       f"seen and unseen; 80 % coverage by ticker]({UNIVERSE_FIGURE})")
        if RISK in wanted and (client.get_experiment_by_name(RISK) is not None or args.section == RISK):
            sections[RISK] = risk_section(client)
        for name, text in sections.items():
            print(text)
            if args.doc:
                replace_section(args.doc, name, text)
                print(f"updated the {name} section of {args.doc}")


def _evaluations(client: MlflowClient, experiment_name: str) -> str:
    """The newest evaluation per ticker, and the per-ticker LSTMs' pooled tests."""
    table = comparison_table(client, experiment_name)
    pooled = pooled_tests(client, table)
    markdown = table.drop(columns="evaluation run").to_markdown(index=False, floatfmt=".4g")
    if len(pooled):
        markdown += ("\n\nThe per-ticker LSTMs' CRPS against each baseline, pooled over the ticker-years above "
                     "(per-origin differences scaled by the naive-empirical CRPS, summed per date, "
                     "Driscoll-Kraay errors with lag 9):\n\n" + pooled.to_markdown(index=False, floatfmt=".4g"))
    return markdown


if __name__ == "__main__":
    main()
