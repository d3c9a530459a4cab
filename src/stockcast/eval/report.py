"""Gather the newest evaluation of each ticker from MLflow into one comparison table."""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient

from stockcast.errors import StockcastError

SECTION = "results"  # the section of docs/results.md `make report` rewrites (stockcast.markdown)


def comparison_table(client: MlflowClient, experiment_name: str) -> pd.DataFrame:
    """One row per ticker, test period and kind of model (its newest evaluation): LSTM vs naive and
    the best other baseline; its ranges' CRPS skill vs naive-empirical beside EWMA's, coverage, width."""
    nan = float("nan")
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise StockcastError(f"no experiment {experiment_name!r} in {client.tracking_uri}: run evaluate.py first")
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"])
    rows, seen = [], set()
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        key = (tags.get("symbol"), tags.get("test_period", ""), tags.get("model", ""))
        if key in seen or "lstm_mape" not in metrics:
            continue
        seen.add(key)
        steps = sorted(int(key.rsplit("_h", 1)[1]) for key in metrics if key.startswith("lstm_mape_h"))
        better = [s for s in steps if metrics[f"lstm_mape_h{s}"] < metrics[f"naive_mape_h{s}"]]
        methods = [key.removesuffix("_skill_mape") for key in metrics if key.endswith("_skill_mape")]
        baselines = {m: metrics[f"{m}_mape"] for m in methods if m not in ("lstm", "naive")}
        best = min(baselines, key=baselines.get) if baselines else "-"
        rows.append({
            "ticker": key[0],
            "test period": key[1],
            "LSTM": key[2],
            "LSTM MAPE %": metrics["lstm_mape"],
            "naive MAPE %": metrics["naive_mape"],
            "skill_mape": metrics["lstm_skill_mape"],
            "DM p (vs naive)": metrics.get("lstm_dm_pvalue", nan),
            "steps LSTM < naive": _ranges(better) or "none",
            "best baseline (MAPE %)": f"{best} ({baselines[best]:.3f})" if baselines else "-",
            "LSTM move spread %": metrics["lstm_move_spread"],
            "actual move spread %": metrics["actual_move_spread"],
            "skill_crps": metrics.get("lstm_skill_crps", nan),
            "EWMA skill_crps": metrics.get("ewma_skill_crps", nan),
            "coverage 80": metrics.get("lstm_coverage_80", nan),
            "coverage 90": metrics.get("lstm_coverage_90", nan),
            "width 80 %": metrics.get("lstm_width_80", nan),
            "DM p (CRPS vs naive-emp.)": metrics.get("lstm_dm_p_vs_naive_empirical", nan),
            "DM p (CRPS vs EWMA)": metrics.get("lstm_dm_p_vs_ewma", nan),
            "trained run": run.data.tags.get("evaluated_run_id", "")[:8],
        })
    if not rows:
        raise StockcastError(f"no finished evaluations in experiment {experiment_name!r}")
    return pd.DataFrame(rows).sort_values(["ticker", "test period", "LSTM"], ignore_index=True)


def _ranges(steps: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    parts, start = [], None
    for i, step in enumerate(steps):
        start = step if start is None else start
        if i + 1 == len(steps) or steps[i + 1] != step + 1:
            parts.append(f"{start}-{step}" if step != start else f"{step}")
            start = None
    return ", ".join(parts)
