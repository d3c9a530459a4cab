"""The container's health check: standard library only (it runs on every probe), and a clear exit status."""

from __future__ import annotations

import json
import subprocess
import sys

from stockcast.serving.private_server import server_config


def test_the_health_check_imports_no_heavy_library():
    code = "import json, sys, stockcast.serving.healthcheck; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert not {"hydra", "omegaconf", "psutil", "torch", "mlflow", "pandas"} & set(loaded)


def test_the_health_check_fails_when_nothing_answers(tmp_path):
    config = server_config(tmp_path)  # free ports: nothing listens there
    check = subprocess.run([sys.executable, "-m", "stockcast.serving.healthcheck", "--config", str(config),
                            "--key-file", str(tmp_path / "key_file.json")], capture_output=True, text=True)
    assert check.returncode == 1, check.stderr
