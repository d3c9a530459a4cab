"""Every config file composes, maps onto its constructors, and names keys that exist."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stockcast.models.module import Forecaster
from stockcast.models.net import ForecastNet
from stockcast.runtime.metric_keys import WINDOW_BASELINES
from tests.conftest import ROOT, compose_config, compose_train

CONFIGS = ROOT / "configs"


def names(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))


def test_the_model_node_builds_the_net_it_records(tmp_path):
    cfg = compose_config("train", tmp_path, "model.net.hidden=32", "data.features=[Close,Volume]",
                         "model.net.volatility=close")
    model = instantiate(cfg.model, _convert_="all")
    assert isinstance(model, Forecaster) and isinstance(model.net, ForecastNet)
    assert model.net.lstm.hidden_size == 32 and model.net.lstm.num_layers == 2
    assert model.net.head.out_features == cfg.data.horizon * len(cfg.model.quantiles)  # the loss sizes the head
    net = OmegaConf.to_container(cfg.model.net, resolve=True)
    assert net["features"] == ["Close", "Volume"] and net["target"] == "volatility"  # written once, in data
    assert net["quantiles"] == list(cfg.model.quantiles) and net["context"] == cfg.data.context


def test_the_point_form_has_a_point_head(tmp_path):
    cfg = compose_config("train", tmp_path, "model.loss=mse")
    model = instantiate(cfg.model, _convert_="all")
    assert model.net.levels is None and model.net.head.out_features == cfg.data.horizon
    assert isinstance(model.loss, torch.nn.MSELoss)


@pytest.mark.parametrize("experiment", names("experiment"))
def test_each_experiment_composes_into_a_full_config(tmp_path, experiment):
    cfg = compose_config("train", tmp_path, f"experiment={experiment}")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["data"]["test_start"] > resolved["data"]["val_start"] > resolved["start"]
    assert resolved["end"] >= resolved["data"]["test_start"]
    instantiate(cfg.model, _convert_="all")


def test_the_grid_sweeps_keys_that_exist(tmp_path):
    params = compose_config("train", tmp_path, "hparams_search=grid", keep_hydra=True).hydra.sweeper.params
    grid = {key: str(values).split(",") for key, values in params.items()}
    assert len(grid) == 3
    for combination in itertools.product(*grid.values()):
        overrides = [f"{key}={value}" for key, value in zip(grid, combination, strict=True)]
        cfg = compose_config("train", tmp_path, *overrides)  # an unknown key would fail to compose
        for key, value in zip(grid, combination, strict=True):
            assert str(OmegaConf.select(cfg, key)) == value


@pytest.mark.parametrize("launcher", [*names("hydra/launcher"), "joblib"])  # joblib: the plugin's, docs/training.md
def test_each_launcher_composes(tmp_path, launcher):
    cfg = compose_config("train", tmp_path, f"hydra/launcher={launcher}", keep_hydra=True)
    assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")


def test_evaluate_baselines_are_the_statsforecast_and_range_models(tmp_path):
    cfg = compose_config("evaluate", tmp_path)
    methods = instantiate(cfg.baselines)
    closes = 50 + np.cumsum(np.random.default_rng(1).normal(size=200))
    history = closes[:, None]  # [T, 1]
    np.testing.assert_array_equal(methods["naive"](history, 10), np.full(10, closes[-1]))
    slope = (closes[-1] - closes[0]) / (len(closes) - 1)
    np.testing.assert_array_equal(methods["drift"](history, 10), closes[-1] + slope * np.arange(1, 11))
    np.testing.assert_array_equal(methods["moving_average"](history, 10), np.full(10, closes[-20:].mean()))
    levels = len(cfg.quantiles)
    assert {baseline.method for baseline in WINDOW_BASELINES} <= set(methods)  # named as the registry names them
    for name in ("ets", "naive_empirical", "ewma", "garch"):  # the range baselines answer quantiles (from closes)
        ranges = methods[name](history, 10)
        assert ranges.shape == (10, levels) and np.all(np.diff(ranges, axis=-1) >= 0), name


def test_gpu_trainer_is_the_cpu_trainer_on_cuda(tmp_path):
    cpu = OmegaConf.to_container(compose_config("train", tmp_path).trainer, resolve=True)
    gpu = OmegaConf.to_container(compose_config("train", tmp_path, "trainer=gpu").trainer, resolve=True)
    assert (gpu.pop("accelerator"), gpu.pop("precision"), cpu.pop("accelerator")) == ("gpu", "32-true", "cpu")
    assert gpu == cpu


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: a machine with a GPU")
def test_trainer_gpu_trains_tests_and_logs_like_the_cpu(tmp_path: Path, shared_data):
    from stockcast.pipeline import run

    result = run(compose_train(tmp_path, "end=2025-11-07", "trainer=gpu"))
    assert np.isfinite(result.metrics["test_mape"]) and result.meta.net["hidden"] == 16


def test_quantiles_without_the_interval_ends_are_refused_before_training(tmp_path):
    cfg = compose_config("train", tmp_path, "model.quantiles=[0.1,0.5,0.9]")
    with pytest.raises(Exception, match=r"model.quantiles must hold \[0.05, 0.1, 0.5, 0.9, 0.95\]"):
        instantiate(cfg.model, _convert_="all")


def test_the_risk_backtest_scores_what_model_config_serves(tmp_path):
    """make risk's peers build from their `_target_`s, it draws as many scenarios as the server, every setting it
    tries is one the server reads, and model-config.yaml's handler.risk is what its validation chose (the choice
    docs/risk.md records from the run)."""
    import re

    from stockcast.config import risk_settings
    from stockcast.eval.risk_methods import FilteredHistorical, Historical, RiskMetrics
    from stockcast.runtime.copula import Sampler

    cfg = compose_config("risk", tmp_path)
    peers = instantiate(cfg.baselines, _convert_="all")
    assert [type(peer) for peer in peers.values()] == [Historical, RiskMetrics, FilteredHistorical]
    served = risk_settings()
    assert Sampler.configured(served).scenarios == cfg.scenarios
    tried = {key: list(values) for key, values in cfg.grid.items()}
    assert all(served[key] in values for key, values in tried.items()), (served, tried)
    chosen = re.search(r"<!-- chosen:start -->\n```yaml\n(.*?)```\n<!-- chosen:end -->",
                       (ROOT / "docs" / "risk.md").read_text(), re.S)
    assert chosen, "docs/risk.md records no chosen settings"
    recorded = yaml.safe_load(chosen.group(1))
    assert set(recorded) == set(tried) and recorded == {key: served[key] for key in tried}
