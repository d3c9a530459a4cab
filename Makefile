# stockcast: `make help` lists the targets. Every target that needs the venv creates it first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
export STOCKCAST_ROOT := $(CURDIR)

.DEFAULT_GOAL := help
TICKERS ?= VALE3,PETR4,ITUB4,BBAS3,AAPL,MSFT

.PHONY: help install train sweep evaluate risk report results test test-fast lint mlflow-ui clean universe universe-data

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)  # first: a looser spec pulls CUDA wheels
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

install: $(VENV)/.installed ## create .venv: torch==2.13.0 first, then the project with its train and dev extras

train: $(VENV)/.installed ## train the default model (VALE3); ARGS="stock=PETR4 model.net.hidden=32"
	$(PY) train.py $(ARGS)

sweep: $(VENV)/.installed ## one MLflow run per job; ARGS="model.net.hidden=32,64,128"
	$(PY) train.py -m $(or $(ARGS),model.net.hidden=32,64,128)

evaluate: $(VENV)/.installed ## walk-forward backtest of the newest run vs baselines; ARGS="stock=PETR4"
	$(PY) evaluate.py $(ARGS)

risk: $(VENV)/.installed prices/universe ## portfolio VaR and ES walked over 2024 beside 4 peers (docs/risk.md); MLflow experiment risk
	$(PY) risk.py $(ARGS)

report: $(VENV)/.installed ## comparison table of the newest evaluation per ticker, written into docs/results.md
	$(PY) scripts/report.py --doc docs/results.md $(ARGS)

results: $(VENV)/.installed ## per-ticker + pooled LSTMs tested on 2024 and 2025, backtested, table into docs/results.md
	@for fold in test2024 test2025; do \
	  echo "make results, $$fold: 1/4 the per-ticker LSTMs" && $(PY) train.py -m experiment=$$fold stock=$(TICKERS) && \
	  echo "make results, $$fold: 2/4 their backtests" && $(PY) evaluate.py -m stock=$(TICKERS) && \
	  echo "make results, $$fold: 3/4 the pooled LSTM" && $(PY) train.py experiment=$$fold 'stock=[$(TICKERS)]' && \
	  echo "make results, $$fold: 4/4 its backtest" && $(PY) evaluate.py 'stock=[$(TICKERS)]' || exit 1; \
	done
	$(PY) scripts/report.py --doc docs/results.md

test: $(VENV)/.installed ## run the whole test suite (no network; ends with one line saying what did not run)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed ## the tests that neither train nor start a server (-m "not slow"), about a minute
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff, the import contracts (pyproject.toml) and mypy over src/, the runtime included
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

mlflow-ui: $(VENV)/.installed ## browse runs at http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db \
		--default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port 5000

clean: ## remove generated outputs (keeps data/ cache and mlruns/)
	rm -rf outputs multirun .pytest_cache

include make/serve.mk
include make/admin.mk
include make/universe.mk
