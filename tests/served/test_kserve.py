"""deploy/kserve: the InferenceService manifest checked against KServe's own SDK models (in a venv of their own:
`kserve` from PyPI pins psutil and protobuf below ours), its config.properties against what TorchServe's KServe
wrapper reads, and a real TorchServe started with that config answering a KServe v1 client's requests."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from stockcast import ROOT
from stockcast.serving.archive import archive
from stockcast.serving.client import call, post_json
from stockcast.serving.private_server import private_server
from stockcast.serving.settings import MODEL_NAME, read_properties
from tests.serving import PRICES

KSERVE = ROOT / "deploy" / "kserve"
MANIFEST = KSERVE / "inferenceservice.yaml"
CONFIG = KSERVE / "config" / "config.properties"
# The SDK the check was written against; its generated models are KServe's v1beta1 API.
KSERVE_SDK = "kserve==0.21.0"
# What TorchServe's KServe wrapper (kubernetes/kserve/kserve_wrapper in TorchServe's repository) reads from
# the config: where to forward and probe, the model store, and the models to serve (model_snapshot's names).
WRAPPER_KEYS = ("inference_address", "management_address", "grpc_inference_port", "model_store", "model_snapshot")


def _same_forecast(answer: dict, single: dict) -> bool:
    """The answer a single request got (within float32 rounding: batched with others it runs in a larger pass)."""
    return (answer["stock"], answer.get("dates")) == (single["stock"], single.get("dates")) and \
        answer["forecast"] == pytest.approx(single["forecast"], abs=1e-5)


def _snapshot() -> dict:
    return json.loads(read_properties(CONFIG)["model_snapshot"])


def test_config_has_what_kserve_and_its_wrapper_read():
    properties = read_properties(CONFIG)
    assert not [key for key in WRAPPER_KEYS if key not in properties]
    assert properties["inference_address"] == "http://0.0.0.0:8085"  # the wrapper owns 8080
    assert properties["model_store"] == "/mnt/models/model-store"  # where KServe mounts the storage URI
    assert properties["metrics_address"].endswith(":8082")  # the port KServe's runtime annotates for scraping
    # The wrapper sends no token; the envelope stays off even where KServe's runtime sets TS_SERVICE_ENVELOPE.
    assert properties["disable_token_authorization"] == "true"
    assert properties["enable_envvars_config"] == "false" and "service_envelope" not in properties
    snapshot = _snapshot()
    assert list(snapshot["models"]) == [MODEL_NAME] and snapshot["modelCount"] == 1
    (version, model), = snapshot["models"][MODEL_NAME].items()
    assert model["defaultVersion"] is True and model["marName"] == f"{MODEL_NAME}.mar"
    # The snapshot's settings win over the archive's model-config.yaml: they must be the same ones.
    shipped = yaml.safe_load((ROOT / "model-config.yaml").read_text())
    assert {key: model[key] for key in ("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay", "responseTimeout")
            } == {key: shipped[key] for key in ("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay",
                                                 "responseTimeout")}
    # The root config's request limits hold here too.
    root = read_properties(ROOT / "config.properties")
    assert {key: properties[key] for key in ("max_request_size", "decode_input_request", "job_queue_size")} == \
        {key: root[key] for key in ("max_request_size", "decode_input_request", "job_queue_size")}


def test_manifest_names_the_pytorch_runtime_and_the_storage_layout():
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    model = manifest["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "pytorch"} and model["protocolVersion"] == "v1"
    assert model["storageUri"] and int(model["resources"]["limits"]["cpu"]) == _snapshot()["models"][MODEL_NAME][
        "1.0"]["maxWorkers"]  # one worker per CPU: the handler runs torch with one thread


@pytest.fixture(scope="module")
def kserve_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh venv holding the kserve SDK (about a minute); skipped where pip cannot get it."""
    folder = tmp_path_factory.mktemp("kserve-venv")
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                KSERVE_SDK], capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        last = (installed.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"needs the kserve SDK: pip could not install {KSERVE_SDK} from PyPI into a venv ({last})")
    return python


@pytest.mark.slow
def test_manifest_builds_into_the_kserve_sdk_models(kserve_python: Path):
    manifest = yaml.safe_load(MANIFEST.read_text())
    checked = subprocess.run([str(kserve_python), str(ROOT / "tests" / "kserve_schema.py")], input=json.dumps(manifest),
                             capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(checked.stdout)
    print(json.dumps(report))  # -s shows what was checked, with the SDK's version
    assert report["problems"] == []
    # Nothing lost or changed on the way back; the SDK adds only its default (empty) container name.
    assert report["round_trip"] == {"lost_or_changed": [], "added": {".spec.predictor.model.name": ""}}
    assert (report["kind"], report["api_version"]) == ("InferenceService", "serving.kserve.io/v1beta1")
    predictor = report["predictor"]
    assert (predictor["model_format"], predictor["protocol_version"]) == ("pytorch", "v1")
    assert predictor["storage_uri"] == manifest["spec"]["predictor"]["model"]["storageUri"]


@pytest.mark.slow
def test_torchserve_with_the_kserve_config_answers_kserve_v1_requests(trained_run, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    """What KServe's runtime runs, on loopback: this config (its own ports freed, the model store a temp one),
    TS_SERVICE_ENVELOPE=kserve in the environment as the runtime sets it, no token. Both paths a v1 client's
    request takes: TorchServe's own `/v1/models/lstm:predict`, and `/predictions/lstm`, where KServe's wrapper
    forwards the body unchanged."""
    result, _ = trained_run
    archive(result.tracking_uri, "stockcast", tmp_path / "model-store", run_ids=[result.run_id])
    monkeypatch.setenv("TS_SERVICE_ENVELOPE", "kserve")
    with private_server(tmp_path / "model-store", tmp_path, CONFIG, auth=False) as server:
        base = server.url("inference")
        assert server.url("management") == base  # one port for both, as in the pod
        registered = call("GET", f"{base}/models/{MODEL_NAME}", None).json()[0]  # loaded from model_snapshot
        assert (registered["batchSize"], registered["maxBatchDelay"], registered["minWorkers"]) == (16, 1, 2)

        single = post_json(f"{base}/predictions/{MODEL_NAME}", {"prices": PRICES}, None)
        assert single.status == 200, single.body
        instances = [{"prices": PRICES}, {"prices": PRICES[5:], "stock": "VALE3", "last_date": "2025-11-07"},
                     {"prices": [1.0]}]
        for path in (f"/v1/models/{MODEL_NAME}:predict", f"/predictions/{MODEL_NAME}"):
            answer = post_json(base + path, {"instances": instances}, None)
            assert answer.status == 200, answer.body
            predictions = answer.json()["predictions"]
            assert len(predictions) == 3 and _same_forecast(predictions[0], single.json())
            assert predictions[1]["stock"] == "VALE3.SA" and predictions[1]["dates"][0] == "2025-11-10"
            assert predictions[2]["code"] == 400  # a bad instance gets its own error, the others their answers
        with ThreadPoolExecutor(8) as pool:  # batched with each other: each still gets its own answer
            answers = list(pool.map(lambda _: post_json(f"{base}/v1/models/{MODEL_NAME}:predict",
                                                        {"instances": instances[:2]}, None), range(32)))
        assert {answer.status for answer in answers} == {200}
        assert all(_same_forecast(answer.json()["predictions"][0], single.json()) for answer in answers)
        print(json.dumps({"request": {"instances": [{"prices": f"<{len(PRICES)} closes>"}]},
                          "answer": {"predictions": [{key: single.json()[key] for key in ("stock", "model_version",
                                                                                          "window", "horizon")}]}}),
              file=sys.stderr)
