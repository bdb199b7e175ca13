# The README's whole set-up is `make demo` and `make test`; each installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

DEMO_DB := .dbguard/demo/warehouse.db

demo: $(STAMP)
	-$(BIN)/dbguard check scripts/
	@echo
	@echo "The rogue cleanup is blocked (exit 1 above); the safe scripts pass:"
	$(BIN)/dbguard check scripts/safe_*.sql
	@echo
	@echo "Dry-run on a copy of a SQLite warehouse ($(DEMO_DB)); the file itself is never written:"
	@mkdir -p $(dir $(DEMO_DB)) && rm -f $(DEMO_DB)
	$(BIN)/python -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript(open(sys.argv[2]).read())" \
		$(DEMO_DB) scripts/schema/warehouse_sqlite.sql
	$(BIN)/dbguard dry-run scripts/sqlite/expire_reservations.sql --db sqlite:///$(DEMO_DB)
	@echo
	@echo "Then run it for real, guarded: a verified backup in the run's own transaction, the integrity gate, COMMIT:"
	$(BIN)/dbguard run scripts/sqlite/expire_reservations.sql --db sqlite:///$(DEMO_DB) --yes
	$(BIN)/dbguard journal list

bench: $(STAMP)
	$(BIN)/python bench/check_speed.py
	$(BIN)/python bench/dryrun_scale.py
	$(BIN)/python bench/backup_speed.py
	$(BIN)/python bench/run_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
