"""End to end: archive a trained run, start a real TorchServe on free loopback ports, call it over HTTP.

One server per module (conftest's `server`: private ports, run folder and temp folder; always stopped).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from mlflow import MlflowClient

from stockcast.errors import StockcastError
from stockcast.serving.client import call, post_json
from stockcast.serving.server import Server
from tests.bad_bodies import BAD
from tests.serving import PRICES, predict

pytestmark = pytest.mark.slow  # every test asks the module's TorchServe


def _predict(server: Server, payload) -> tuple[int, dict]:
    answer = predict(server, payload)
    return answer.status, answer.json()


def _lightning_forecast(trained_run, prices: list[float]) -> list[float]:
    """What the trained LightningModule itself predicts, from the best checkpoint the run logged."""
    from stockcast.models.module import Forecaster
    from stockcast.models.net import ForecastNet

    result, _ = trained_run
    client = MlflowClient(result.tracking_uri)
    checkpoints = [item.path for folder in client.list_artifacts(result.run_id) if folder.is_dir
                   for item in client.list_artifacts(result.run_id, folder.path) if item.path.endswith(".ckpt")]
    assert checkpoints, "the run logged no checkpoint"
    path = client.download_artifacts(result.run_id, checkpoints[0], tempfile.mkdtemp())
    net = ForecastNet(**result.meta.net)  # the checkpoint holds its weights, the bundle its arguments
    module = Forecaster.load_from_checkpoint(path, net=net, optimizer=None, map_location="cpu",
                                             quantiles=result.meta.net["quantiles"]).eval()
    with torch.no_grad():  # [H, Q]: what the server reads, the last `context` closes (here all of them)
        return module(torch.tensor(prices[-100:]).reshape(1, -1, 1))[0].tolist()


def test_valid_window_is_forecast_like_the_trained_module(server, trained_run):
    status, answer = _predict(server, {"prices": PRICES, "stock": "VALE3", "last_date": "2025-11-07"})
    assert status == 200
    assert (answer["stock"], answer["model_version"], answer["window"], answer["horizon"]) == ("VALE3.SA", "1", 20, 10)
    expected = _lightning_forecast(trained_run, PRICES)  # [H][Q]
    for index, level in enumerate(trained_run[0].meta.net["quantiles"]):
        assert answer["quantiles"][f"{level:g}"] == pytest.approx([step[index] for step in expected], abs=1e-5)
    assert answer["forecast"] == answer["quantiles"]["0.5"] and len(answer["p_up"]) == 10
    assert answer["dates"][:2] == ["2025-11-10", "2025-11-11"] and "2025-11-20" not in answer["dates"]




@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_gets_400_and_the_server_still_answers(server, name):
    body, message = BAD[name]
    answer = call("POST", f"{server.url('inference')}/predictions/lstm", server.key("inference"), body)
    assert answer.status == 400, answer.body
    assert message in answer.json()["message"]
    assert _predict(server, {"prices": PRICES})[0] == 200


def test_form_encoded_post_gets_400_naming_the_content_type(server):
    answer = call("POST", f"{server.url('inference')}/predictions/lstm", server.key("inference"),
                  json.dumps({"prices": PRICES}).encode(), content_type="application/x-www-form-urlencoded")
    assert answer.status == 400 and "Content-Type: application/json" in answer.json()["message"]


def test_concurrent_requests_are_answered_each_on_its_own(server):
    """Sent at once they share batches: the bad ones fail alone, the good ones match single requests."""
    good = [{"prices": [p * (1 + k / 100) for p in PRICES]} for k in range(24)]
    payloads = [body for pair in zip(good, [{"prices": PRICES[:3]}] * 24, strict=True) for body in pair]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda payload: _predict(server, payload), payloads))
    assert [status for status, _ in answers] == [200, 400] * 24
    for payload, (_, answer) in zip(good, answers[::2], strict=True):
        assert answer["forecast"] == pytest.approx(_predict(server, payload)[1]["forecast"], abs=1e-5)


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_requests_without_the_right_token_are_refused(server, key):
    for method, url in [("POST", f"{server.url('inference')}/predictions/lstm"),
                        ("GET", f"{server.url('inference')}/ping"),
                        ("GET", f"{server.url('management')}/models/lstm")]:
        answer = call(method, url, key, json.dumps({"prices": PRICES}).encode() if method == "POST" else None)
        assert answer.status == 400 and answer.json()["type"] == "InvalidKeyException", url


def test_the_management_key_does_not_open_inference(server):
    answer = post_json(f"{server.url('inference')}/predictions/lstm", {"prices": PRICES}, server.key("management"))
    assert answer.status == 400 and answer.json()["type"] == "InvalidKeyException"


def test_model_description_has_the_training_summary(server, trained_run):
    result, _ = trained_run
    answer = call("GET", f"{server.url('management')}/models/lstm?customized=true", server.key("management"))
    assert answer.status == 200
    description = answer.json()[0]["customizedMetadata"]["stocks"]["VALE3.SA"]
    assert (description["model"], description["mlflow_run_id"]) == ("VALE3.SA", result.run_id)
    assert description["test_metrics"]["model"]["mape"] == pytest.approx(result.metrics["test_mape"])
    assert description["test_metrics"]["naive_last_value"]["mape"] == pytest.approx(result.metrics["naive_mape"])


def test_only_archives_in_the_model_store_can_be_registered(server):
    answer = call("POST", f"{server.url('management')}/models?url=https://example.com/evil.mar",
                  server.key("management"), content_type="text/plain")  # a JSON type makes it read the body
    assert answer.status >= 400 and "does not match any allowed URL" in answer.json()["message"]


def test_prometheus_metrics_count_the_model_requests(server):
    before = _requests_total(server)
    for _ in range(3):
        assert _predict(server, {"prices": PRICES})[0] == 200
    assert _requests_total(server) >= before + 3


def _requests_total(server: Server) -> float:
    """The model's request counter; 0 before its first request (Prometheus omits unseen series)."""
    answer = call("GET", f"{server.url('metrics')}/metrics")  # no key: the metrics port needs none
    assert answer.status == 200
    match = re.search(r'^ts_inference_requests_total\{model_name="lstm",[^}]*\} (\S+)$', answer.body.decode(),
                      re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_the_container_health_check_passes_with_the_inference_key(server):
    check = subprocess.run([sys.executable, "-m", "stockcast.serving.healthcheck", "--config", str(server.config),
                            "--key-file", str(server.key_file)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_second_start_is_refused_with_a_clear_message(server):
    with pytest.raises(StockcastError, match="another TorchServe"):
        server.start()


def test_make_predict_prints_the_80_percent_range_and_draws_the_fan(server, tmp_path):
    from stockcast.predict import latest, save_chart, table

    forecast, history = latest(server, tmp_path / "data")
    assert len(forecast.prices) == 10 and set(forecast.intervals) == {"80", "90"}
    for day in range(10):
        band_80, band_90 = (forecast.intervals[key] for key in ("80", "90"))
        assert band_90["lower"][day] <= band_80["lower"][day] <= forecast.prices[day] <= band_80["upper"][day] \
            <= band_90["upper"][day]
        assert 0.05 <= forecast.p_up[day] <= 0.95
    text = table(forecast)
    assert "80 % range" in text and f"{forecast.intervals['80']['lower'][0]:7.2f} .. " in text
    chart = save_chart(forecast, history, tmp_path / "forecast.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
