"""The console of a command: Hydra's job logging as configs/hydra/default.yaml sets it, with the project's filter."""

import logging
import warnings

import pytest
from hydra.core.utils import configure_log
from omegaconf import open_dict

from stockcast.data.download import Downloader
from stockcast.logs import capture_warnings
from tests.conftest import compose_config


@pytest.fixture
def console(tmp_path):
    """Configure logging as train.py's does for `overrides`; undone after the test."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("stockcast").level, warnings.formatwarning

    def configure(*overrides: str) -> None:
        cfg = compose_config("train", tmp_path, *overrides, keep_hydra=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path)
            cfg.hydra.job.name = "train"
        configure_log(cfg.hydra.job_logging, cfg.hydra.verbose)
        capture_warnings()

    yield configure
    for handler in root.handlers:
        handler.close()
    root.handlers, root.level = saved[0], saved[1]
    logging.getLogger("stockcast").setLevel(saved[2])
    logging.captureWarnings(False)
    warnings.formatwarning = saved[3]


@pytest.mark.parametrize("verbose", [False, True])
def test_per_file_reads_show_with_verbose_and_always_reach_the_log_file(console, tmp_path, capsys, verbose):
    console(f"verbose={str(verbose).lower()}")
    downloader = Downloader(tmp_path / "data", online=False)
    downloader.load("VALE3", "2024-01-01", "2024-12-31")
    logging.getLogger("stockcast.data.datamodule").info(downloader.summary())
    shown = capsys.readouterr().out
    assert "1 ticker read from prices, downloads off" in shown
    assert ("VALE3.SA from local file" in shown) == verbose
    assert "VALE3.SA from local file" in (tmp_path / "train.log").read_text()


def test_known_third_party_noise_stays_off_the_console(console, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    console()
    lightning = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    lightning.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
    lightning.info("GPU available: False, used: False")
    lightning.info("`Trainer.fit` stopped: `max_epochs=2` reached.")
    warnings.warn("The `srun` command is available on your system but is not used. HINT: ...", stacklevel=1)
    warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)`",
                  stacklevel=1)
    warnings.warn("a warning nobody filtered", stacklevel=1)
    logging.getLogger("py.warnings").warning("%s", "lightning/fit_loop.py:321: Lightning's own format\n")
    shown = capsys.readouterr().out
    assert "Trainer.fit` stopped" in shown and "UserWarning: a warning nobody filtered\n" in shown
    assert "Lightning's own format" in shown
    assert "" not in shown.splitlines()  # a warning is one line: no source line, no blank line after
    for noise in ("Tip", "GPU available", "srun", "LeafSpec"):
        assert noise not in shown
    assert "LeafSpec" in (tmp_path / "train.log").read_text()  # the log file keeps it


def test_the_srun_hint_shows_inside_a_slurm_job(console, capsys, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    console()
    logging.getLogger("lightning").warning("The `srun` command is available on your system but is not used.")
    assert "srun" in capsys.readouterr().out
