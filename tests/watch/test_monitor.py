"""The track record, the monitor's drift decision and outputs, the alert rules, and the replay.

The served forecast recomputed from the archive equals TorchServe's answer; a series whose volatility
doubles is flagged; the replay of a short span retrains on (forced) drift, leaves the repo's model store
and server folder alone, and its first model's figures equal the walk-forward backtest's on its span.
"""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from stockcast.data.download import Downloader
from stockcast.data.prices import read_price_csv
from stockcast.eval.evaluation import evaluate
from stockcast.release import history
from stockcast.release.policy import Policy
from stockcast.runtime.bundle import Bundle, BundleMeta
from stockcast.serving.archive import ServedSet, archive
from stockcast.serving.sessions import session_closes
from stockcast.watch.drift import DriftRules
from stockcast.watch.monitor import assess
from stockcast.watch.portfolio_risk import RiskStatus
from stockcast.watch.publish import EXPERIMENT, JOB, exposition, push
from stockcast.watch.replay import replay
from stockcast.watch.track_record import Origin, TrackRecord
from tests.conftest import PROMETHEUS, ROOT, compose_config, compose_train
from tests.serving import predict, running_server

RULES = ROOT / "monitoring" / "prometheus"
LENIENT = Policy(min_skill=-1.0, min_coverage=0.0, max_coverage=1.0, min_skill_crps=-1.0)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


def test_recomputed_forecast_equals_what_torchserve_answered(trained_run, tmp_path, shared_data):
    run_dir = tmp_path / "serve"
    run_dir.mkdir()
    history.remember(run_dir, "1", dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    closes = read_price_csv(shared_data / "VALE3.SA.csv")["Close"]
    with running_server(trained_run[0], tmp_path) as server:
        with TrackRecord(run_dir, server.model_store, Downloader(shared_data)) as track:
            origins = track.origins("VALE3.SA")
        assert origins[0].date == pd.Timestamp("2025-06-02")  # the first session after the deploy
        for origin in (origins[0], origins[-1]):  # a scored one, and the newest (its closes still to come)
            window = closes.loc[:origin.date].iloc[-100:].tolist()
            answer = predict(server, {"stock": "VALE3", "prices": window})
            assert answer.status == 200, answer.body
            served = np.array(list(answer.json()["quantiles"].values())).T  # [H, Q]
            assert _relative(origin.quantiles, served) < 1e-6
    assert origins[0].scores is not None and origins[-1].scores is None


def _synthetic(path: Path, calm_until: str, end: str) -> pd.DataFrame:
    """NYSE sessions whose daily log returns are +-1 % (random signs) until `calm_until`, +-2 % after: the EWMA
    volatility is exactly 1 % in the calm part and doubles."""
    days = session_closes("XNYS", 2019).index.union(session_closes("XNYS", 2021).index)
    days = days[(days >= "2018-01-02") & (days <= end)]
    signs = np.random.default_rng(0).choice([-1.0, 1.0], len(days))
    returns = signs * np.where(days > pd.Timestamp(calm_until), 0.02, 0.01)
    close = 50 * np.exp(np.cumsum(returns))
    frame = pd.DataFrame({name: close for name in ("Open", "High", "Low", "Close", "Adj Close")} | {"Volume": 1e3},
                         index=pd.DatetimeIndex(days, name="Date"))
    Downloader(path).store("SYNTH", frame, dt.date(2018, 1, 1), days[-1].date())
    return frame


@pytest.mark.slow
def test_drift_when_the_volatility_doubles(tmp_path):
    from stockcast.pipeline import run

    frame = _synthetic(tmp_path / "data", "2020-06-30", "2020-12-31")
    result = run(compose_train(tmp_path, "stock=SYNTH", "start=2018-01-01", "end=2020-03-31", "trainer.max_epochs=1"))
    archive(result.tracking_uri, "stockcast", tmp_path / "model_store", run_ids=[result.run_id], version=1)
    (tmp_path / "serve").mkdir()
    history.remember(tmp_path / "serve", "1", dt.datetime(2020, 3, 31, 23, tzinfo=dt.UTC))
    downloader = Downloader(tmp_path / "data")
    with TrackRecord(tmp_path / "serve", tmp_path / "model_store", downloader) as track:
        downloader.store("SYNTH", frame.loc[:"2020-06-30"], dt.date(2018, 1, 1), dt.date(2020, 6, 30))
        calm = assess(track, "SYNTH", DriftRules(), Policy())
        downloader.store("SYNTH", frame, dt.date(2018, 1, 1), dt.date(2020, 12, 31))
        wild = assess(track, "SYNTH", DriftRules(), Policy())
    assert track.vol_range("SYNTH", track.origins("SYNTH")[0].bundle) == pytest.approx((1.0, 1.0), rel=0.02)
    assert calm.vol_ratio == pytest.approx(1.0, rel=0.02) and "input" not in {d.reason for d in calm.drifts}
    assert wild.vol_ratio == pytest.approx(2.0, rel=0.02)
    [drift] = [d for d in wild.drifts if d.reason == "input"]
    assert "2.00 x the training median" in drift.message
    assert wild.scored > calm.scored > 20  # the track record went on from where it was


class _Track:
    """A track record of given scores: what `assess` reads."""

    def __init__(self, scores: list[dict[str, float]], vol_ratio: float = 1.0) -> None:
        meta = BundleMeta.from_dict({"symbol": "X", "model_version": "1", "window": 20, "horizon": 10,
                                     "features": ["Close"]})
        bundle = Bundle("X-v1", None, meta)
        days = pd.bdate_range("2025-01-01", periods=len(scores) + 10)
        self._origins = [Origin("X", bundle, day, row, np.zeros((10, 19)), vol_ratio, score, day)
                         for row, (day, score) in enumerate(zip(days, scores, strict=False))]
        self._origins.append(Origin("X", bundle, days[-1], len(days), np.zeros((10, 19)), vol_ratio))

    def origins(self, symbol: str) -> list[Origin]:
        return self._origins

    def vol_range(self, symbol: str, bundle: Bundle) -> tuple[float, float]:
        return 0.5, 3.0


def _scores(hit: float, crps: float, count: int = 25) -> list[dict[str, float]]:
    return [{"crps": crps, "naive_crps": 1.0, "ewma_crps": 1.0, "range_ewma_crps": 1.0, "har_crps": 1.0, "ape": 2.0,
             "naive_ape": 2.0, "hit_80": hit, "hit_90": hit} for _ in range(count)]


@pytest.mark.parametrize(("scores", "vol_ratio", "reasons"), [
    (_scores(0.8, 0.95), 1.0, set()),
    (_scores(0.5, 0.95), 1.0, {"coverage"}),  # too narrow
    (_scores(0.95, 0.95), 1.0, {"coverage"}),  # too wide
    (_scores(0.8, 1.05), 1.0, {"skill"}),  # skill_crps -0.05 < the gate's -0.02
    (_scores(0.8, 1.0), 0.3, {"input"}),  # below 0.5 / 1.5
    (_scores(0.8, 1.0), 5.0, {"input"}),  # above 3.0 x 1.5
    (_scores(0.1, 2.0, count=19), 1.0, set()),  # a new version is not judged before 20 scored forecasts
])
def test_drift_rules(scores, vol_ratio, reasons):
    status = assess(_Track(scores, vol_ratio), "X", DriftRules(), Policy())
    assert {drift.reason for drift in status.drifts} == reasons
    assert status.scored == len(scores)


def test_pushgateway_gets_the_metrics_the_alert_rules_read():
    bodies = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802 (the http.server API)
            bodies.append((self.path, self.rfile.read(int(self.headers["Content-Length"])).decode()))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    statuses = [assess(_Track(_scores(0.5, 1.05)), "X", DriftRules(), Policy())]
    risks = [RiskStatus("pair", 300, 6, 0.04, "yellow", pd.Timestamp("2025-01-02"), 1234.5, False)]
    with http.server.HTTPServer(("127.0.0.1", 0), Gateway) as gateway:
        thread = threading.Thread(target=gateway.handle_request)
        thread.start()
        push(f"http://127.0.0.1:{gateway.server_port}", statuses, 20, risks)
        thread.join(10)
    [(path, body)] = bodies
    assert path == f"/metrics/job/{JOB}" and body == exposition(statuses, 20, risks)
    assert 'stockcast_portfolio_zone{portfolio="pair",zone="yellow"} 1\n' in body
    assert 'stockcast_coverage_80{ticker="X",model_version="1",window="20"} 0.5\n' in body
    assert 'stockcast_drift{ticker="X",reason="coverage"} 1\n' in body
    assert 'stockcast_drift{ticker="X",reason="input"} 0\n' in body
    rules = yaml.safe_load((RULES / "drift_rules.yml").read_text())["groups"][0]["rules"]
    for rule in rules:
        for name in {word for word in rule["expr"].replace("(", " ").replace(")", " ").replace("{", " ").split()
                     if word.startswith("stockcast_")}:
            assert f"\n{name}{{" in f"\n{body}", f"{rule['alert']} reads {name}, which the monitor does not push"


def test_alert_rules_hold_the_default_thresholds_and_pass_promtool():
    rules, drift = (RULES / "drift_rules.yml").read_text(), DriftRules()
    for threshold in (f"< {drift.min_coverage}", f"> {drift.max_coverage}", f"< {Policy().min_skill_crps}",
                      f"{drift.vol_factor} * stockcast_input_vol_bound", f'window="{drift.window}"'):
        assert threshold in rules
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(PROMETHEUS)
    for command in (["check", "rules", "drift_rules.yml"], ["test", "rules", "drift_rules_test.yml"]):
        checked = subprocess.run([promtool, *command], cwd=RULES, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_replay_retrains_on_drift_and_its_first_model_scores_as_the_backtest(tmp_path, shared_data):
    untouched = {folder: sorted(p.name for p in (ROOT / folder).glob("*")) for folder in ("model_store", "serve")}
    forced = DriftRules(window=10, min_coverage=0.99)  # every model drifts once 10 forecasts are scored
    outcome = replay(["VALE3"], lambda stock: compose_train(tmp_path, f"stock={stock}", "trainer.max_epochs=1"),
                     dt.date(2025, 7, 1), dt.date(2025, 10, 15), True, forced, LENIENT, tmp_path / "replay")
    assert untouched == {folder: sorted(p.name for p in (ROOT / folder).glob("*")) for folder in untouched}
    retrained = [event for event in outcome.events if event.what == "retrained"]
    assert retrained and retrained[0].detail.startswith("drift: coverage")
    versions = [version for version, _ in history.defaults(tmp_path / "replay" / "serve")]
    assert versions[:2] == [1, 2] and (tmp_path / "replay" / "model_store" / "lstm-v2.mar").exists()
    assert outcome.statuses[0].model_version != "1"
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id],
                              f"tags.track = '{outcome.track}'")
    assert {run.data.tags["model_version"] for run in runs} >= {"1", "2"}

    _, first, last = outcome.first_model["VALE3.SA"]
    monitored = outcome.history["VALE3.SA"]
    monitored = monitored[monitored["model_version"] == "1"].iloc[-1]
    served = ServedSet.read(tmp_path / "replay" / "model_store" / "lstm-v1.mar").bundle_of("VALE3.SA")
    cfg = compose_config("evaluate", tmp_path, f"run_id={served.run_id}",
                         f"backtest.start={first:%Y-%m-%d}", f"backtest.end={last:%Y-%m-%d}",
                         "~baselines.drift", "~baselines.moving_average", "~baselines.ets", "~baselines.garch")
    [backtest] = evaluate(cfg)
    lstm, ranges = backtest.summary.loc["lstm"], backtest.ranges
    expected = {"coverage_80_all": ranges.loc["lstm", "coverage_80"],
                "coverage_90_all": ranges.loc["lstm", "coverage_90"], "crps_all": ranges.loc["lstm", "crps"],
                "mape_all": lstm["mape"],
                # skills as the ratios they are (1 - skill): a skill near 0 has no relative precision
                "skill_crps_all": 1 - ranges.loc["lstm", "skill_crps"], "skill_mape_all": 1 - lstm["skill_mape"],
                "skill_crps_vs_ewma_all": ranges.loc["lstm", "crps"] / ranges.loc["ewma", "crps"]}
    for name, value in expected.items():
        got = 1 - monitored[name] if name.startswith("skill") else monitored[name]
        assert got == pytest.approx(value, rel=1e-6), name
