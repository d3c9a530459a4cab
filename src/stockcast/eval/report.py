"""Gather the newest evaluation of each ticker from MLflow into one comparison table."""

from __future__ import annotations

import tempfile
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Run

from stockcast import plots
from stockcast.config import load_config
from stockcast.errors import StockcastError
from stockcast.eval.evaluation import CRPS_BY_ORIGIN
from stockcast.eval.per_ticker import COVERAGE_BAND, PER_TICKER, PER_TICKER_VAL, SELF, best_baseline
from stockcast.eval.scoring import MODEL, RANGE_REFERENCE
from stockcast.metrics import pooled_test
from stockcast.runtime.metric_keys import HAR, PANEL_HAR, PEERS, RANGE_EWMA, model_key, skill_key
from stockcast.universe import FOLDS, SAMPLED, SELECTION, SHARED

SECTION = "results"  # the section of docs/results.md `make report` rewrites (stockcast.markdown)
UNIVERSE = "universe"  # the MLflow experiment of `make universe`, and its section of docs/results.md
UNIVERSE_FIGURE = "universe_skill.png"  # universe_figure's file: on each fold's run, beside docs/results.md


def comparison_table(client: MlflowClient, experiment_name: str) -> pd.DataFrame:
    """One row per ticker, test period and kind of model (its newest evaluation): LSTM vs naive and
    the best other baseline; its ranges' CRPS skill vs naive-empirical beside EWMA's, coverage, width."""
    nan = float("nan")
    runs = _finished_runs(client, experiment_name, "run evaluate.py first")
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
        best = min(baselines, key=baselines.__getitem__) if baselines else "-"
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
            **{f"{peer.label} skill_crps": metrics.get(skill_key(peer), nan) for peer in (*PEERS, PANEL_HAR)},
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


def _finished_runs(client: MlflowClient, experiment_name: str, remedy: str) -> list:
    """The experiment's FINISHED runs, newest first; a missing experiment is an error saying `remedy`."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise StockcastError(f"no experiment {experiment_name!r} in {client.tracking_uri}: {remedy}")
    return client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"])


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


def universe_section(client: MlflowClient, experiment_name: str = UNIVERSE) -> str:
    """The global net's folds (`make universe`) as markdown: per fold and group of tickers (seen, unseen) the mean
    skills over tickers and the net's standing against the best baseline; the six shared tickers' ticker-years;
    the per-ticker default on its sample beside the global net; what each fold's training cost."""
    runs, folds = _fold_runs(client, experiment_name)
    groups, shared, costs = [], [], []
    for fold, run in folds.items():
        metrics = run.data.metrics
        table = _artifact_csv(client, run.info.run_id, PER_TICKER)
        for group in ("seen", "unseen"):
            if f"{group}_skill_crps" not in metrics:
                continue
            groups.append({"fold": fold, "tickers": group, "count": int((table.seen == (group == "seen")).sum()),
                           **{label: 100 * metrics[f"{group}_{key}"] for label, key in SKILL_LABELS.items()},
                           "best baseline": best_baseline(metrics, group),
                           "gain vs best (points)": metrics[f"{group}_gain_vs_best"],
                           "tickers beating it": metrics[f"{group}_share_beating_best"],
                           "coverage 80 in 0.75..0.85": metrics[f"{group}_share_calibrated"],
                           "pooled p (Driscoll-Kraay)": metrics[f"{group}_pooled_pvalue"]})
        for row in table[table.ticker.isin(SHARED)].itertuples():
            better = max(row.range_ewma_skill_crps, row.har_skill_crps)
            shared.append({"ticker": row.ticker, "fold": fold, "global net": 100 * row.skill_crps,
                           "range EWMA": 100 * row.range_ewma_skill_crps, "HAR": 100 * row.har_skill_crps,
                           "gain vs the better (points)": 100 * (row.skill_crps - better),
                           "coverage 80": row.test_coverage_80})
        costs.append({"fold": fold, "tickers": len(table), "training windows": int(metrics.get("train_windows", 0)),
                      "steps": int(metrics.get("fit_steps", 0)), "fit minutes": metrics.get("fit_seconds", 0) / 60,
                      "windows / s": metrics.get("fit_windows_per_second", float("nan")),
                      "run minutes": metrics.get("run_seconds", float("nan")) / 60,
                      "peak RSS GB": metrics.get("peak_rss_gb", float("nan")), "run": run.info.run_id[:8]})
    shared_table = pd.DataFrame(shared)
    text = ["Mean CRPS skills (%, vs naive-empirical, each ticker over its own test origins) over the tickers of "
            "each fold's test year, by whether the net trained on them; the best baseline is the one of range EWMA, "
            "HAR and panel HAR with the highest mean; the pooled test is the net's CRPS against it, per origin, "
            "Driscoll-Kraay errors with lag 9 (two-sided).", "", pd.DataFrame(groups).to_markdown(
                index=False, floatfmt=".3g")]
    if len(shared_table):
        text += ["", f"The six shared tickers' ticker-years (mean gain vs the better of range EWMA and HAR: "
                 f"{shared_table['gain vs the better (points)'].mean():+.2f} points):", "",
                 shared_table.to_markdown(index=False, floatfmt=".3g")]
    sample = _per_ticker_sample(runs, folds.get(SAMPLED), client)
    if sample is not None:
        better = (sample["global net"] > sample["per-ticker default"]).mean()
        text += ["", f"The per-ticker default on its {len(sample)}-ticker sample of {SAMPLED} (same origins): the "
                 f"global net is better on {better:.0%} of them (mean skill {sample['global net'].mean():.3g} % "
                 f"against {sample['per-ticker default'].mean():.3g} %).", "",
                 sample.to_markdown(index=False, floatfmt=".3g")]
    text += ["", "What it cost (2-core CPU unless the run says otherwise):", "",
             pd.DataFrame(costs).to_markdown(index=False, floatfmt=".3g")]
    ablation = ablation_table(client, runs)
    if ablation is not None:
        text += ["", "The ablation, on the validation years only (2022: the selection fold universe2023; 2023: "
                 "universe2024's), the newest finished run of each start: mean CRPS skill (%) over seen and unseen "
                 "tickers, the share of tickers whose 80 % range held 75..85 % of the time, and the fit's minutes. "
                 "`net` is the net alone, `+ combination` the served w x net + (1 - w) x its start, w chosen on the "
                 "run's own validation year; panel HAR is the baseline (its level from each ticker's whole "
                 "training history).", "", ablation.to_markdown(index=False, floatfmt=".3g")]
    return "\n".join(text)


ABLATION_FOLDS = {**{fold: "2022" for fold in SELECTION}, SAMPLED: "2023"}  # each fold's validation year


def ablation_table(client: MlflowClient, runs: list[Run]) -> pd.DataFrame | None:
    """Per start (`model/net/start`), stage (the net alone, + combination) and validation year: seen and unseen mean
    skill, calibrated share, combination weight and fit minutes, from each fold's newest run's per_ticker_val.csv.
    None when no fold run logged one."""
    rows = []
    for fold, year in ABLATION_FOLDS.items():
        newest: dict[str, Run] = {}
        for run in runs:
            start = run.data.params.get("model/net/start", "ewma")
            if run.info.run_name == fold and start not in newest:
                newest[start] = run
        for start, run in sorted(newest.items()):
            if PER_TICKER_VAL not in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}:
                continue
            table = _artifact_csv(client, run.info.run_id, PER_TICKER_VAL)
            metrics = run.data.metrics
            for stage, column in ((f"{start} start: net", f"{SELF}_skill_crps"), ("+ combination", "skill_crps")):
                row: dict[str, Any] = {"configuration": stage, "validation year": year}
                for group, part in (("seen", table[table.seen]), ("unseen", table[~table.seen])):
                    row[f"{group} skill"] = 100 * part[column].mean()
                    row[f"{group} panel HAR"] = 100 * part["panel_har_skill_crps"].mean()
                calibrated = table["val_coverage_80"].between(*COVERAGE_BAND).mean()
                row |= {"calibrated (coverage of combination)": calibrated if stage == "+ combination" else None,
                        "w": metrics.get("combination_weight", float("nan")) if stage == "+ combination" else None,
                        "kept start": bool(metrics.get("kept_start", 0)),
                        "fit minutes": metrics.get("fit_seconds", float("nan")) / 60, "run": run.info.run_id[:8]}
                rows.append(row)
    return pd.DataFrame(rows) if rows else None


def _fold_runs(client: MlflowClient, experiment_name: str) -> tuple[list, dict]:
    """The experiment's finished runs, and the newest of each fold."""
    runs = _finished_runs(client, experiment_name, "run make universe first")
    found = {fold: next((run for run in runs if run.info.run_name == fold), None) for fold in FOLDS}
    folds = {fold: run for fold, run in found.items() if run is not None}
    if not folds:
        raise StockcastError(f"no finished fold run ({', '.join(FOLDS)}) in experiment {experiment_name!r}")
    return runs, folds


def universe_figure(client: MlflowClient, experiment_name: str = UNIVERSE) -> Figure:
    """The newest fold runs' per-ticker skills against their group's best baseline, and coverage by ticker."""
    tables = {}
    for fold, run in _fold_runs(client, experiment_name)[1].items():
        table = _artifact_csv(client, run.info.run_id, PER_TICKER)
        best = {seen: best_baseline(run.data.metrics, group) for seen, group in ((True, "seen"), (False, "unseen"))
                if f"{group}_best_baseline" in run.data.metrics}
        tables[fold] = table.assign(best=[getattr(row, f"{best[row.seen]}_skill_crps") if row.seen in best
                                          else np.nan for row in table.itertuples()])
    return plots.universe_figure(tables)


SKILL_LABELS = {"global net": skill_key(), **{peer.label: skill_key(peer) for peer in (RANGE_EWMA, HAR, PANEL_HAR)},
                "coverage 80": model_key("coverage_80")}


def _per_ticker_sample(runs: list, fold_run, client: MlflowClient) -> pd.DataFrame | None:
    """The newest per-ticker run of each sampled ticker, beside the global net's skill on that ticker."""
    if fold_run is None:
        return None
    table = _artifact_csv(client, fold_run.info.run_id, PER_TICKER).set_index("ticker")
    rows = []
    for ticker in load_config("train", [f"experiment={SAMPLED}"]).per_ticker_sample:
        own = next((run for run in runs if run.info.run_name == ticker), None)
        if own is not None and ticker in table.index:
            rows.append({"ticker": ticker, "per-ticker default": 100 * own.data.metrics["skill_crps"],
                         "global net": 100 * table.loc[ticker, "skill_crps"],
                         "HAR": 100 * table.loc[ticker, "har_skill_crps"]})
    return pd.DataFrame(rows) if rows else None


def _artifact_csv(client: MlflowClient, run_id: str, name: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        return pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=folder,
                                                               tracking_uri=client.tracking_uri))


RISK = "risk"  # the MLflow experiment of `make risk`, and its section of docs/results.md


def risk_section(client: MlflowClient, experiment_name: str = RISK) -> str:
    """The newest finished `make risk` run of each test year as markdown: what validation chose (once), then per
    year the goals met or missed, each method's summary over the portfolios, the pooled tests, and the served
    method by kind of portfolio."""
    newest: dict[str, Any] = {}
    for run in _finished_runs(client, experiment_name, "run make risk first"):
        newest.setdefault(run.info.run_name, run)
    runs = sorted(newest.values(), key=lambda run: run.data.params.get("test_start", ""))
    if not runs:
        raise StockcastError(f"no finished run in experiment {experiment_name!r}: run make risk first")
    params = runs[-1].data.params
    tails = _artifact_csv(client, runs[-1].info.run_id, "validation_tails.csv")
    chosen = {key: params.get(key) for key in tails.columns if key not in ("fz0", "exceptions_99", "exceptions_975")}
    parts = [f"Chosen on validation ({params.get('validation_start')}..{params.get('validation_end')}, "
             f"{params.get('validation_marginals')}'s marginals, {params.get('validation_scenarios')} scenarios a day; "
             f"the lowest mean FZ0 of the served 1-day 97.5 % VaR and ES): "
             + ", ".join(f"{key} {value}" for key, value in chosen.items()) + ".", "",
             tails.to_markdown(index=False, floatfmt=".4g")]
    for run in runs:
        parts += ["", *_risk_year(client, run)]
    return "\n".join(parts)


def _risk_year(client: MlflowClient, run: Any) -> list[str]:
    """One test year's tables (a `make risk` run's artifacts)."""
    params = run.data.params
    summary = _artifact_csv(client, run.info.run_id, "risk_summary.csv").set_index("Unnamed: 0")
    summary.index.name = "method"
    tests = _artifact_csv(client, run.info.run_id, "risk_tests.csv")
    goals = _artifact_csv(client, run.info.run_id, "risk_goals.csv")
    backtest = _artifact_csv(client, run.info.run_id, "risk_backtest.csv")
    kinds = backtest.assign(kind=backtest.portfolio.str.replace(r"_\d+$", "", regex=True))
    one_day = kinds[(kinds.horizon == 1) & (kinds.level == 0.99)]
    by_kind = one_day.pivot_table(index="kind", columns="method", values="exceptions", aggfunc="sum") / \
        one_day.pivot_table(index="kind", columns="method", values="days", aggfunc="sum") * 100
    return [
        f"### {params.get('test_start', '')[:4]}", "",
        f"`make risk` (MLflow run {run.info.run_id[:8]}, `{run.info.run_name}`): {params.get('portfolios')} "
        f"portfolios, test {params.get('test_start')}..{params.get('test_end')}, {params.get('marginals')}'s "
        f"marginals (run {params.get('marginals_run_id', '')[:8]}), {params.get('scenarios')} scenarios a day.", "",
        "The goals, served method:", "", goals.to_markdown(index=False), "",
        "Each method over the portfolios (shares of portfolios passing; exceptions_99: the share of days beyond "
        "the 1-day 99 % VaR; fz0, energy, variogram, crps_value: means, lower is better):", "",
        summary.to_markdown(floatfmt=".3g"), "",
        "The served method against each peer, daily differences summed over portfolios (Driscoll-Kraay, lag 5; "
        "negative: served lower):", "", tests.to_markdown(index=False, floatfmt=".3g"), "",
        "Exceptions of the 1-day 99 % VaR by kind of portfolio (% of days; 1 % is right):", "",
        by_kind.to_markdown(floatfmt=".2f")]
