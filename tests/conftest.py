"""Shared fixtures: real Hydra configs via compose(), the repository's price CSVs (prices/), a throwaway MLflow
store, one real TorchServe per test module; the `slow` marker on every test that trains or serves; and one line
at the end of a run saying what did not run and how to run it."""

from __future__ import annotations

import collections
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from stockcast import ROOT  # importing stockcast sets STOCKCAST_ROOT, which configs/paths reads
from stockcast.config import register_resolvers
from stockcast.data.download import DATA_DIRS_ENV, PRICES_DIR

# A test that asks for one of these (or for a fixture that does) trains a model: it is marked `slow`.
TRAINING_FIXTURES = {"trained_run"}
# Skip reasons the end-of-run line groups: "needs WHAT: HOW TO GET IT".
PROMETHEUS = "needs Prometheus: apt-get install prometheus, as .ci/run does"
SLURM = "needs SLURM: apt-get install slurm-wlm munge slurmdbd mariadb-server, as .ci/run does"


def shared_data_dir() -> Path:
    """The real price CSVs: the first folder in $STOCKCAST_DATA_DIRS where it is set (an override, searched before
    prices/ by the Downloader too), else the repository's prices/."""
    configured = [d for d in os.environ.get(DATA_DIRS_ENV, "").split(os.pathsep) if d]
    return Path(configured[0]) if configured else PRICES_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of the real price CSVs the tests read (prices/ in a clone: never missing there)."""
    folder = shared_data_dir()
    if not (folder / "VALE3.SA.csv").exists():
        pytest.fail(f"{DATA_DIRS_ENV} names {folder}, which has no VALE3.SA.csv: unset it to read prices/")
    return folder


@pytest.fixture(scope="session")
def sp100(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 100 S&P tickers' CSVs: `sp100/` beside the others where it is a folder (`make sp100` extracts
    prices/sp100/; an override may hold one), else prices/sp100.tar.xz extracted for this session."""
    if (shared_data / "sp100").is_dir():
        return shared_data / "sp100"
    return _extracted("sp100", tmp_path_factory)


@pytest.fixture(scope="session")
def universe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The market universe (us/, b3/, index/): prices/universe/ where `make universe-data` extracted it, else
    prices/universe.tar.xz extracted for this session."""
    if (PRICES_DIR / "universe" / "us").is_dir():
        return PRICES_DIR / "universe"
    return _extracted("universe", tmp_path_factory)


def _extracted(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prices/<name>.tar.xz extracted into a folder of this session's: its <name>/ folder."""
    folder = tmp_path_factory.mktemp(name)
    with tarfile.open(PRICES_DIR / f"{name}.tar.xz") as archive:
        archive.extractall(folder, filter="data")
    return folder / name


@pytest.fixture(scope="session", autouse=True)
def _isolated_env() -> Iterator[None]:
    """No test touches the user's MLflow server or TorchServe. Session-scoped, so it is in place before every
    fixture, module- and session-scoped ones included; prices need no variable (prices/ is the default)."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        env.delenv("STOCKCAST_TORCHSERVE_HOST", raising=False)
        yield


@pytest.fixture(autouse=True)
def _no_tracking_uri_left() -> Iterator[None]:
    """MLflow exports the tracking URI of the store a test logged to: gone again after each test."""
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def compose_config(config_name: str, tmp_path: Path, *overrides: str, keep_hydra: bool = False) -> DictConfig:
    """A real config from `configs/`, its data cache, MLflow store and outputs under `tmp_path`
    (with `keep_hydra`, also the `hydra` node: launcher, sweeper)."""
    GlobalHydra.instance().clear()
    register_resolvers()
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name, return_hydra_config=True, overrides=[
            f"paths.data_dir={tmp_path / 'data'}", f"paths.mlruns_dir={tmp_path / 'mlruns'}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "outputs")
        if not keep_hydra:
            del cfg.hydra
    return cfg


def compose_train(tmp_path: Path, *overrides: str) -> DictConfig:
    """`configs/train.yaml`, made fast: 2 epochs of a small LSTM, no progress bar; the net of closes (so request
    bodies are `prices` alone; tests/test_pipeline.py trains the default's bars too)."""
    return compose_config("train", tmp_path, *FAST, "data.features=[Close]", "model.net.volatility=close", *overrides)


FAST = ("trainer.max_epochs=2", "+trainer.enable_progress_bar=false", "~callbacks.progress_bar", "model.net.hidden=16",
        "model.net.layers=1")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """One real 2-epoch VALE3 run in a throwaway store: (RunResult, local bundle folder). Its users are `slow`."""
    import mlflow

    from stockcast.pipeline import BUNDLE_PATH, run

    tmp_path = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as env:  # undone on leaving: the session fixture leaves os.environ as it was
        cfg = compose_train(tmp_path, "end=2025-11-07")
        env.setenv("MLFLOW_TRACKING_URI", cfg.logger.tracking_uri)  # MLflow exports it anyway: this undoes that
        result = run(cfg)
        bundle = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=BUNDLE_PATH,
                                                     dst_path=str(tmp_path / "download"),
                                                     tracking_uri=result.tracking_uri)
    return result, Path(bundle)


@pytest.fixture(scope="module")
def server(trained_run, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A real TorchServe serving the session's VALE3 run as version 1 from `lstm.mar`, one per test module (its own
    free ports and folders; always stopped)."""
    from tests.serving import running_server

    with running_server(trained_run[0], tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])) as served:
        yield served


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`slow` on every test that trains through a fixture (the TorchServe `server` fixture included): the fixtures
    they reach are known only here. Tests that train or start a server themselves carry the marker in their file."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def not_run(stats: dict[str, list], markexpr: str) -> str | None:
    """One line: the tests that did not run, grouped by what they need, and how to get it."""
    needs: collections.Counter = collections.Counter()
    for report in stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        needs[reason.removeprefix("Skipped: ").removeprefix("needs ")] += 1
    parts = [f"{count} {'test' if count == 1 else 'tests'} needing {reason.replace(': ', ' (', 1)}"
             f"{')' if ': ' in reason else ''}" for reason, count in needs.most_common()]
    deselected = sum(len(getattr(report, "items", [report])) for report in stats.get("deselected", []))
    if deselected:
        parts.insert(0, f"{deselected} deselected by {f'-m {markexpr!r}' if markexpr else '-k'} (make test runs them)")
    return f"not run: {', '.join(parts)}" if parts else None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config):
    """After pytest's own summary, right above the counts: what did not run, in one line."""
    result = yield
    line = not_run(terminalreporter.stats, config.option.markexpr)
    if line:
        terminalreporter.write_line(line, yellow=True, bold=True)
    return result
