# The market universe (prices/SOURCES.md): committed compressed, extracted once into the git-ignored prices/universe/.
UNIVERSE_ARGS ?=

prices/universe: | prices/universe.tar.xz  # extracted beside, then moved: an interrupted one is not taken for done
	rm -rf prices/universe.partial && mkdir prices/universe.partial
	tar -xJf prices/universe.tar.xz -C prices/universe.partial && mv prices/universe.partial/universe prices/ && \
	  rmdir prices/universe.partial

universe-data: prices/universe ## extract the market universe (492 stocks, 2 indexes) into prices/universe/

universe: $(VENV)/.installed prices/universe ## global net on both folds + the per-ticker sample, MLflow experiment universe; the tables
	$(PY) scripts/universe.py $(UNIVERSE_ARGS)
