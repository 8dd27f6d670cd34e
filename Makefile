# Every target sets itself up on a fresh machine: it creates .venv and installs the package with
# its test extras the first time (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-slow test-notebooks lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## Main job: the retention case end to end (validate, aggregate, fit, decide, memo and plots).
run: $(STAMP)
	$(BIN)/bayesdecide run models/retention_outreach.toml

## Everything CI runs: lint, format check, fast tests, slow statistical checks, notebooks.
test: $(STAMP) lint test-fast test-slow test-notebooks

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -q -m notebook || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check bayesdecide tests benchmarks
	$(BIN)/ruff format --check bayesdecide tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix bayesdecide tests benchmarks
	$(BIN)/ruff format bayesdecide tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/cell_stats.py
	$(BIN)/python benchmarks/fit_speed.py
	$(BIN)/python benchmarks/decide_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
