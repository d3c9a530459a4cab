# Operating the served tickers: retrain and deploy into the running server, status, rollback, remove, repair.
# Included by the Makefile; uses its VENV and PY. Options of scripts/admin.py go in ARGS.
.PHONY: retrain status rollback remove repair

retrain: $(VENV)/.installed ## train, gate, deploy into `make serve`; STOCK=PETR4[,VALE3] (ARGS=--all: every served one) START= END= ARGS="trainer.max_epochs=20"
	$(PY) scripts/admin.py retrain $(if $(STOCK),--stock $(STOCK)) $(if $(START),--start $(START)) \
		$(if $(END),--end $(END)) $(ARGS)

status: $(VENV)/.installed ## TorchServe health, versions and workers, one row per served ticker with its champion
	$(PY) scripts/admin.py status

rollback: $(VENV)/.installed ## undo the last deploy (or TO=<version>); STOCK=X: X's previous model (or TO=<its version>)
	$(PY) scripts/admin.py rollback $(if $(STOCK),--stock $(STOCK)) $(if $(TO),--to $(TO)) $(ARGS)

remove: $(VENV)/.installed ## stop serving STOCK=X (every other ticker unchanged)
	$(PY) scripts/admin.py remove --stock $(STOCK) $(ARGS)

repair: $(VENV)/.installed ## undo what a killed admin command left half done (status reports one)
	$(PY) scripts/admin.py repair $(ARGS)

.PHONY: refresh
refresh: $(VENV)/.installed ## bring each served ticker's price cache (or STOCK=A,B's) up to the last session
	$(PY) scripts/admin.py refresh $(if $(STOCK),--stock $(STOCK)) $(ARGS)

.PHONY: monitor replay
monitor: $(VENV)/.installed ## score what was served as closes arrive, MLflow + Pushgateway (PUSHGATEWAY=url); exit 1 on drift; ARGS=--retrain
	$(PY) scripts/admin.py monitor $(if $(STOCK),--stock $(STOCK)) $(if $(PUSHGATEWAY),--pushgateway $(PUSHGATEWAY)) $(ARGS)

replay: $(VENV)/.installed ## refresh + monitor day by day over stored history (fake clock); STOCK= START= END= ARGS=--retrain
	$(PY) scripts/admin.py replay --stock $(or $(STOCK),$(TICKERS)) --start $(or $(START),2024-01-01) \
		--end $(or $(END),2025-11-07) $(ARGS)
