# Operating the served model: retrain and deploy into the running server, status, rollback, repair.
# Included by the Makefile; uses its VENV and PY. Options of scripts/admin.py go in ARGS.
.PHONY: retrain status rollback repair

retrain: $(VENV)/.installed ## train, gate, deploy as the new default of `make serve`; STOCK= START= END= ARGS="--min-skill -0.1 trainer.max_epochs=20"
	$(PY) scripts/admin.py retrain $(if $(STOCK),--stock $(STOCK)) $(if $(START),--start $(START)) \
		$(if $(END),--end $(END)) $(ARGS)

status: $(VENV)/.installed ## TorchServe health, served versions and workers, each ticker's MLflow champion
	$(PY) scripts/admin.py status

rollback: $(VENV)/.installed ## make the previous version (or TO=<version>) the default again, alias included
	$(PY) scripts/admin.py rollback $(if $(TO),--to $(TO)) $(ARGS)

repair: $(VENV)/.installed ## undo what a killed retrain or rollback left half done (status reports one)
	$(PY) scripts/admin.py repair $(ARGS)

.PHONY: refresh
refresh: $(VENV)/.installed ## download the days each price cache in data/ lacks (or STOCK=A,B's), up to the last session
	$(PY) scripts/admin.py refresh $(if $(STOCK),--stock $(STOCK)) $(ARGS)
