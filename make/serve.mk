# Serving: archive a trained run for TorchServe, start and stop the server, ask it for a forecast, load-test it.
# Included by the Makefile; uses its VENV, PY and STOCKCAST_ROOT.
.PHONY: archive serve stop predict demo bench sp100 image-test stack-test

DEMO_EPOCHS ?= 10

archive: $(VENV)/.installed ## newest VALE3 run -> model_store/lstm.mar; STOCK=VALE3,PETR4 (or all) / RUN_ID=... pick others
	$(PY) scripts/archive.py $(if $(RUN_ID),--run-id $(RUN_ID)) $(if $(STOCK),--stock $(STOCK))

serve: $(VENV)/.installed ## start TorchServe in the background on 127.0.0.1:8080-8082; AUTH=off: no tokens (local only)
	$(PY) scripts/serve.py start --auth $(or $(AUTH),on)

stop: $(VENV)/.installed ## stop TorchServe
	$(PY) scripts/serve.py stop

predict: $(VENV)/.installed ## forecast a served ticker (STOCK=, default VALE3) from its latest prices: a table and a PNG
	$(PY) scripts/predict.py $(if $(STOCK),--stock $(STOCK))

demo: $(VENV)/.installed ## from a fresh clone: get data, train VALE3 briefly, archive, serve, print a forecast
	$(PY) train.py trainer.max_epochs=$(DEMO_EPOCHS)
	$(PY) scripts/serve.py stop
	$(PY) scripts/archive.py
	$(PY) scripts/serve.py start --auth $(or $(AUTH),on)
	$(PY) scripts/predict.py

bench: $(VENV)/.installed ## load-test the running server beside a bare and a same-handler peer (wrk), by name too (a private server, a temp price store), then the portfolio (1 vs all trained tickers); BENCHMARKS.md
	$(PY) -m benchmarks.serving $(BENCH_ARGS)
	$(PY) -m benchmarks.portfolio $(PORTFOLIO_ARGS)

# The 100 S&P tickers are committed compressed (prices/SOURCES.md); `make sp100` extracts them once into the
# git-ignored prices/sp100/. SP100_DIR=/elsewhere trains on another folder of <SYMBOL>.csv instead.
SP100_DIR ?= prices/sp100
SP100 := start=2013-01-01 end=2017-12-29 logger.experiment_name=sp100 +trainer.enable_progress_bar=false \
	~callbacks.progress_bar

prices/sp100: | prices/sp100.tar.xz  # extracted beside, then moved: an interrupted one is not taken for done
	rm -rf prices/sp100.partial && mkdir prices/sp100.partial
	tar -xJf prices/sp100.tar.xz -C prices/sp100.partial && mv prices/sp100.partial/sp100 prices/ && rmdir prices/sp100.partial

sp100: $(VENV)/.installed $(SP100_DIR) ## train every ticker in SP100_DIR (joblib sweep, 2 jobs) and one pooled model; experiment sp100
	tickers=$$(ls $(SP100_DIR)/*.csv | xargs -n1 basename | sed 's/\.csv$$//' | paste -sd,); \
	export STOCKCAST_DATA_DIRS=$(abspath $(SP100_DIR)); \
	time $(PY) train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 "stock=$$tickers" $(SP100) && \
	time $(PY) train.py "stock=[$$tickers]" data.batch_size=256 $(SP100)

image-test: $(VENV)/.installed ## build the Dockerfile from a fresh clone of HEAD and run it, then remove it (many minutes; not in make test)
	STOCKCAST_IMAGE_TEST=1 $(PY) -m pytest -s -ra tests/served/test_image.py $(PYTEST_ARGS)

stack-test: $(VENV)/.installed ## compose.yaml's stack from a fresh clone of HEAD: up, used, broken on purpose, removed (about 30 minutes; not in make test)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" STOCKCAST_STACK_TEST=1 $(PY) -m pytest -s -x -ra tests/served/test_stack.py $(PYTEST_ARGS)
