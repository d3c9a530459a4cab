"""scripts/admin.py's retrain, status, rollback and remove against a real TorchServe and a real MLflow store.

One server per module, serving the session's VALE3 run as version 1 (archived like `make archive`);
one real 1-epoch PETR4 retrain adds PETR4 under a client loop asking for VALE3. The other deployments
reuse that run (the pipeline is patched to return it): what they test is the switch, not the training.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from stockcast.errors import StockcastError
from stockcast.pipeline import RunResult
from stockcast.release import registry, remove, retrain, rollback, switching
from stockcast.release.lock import LOCK, exclusive
from stockcast.release.policy import Policy, gate
from stockcast.release.status import status
from stockcast.serving.client_loop import ClientLoop
from stockcast.serving.management import Management
from stockcast.serving.private_server import server_config
from stockcast.serving.server import Server
from stockcast.serving.versions import archive_version
from tests.conftest import ROOT, compose_train
from tests.serving import PRICES, client_loop, predict

PETR4 = ("stock=PETR4", "end=2025-11-07", "trainer.max_epochs=1")
LENIENT = Policy(min_skill=-1.0)  # a 1-epoch model need not pass the default gate: the gate has its own tests


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The module's data cache and MLflow store (the session's VALE3 store is never written to)."""
    return tmp_path_factory.mktemp("admin-store")


@dataclass(frozen=True)
class Swap:
    deployed: retrain.Deployed
    result: RunResult  # PETR4's
    loop: ClientLoop  # asking for VALE3 (the default ticker) throughout
    before: dict  # version 1's VALE3 answer to PRICES
    said: list[str]


@pytest.fixture(scope="module")
def swap(server, store) -> Swap:
    """The real PETR4 retrain, while clients keep asking for VALE3."""
    before = _answer(server)
    said: list[str] = []
    with pytest.MonkeyPatch.context() as env, client_loop(server) as loop:
        # MLflow exports the URI of the store it last used (here the session run's, archived): the retrain has its own
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        deployed = retrain.retrain([compose_train(store, *PETR4)], server, LENIENT, said.append)
        time.sleep(1)  # requests answered by the new default too
    [result] = deployed.results
    assert result.tracking_uri == f"sqlite:///{store}/mlruns/mlflow.db"
    return Swap(deployed, result, loop, before, said)


def _answer(server: Server, stock: str | None = None) -> dict:
    answer = predict(server, {"prices": PRICES, **({"stock": stock} if stock else {})})
    assert answer.status == 200, answer.body
    return answer.json()


def _same(answer: dict, expected: dict) -> bool:
    """The same archive's answer: equal labels, numbers equal to float32 precision (a request batched with
    the client loop's may round its last bits differently from one computed alone)."""
    def numbers(value) -> list[float]:
        if isinstance(value, dict):
            return [n for key in sorted(value) for n in numbers(value[key])]
        return [n for item in value for n in numbers(item)] if isinstance(value, list) else [value]
    labels = ("stock", "model_version", "window", "horizon")
    return ([answer[key] for key in labels] == [expected[key] for key in labels] and answer.keys() == expected.keys()
            and numbers({k: v for k, v in answer.items() if k not in labels})
            == pytest.approx(numbers({k: v for k, v in expected.items() if k not in labels}), rel=1e-5))


def _state(server: Server, tracking_uri: str) -> tuple:
    """Everything a failed command must leave as it was."""
    served = Management(server).served()
    client = MlflowClient(tracking_uri)
    return (served.default.version, sorted(v.version for v in served.versions),
            [(version.name, version.version) for version in registry.champions(client)],
            len(client.search_model_versions()), sorted(path.name for path in server.model_store.glob("*.mar")))


def test_retrain_adds_the_ticker_and_leaves_the_other_unchanged(server, swap):
    petr4, vale3 = _answer(server, "petr4"), _answer(server)
    assert (petr4["stock"], petr4["model_version"]) == ("PETR4.SA", "2")
    assert (vale3["stock"], vale3["model_version"]) == ("VALE3.SA", "1") and _same(vale3, swap.before)
    management = Management(server).served()
    assert management.default.version == "2" and sorted(v.version for v in management.versions) == ["1", "2"]
    store = server.model_store
    assert {path.name: archive_version(path) for path in store.glob("*.mar")} == {
        "lstm.mar": 2, "lstm-v1.mar": 1, "lstm-v2.mar": 2}  # lstm.mar: what a restart serves
    (passed,) = [line for line in swap.said if "quality gate passed" in line]
    assert "baselines' skill_crps: EWMA" in passed and "range EWMA" in passed and "HAR" in passed  # shown, not gated


def test_mlflow_has_the_new_version_as_the_tickers_champion(swap):
    result = swap.result
    client = MlflowClient(result.tracking_uri)
    champion = registry.champion(client, "PETR4.SA")
    assert (champion.name, str(champion.version), champion.run_id) == ("stockcast-PETR4.SA", "1", result.run_id)
    assert champion.tags == {"start": "2018-01-01", "end": "2025-11-07", "archive_version": "2"}
    assert client.get_run(result.run_id).data.tags["gate"] == "passed"


def test_no_request_failed_and_the_other_tickers_answers_never_changed(swap):
    loop = swap.loop
    print(f"zero-downtime deploy: {loop.requests} VALE3 requests, {loop.errors} errors, {len(loop.bodies)} distinct "
          f"answers, by model version {dict(loop.versions)}")
    assert loop.errors == 0, loop.statuses
    assert loop.requests >= 200 and set(loop.versions) == {"1"}
    assert all(_same(json.loads(body), swap.before) for body in loop.bodies)


def test_both_tickers_are_answered_concurrently_and_in_one_portfolio_request(server, swap):
    petr4 = _answer(server, "PETR4")
    with ClientLoop(f"{server.url('inference')}/predictions/lstm", server.key("inference"),
                    {"prices": PRICES, "stock": "PETR4"}, clients=2) as other, client_loop(server, 2) as loop:
        time.sleep(2)
    assert other.errors == loop.errors == 0 and set(other.versions) == {"2"} and set(loop.versions) == {"1"}
    assert all(_same(json.loads(body), petr4) for body in other.bodies)
    answer = predict(server, {"instances": [{"stock": "VALE3", "prices": PRICES}, {"stock": "PETR3", "prices": PRICES},
                                            {"stock": "PETR4", "prices": PRICES}, {"prices": PRICES[:3]}]})
    assert answer.status == 200, answer.body
    first, unknown, third, short = answer.json()["predictions"]
    assert _same(first, swap.before) and _same(third, petr4)
    assert unknown["code"] == 400 and "this model serves 2 ticker(s): PETR4.SA, VALE3.SA" in unknown["message"]
    assert short["code"] == 400 and "needs at least 20" in short["message"]


def test_summary_and_status_name_the_version_its_scores_and_run(server, swap):
    result = swap.result
    summary = retrain.summary(swap.deployed, server)
    assert "deployed version 2 (was 1)" in summary and "PETR4.SA: data 2018-01-01..2025-11-07" in summary
    assert f"vs naive {result.metrics['naive_mape']:.3f} %" in summary and result.run_id in summary
    text, healthy = status(server, result.tracking_uri)
    assert healthy and "default version 2, 2 registered" in text and "2 ticker(s) served" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and ".SA " in line}
    assert "v2" in rows["PETR4.SA"] and "stockcast-PETR4.SA v1 (serving)" in rows["PETR4.SA"]
    assert "v1" in rows["VALE3.SA"] and rows["VALE3.SA"].endswith("none")  # `make archive` registers nothing
    assert "2018-01-02..2025-11-07" in rows["PETR4.SA"]


def test_a_bad_ticker_changes_nothing(server, swap, store):
    before = _state(server, swap.result.tracking_uri)
    with pytest.raises(StockcastError, match="NOPE is not deployed: cannot get prices for NOPE"):
        retrain.retrain([compose_train(store, "stock=NOPE")], server, LENIENT, print)
    assert _state(server, swap.result.tracking_uri) == before


def test_a_model_below_the_gate_is_not_deployed(server, swap, store, tmp_path):
    before = _state(server, swap.result.tracking_uri)
    cfg = compose_train(store, *PETR4)
    cfg.paths.output_dir = str(tmp_path)  # its own checkpoints, the module's MLflow store
    with pytest.raises(StockcastError, match=r"is not deployed: skill_mape .* below the minimum \+1.0000"):
        retrain.retrain([cfg], server, Policy(min_skill=1.0), print)
    assert _state(server, swap.result.tracking_uri) == before
    client = MlflowClient(swap.result.tracking_uri)
    [rejected] = client.search_runs(client.get_experiment_by_name("stockcast").experiment_id,
                                    "tags.gate LIKE 'failed%'")
    assert "skill_mape" in rejected.data.tags["gate"]


def test_a_failure_after_the_switch_is_undone_without_a_failed_request(server, swap, store, monkeypatch):
    """The last step fails once the new version is the default: it goes back, no request sees it."""
    monkeypatch.setattr(retrain, "run", lambda cfg: swap.result)
    monkeypatch.setattr(switching, "crown", _fail)
    before = _state(server, swap.result.tracking_uri)
    with client_loop(server) as loop, pytest.raises(StockcastError, match="the registry is down"):
        retrain.retrain([compose_train(store, *PETR4)], server, LENIENT, print)
    assert _state(server, swap.result.tracking_uri) == before
    assert loop.errors == 0 and loop.requests > 0, loop.statuses


def _fail(*args, **kwargs):
    raise StockcastError("the registry is down")


def test_a_second_command_refuses_while_one_holds_the_lock(server, store):
    with exclusive(server.run_dir / LOCK, 0, "retrain PETR4"):
        started = time.monotonic()
        with pytest.raises(StockcastError, match=r"another admin command holds .* \(retrain PETR4, pid \d+"):
            retrain.retrain([compose_train(store, *PETR4)], server, Policy(wait=0.5), print)
        assert 0.5 <= time.monotonic() - started < 5


def test_a_waiting_command_goes_on_when_the_lock_is_released(tmp_path):
    lock = tmp_path / "admin.lock"
    acquired = threading.Event()

    def holder() -> None:
        with exclusive(lock, 0, "holder"):
            acquired.set()
            time.sleep(0.5)

    thread = threading.Thread(target=holder)
    thread.start()
    acquired.wait(5)
    with exclusive(lock, 10, "waiter"):
        assert "waiter" in lock.read_text()
    thread.join()


def test_an_unreachable_server_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(retrain, "run", _fail)  # training would turn this into "the registry is down"
    server = Server(server_config(tmp_path), tmp_path / "run", tmp_path / "model_store", ROOT / "log4j2.xml")
    with pytest.raises(StockcastError, match="management API is not answering at http://127.0.0.1:"):
        retrain.retrain([compose_train(tmp_path, *PETR4)], server, Policy(), print)
    text, healthy = status(server, f"sqlite:///{tmp_path}/none.db")
    assert not healthy and text.startswith("TorchServe: DOWN.") and "no MLflow store at" in text


def test_rollback_remove_and_a_partly_refused_retrain_change_only_their_tickers(server, swap, store, monkeypatch):
    """On top of version 2 (VALE3 v1, PETR4 v2): a second PETR4 model (3), PETR4 back to its model 2 (4),
    the last deploy undone (back to 3), PETR4 removed (5) and brought back (3 again), a retrain of PETR4 and
    a failing NOPE (6); VALE3 answers the same throughout, and no request fails."""
    tracking_uri = swap.result.tracking_uri
    client = MlflowClient(tracking_uri)
    said: list[str] = []
    petr4 = _answer(server, "PETR4")

    def champion() -> str:
        """The model version PETR4's champion was deployed as."""
        return registry.champion(client, "PETR4.SA").tags["archive_version"]

    def trained(cfg):
        if cfg.stock == "NOPE":
            raise StockcastError("cannot get prices for NOPE.SA")
        return swap.result

    monkeypatch.setattr(retrain, "run", trained)
    with client_loop(server) as loop:
        third = retrain.retrain([compose_train(store, *PETR4)], server, LENIENT, said.append)
        assert third.version == 3 and _answer(server, "PETR4")["model_version"] == "3" and champion() == "3"
        assert rollback.rollback(server, tracking_uri, stock="PETR4", say=said.append) == "4"
        assert _answer(server, "PETR4")["model_version"] == "2" and champion() == "2"
        assert _same(_answer(server, "PETR4"), petr4)
        assert rollback.rollback(server, tracking_uri, say=said.append) == "3"  # undoes the last deploy
        assert _answer(server, "PETR4")["model_version"] == "3" and champion() == "3"
        assert remove.remove(server, tracking_uri, "petr4", say=said.append) == "5"
        refused = predict(server, {"prices": PRICES, "stock": "PETR4"})
        assert refused.status == 400 and "this model serves 1 ticker(s): VALE3.SA" in refused.json()["message"]
        assert registry.champion(client, "PETR4.SA") is None
        assert rollback.rollback(server, tracking_uri, say=said.append) == "3"  # PETR4 is back
        assert _answer(server, "PETR4")["model_version"] == "3" and champion() == "3"
        both = retrain.retrain([compose_train(store, *PETR4), compose_train(store, "stock=NOPE")], server, LENIENT,
                               said.append)
        assert both.version == 6 and list(both.refused) == ["NOPE"] and champion() == "6"
        assert _answer(server, "PETR4")["model_version"] == "6"
        assert "REFUSED NOPE is not deployed: cannot get prices for NOPE.SA" in retrain.summary(both, server)
    assert loop.errors == 0 and loop.requests > 0 and set(loop.versions) == {"1"}, loop.statuses
    assert all(_same(json.loads(body), swap.before) for body in loop.bodies)
    with pytest.raises(StockcastError, match="unknown version 99: archives in"):
        rollback.rollback(server, tracking_uri, to=99)
    with pytest.raises(StockcastError, match="PETR4.SA never served model version 99: its deployed model versions "
                                             "are 2, 3, 6"):
        rollback.rollback(server, tracking_uri, to=99, stock="PETR4")
    with pytest.raises(StockcastError, match="ITUB4.SA is not served: the served tickers are PETR4.SA, VALE3.SA"):
        remove.remove(server, tracking_uri, "ITUB4")


def test_gate_refuses_non_finite_metrics_and_low_skill():
    metrics = {"test_mape": 2.0, "naive_mape": 1.9, "skill_mape": 1 - 2.0 / 1.9}
    assert gate(metrics, Policy(min_skill=-0.06), ranges=False) is None
    assert "below the minimum -0.0500" in gate(metrics, Policy(min_skill=-0.05), ranges=False)
    assert gate({**metrics, "val_mape": float("nan")}, Policy(min_skill=-1.0)) == "metrics are not finite: val_mape"


@pytest.mark.parametrize(("coverage", "skill_crps", "reason"), [
    (0.80, 0.01, None),
    (0.65, 0.01, "test_coverage_80 0.650 is outside [0.70, 0.90]: the 80 % ranges are too narrow"),
    (0.93, 0.01, "test_coverage_80 0.930 is outside [0.70, 0.90]: the 80 % ranges are too wide"),
    (0.80, -0.03, "skill_crps -0.0300 is below the minimum -0.0200"),
])
def test_gate_refuses_miscalibrated_or_unskilled_ranges(coverage, skill_crps, reason):
    metrics = {"test_mape": 2.0, "naive_mape": 2.0, "skill_mape": 0.0, "test_crps": 1.0, "naive_crps": 1.0,
               "skill_crps": skill_crps, "test_coverage_80": coverage}
    found = gate(metrics, Policy())
    assert found == reason if reason is None else reason in found
    assert gate(metrics, Policy(), ranges=False) is None  # a point model's ranges are not judged
