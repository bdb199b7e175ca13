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

# The postmortem's story end to end on a generated SQLite warehouse, in a temporary directory: the rogue
# script blocked, a subtle one caught by its dry-run, then rolled back by run's integrity gate with its
# proof, a good one committed, its backup drilled and restored, the journal verified. Exits 0 only if every
# step behaved as told. On PostgreSQL: .venv/bin/dbguard demo --db postgresql://postgres@127.0.0.1:5432/postgres
demo: $(STAMP)
	$(BIN)/dbguard demo

bench: $(STAMP)
	$(BIN)/python bench/check_speed.py
	$(BIN)/python bench/dryrun_scale.py
	$(BIN)/python bench/backup_speed.py
	$(BIN)/python bench/run_overhead.py
	$(BIN)/python bench/verify_cost.py
	$(BIN)/python bench/accuracy/score.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
