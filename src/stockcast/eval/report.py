"""Gather the newest evaluation of each ticker from MLflow into one comparison table."""

from __future__ import annotations

import tempfile

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from stockcast.errors import StockcastError
from stockcast.eval.evaluation import CRPS_BY_ORIGIN
from stockcast.eval.scoring import MODEL, RANGE_REFERENCE
from stockcast.metrics import pooled_test

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
            "range EWMA skill_crps": metrics.get("range_ewma_skill_crps", nan),
            "HAR skill_crps": metrics.get("har_skill_crps", nan),
            "coverage 80": metrics.get("lstm_coverage_80", nan),
            "coverage 90": metrics.get("lstm_coverage_90", nan),
            "width 80 %": metrics.get("lstm_width_80", nan),
            "DM p (CRPS vs naive-emp.)": metrics.get("lstm_dm_p_vs_naive_empirical", nan),
            "DM p (CRPS vs EWMA)": metrics.get("lstm_dm_p_vs_ewma", nan),
            "trained run": run.data.tags.get("evaluated_run_id", "")[:8],
            "evaluation run": run.info.run_id,
        })
    if not rows:
        raise StockcastError(f"no finished evaluations in experiment {experiment_name!r}")
    return pd.DataFrame(rows).sort_values(["ticker", "test period", "LSTM"], ignore_index=True)


def pooled_tests(client: MlflowClient, table: pd.DataFrame, model: str = "per ticker",
                 horizon: int = 10) -> pd.DataFrame:
    """The LSTM's CRPS against each baseline pooled over the ticker-years of one kind of model: per origin, the
    difference scaled by the ticker-year's mean naive-empirical CRPS (so its mean is the skill gained), summed
    per date, tested with Driscoll-Kraay errors (lag horizon - 1); one row per baseline."""
    scaled: dict[str, list[pd.Series]] = {}
    gains: dict[str, list[float]] = {}
    for run_id in table.loc[table["LSTM"] == model, "evaluation run"]:
        if CRPS_BY_ORIGIN not in {artifact.path for artifact in client.list_artifacts(run_id)}:
            continue  # an evaluation logged before the per-origin scores were: evaluate it again to count it
        with tempfile.TemporaryDirectory() as folder:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=CRPS_BY_ORIGIN, dst_path=folder,
                                                       tracking_uri=client.tracking_uri)
            scores = pd.read_csv(path, index_col="origin", parse_dates=True)
        reference = scores[RANGE_REFERENCE].mean()
        for peer in (name for name in scores.columns if name not in (MODEL, RANGE_REFERENCE)):
            scaled.setdefault(peer, []).append((scores[MODEL] - scores[peer]) / reference)
            gains.setdefault(peer, []).append(float((scores[peer] - scores[MODEL]).mean() / reference))
    rows = []
    for peer, differences in scaled.items():
        test = pooled_test(differences, lag=horizon - 1)
        rows.append({"vs": peer, "ticker-years": len(differences), "mean skill gained": float(np.mean(gains[peer])),
                     "better in": sum(gain > 0 for gain in gains[peer]), "statistic": test.statistic,
                     "p": test.pvalue})
    return pd.DataFrame(rows)


def _ranges(steps: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    parts, start = [], None
    for i, step in enumerate(steps):
        start = step if start is None else start
        if i + 1 == len(steps) or steps[i + 1] != step + 1:
            parts.append(f"{start}-{step}" if step != start else f"{step}")
            start = None
    return ", ".join(parts)
