"""The release and watch rooms: the journal's step kinds as on disk; the config groups admin.py reads without
composing the training config; the gate's and drift rules' defaults shown without torch. (Imports one way and
without a circle: `make lint`'s import contracts.)"""

from __future__ import annotations

import subprocess
import sys

from stockcast.config import load_config, train_groups
from stockcast.release.journal import Step


def test_the_gate_and_the_drift_rules_import_no_torch():
    """scripts/admin.py shows their defaults in --help without importing torch or MLflow."""
    code = ("import sys, stockcast.release.policy, stockcast.watch.drift; "
            "print(sorted({'torch', 'mlflow'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_step_kinds_are_the_strings_journals_on_disk_hold():
    assert [str(step) for step in Step] == ["training", "mlflow_version", "archived", "server_version", "default",
                                            "champion", "committed"]


def test_the_groups_admin_reads_are_the_composed_training_configs():
    groups, composed = train_groups("paths", "logger"), load_config("train")
    assert groups.paths.data_dir == composed.paths.data_dir
    assert groups.logger.tracking_uri == composed.logger.tracking_uri
