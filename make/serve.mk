# Serving: archive a trained run for TorchServe, start and stop the server, ask it for a forecast, load-test it.
# Included by the Makefile; uses its VENV, PY and STOCKCAST_ROOT.
.PHONY: archive serve stop predict demo bench image-test

DEMO_EPOCHS ?= 10

archive: $(VENV)/.installed ## package the newest VALE3 run as model_store/lstm.mar; RUN_ID=... or STOCK=... picks another
	$(PY) scripts/archive.py $(if $(RUN_ID),--run-id $(RUN_ID)) $(if $(STOCK),--stock $(STOCK))

serve: $(VENV)/.installed ## start TorchServe in the background on 127.0.0.1:8080-8082; AUTH=off: no tokens (local only)
	$(PY) scripts/serve.py start --auth $(or $(AUTH),on)

stop: $(VENV)/.installed ## stop TorchServe
	$(PY) scripts/serve.py stop

predict: $(VENV)/.installed ## forecast the served ticker from its latest prices: a table and a PNG
	$(PY) scripts/predict.py

demo: $(VENV)/.installed ## from a fresh clone: get data, train VALE3 briefly, archive, serve, print a forecast
	$(PY) train.py trainer.max_epochs=$(DEMO_EPOCHS)
	$(PY) scripts/serve.py stop
	$(PY) scripts/archive.py
	$(PY) scripts/serve.py start --auth $(or $(AUTH),on)
	$(PY) scripts/predict.py

bench: $(VENV)/.installed ## load-test the running server at 1/32/128 connections (wrk); writes BENCHMARKS.md
	$(PY) -m benchmarks.serving $(BENCH_ARGS)

image-test: $(VENV)/.installed ## build the Dockerfile from a fresh clone of HEAD and run it (many minutes; not in make test)
	STOCKCAST_IMAGE_TEST=1 $(PY) -m pytest -s -ra tests/test_image.py $(PYTEST_ARGS)
