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

demo: $(STAMP)
	-$(BIN)/dbguard check scripts/
	@echo
	@echo "The rogue cleanup is blocked (exit 1 above); the safe scripts pass:"
	$(BIN)/dbguard check scripts/safe_*.sql

bench: $(STAMP)
	$(BIN)/python bench/check_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
