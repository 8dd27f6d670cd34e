# Every target sets itself up on a fresh machine: it creates .venv and installs the package with
# its test and docs extras the first time (and again whenever pyproject.toml changes), then
# compiles the model's numba kernels once (bayesdecide compile), so that no fit has to.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-slow test-notebooks lint format docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(BIN)/bayesdecide compile
	touch $(STAMP)

## Main job: the retention case end to end (validate, aggregate, fit, decide, memo and plots).
run: $(STAMP)
	$(BIN)/bayesdecide run models/retention_outreach.toml

## Everything CI runs: lint, format check, the strict docs build, fast tests, slow statistical
## checks, notebooks.
test: $(STAMP) lint docs test-fast test-slow test-notebooks

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q --durations=10

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --durations=20 || [ $$? -eq 5 ]

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -q -m notebook || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check bayesdecide tests benchmarks docs/hooks
	$(BIN)/ruff format --check bayesdecide tests benchmarks docs/hooks

format: $(STAMP)
	$(BIN)/ruff check --fix bayesdecide tests benchmarks docs/hooks
	$(BIN)/ruff format bayesdecide tests benchmarks docs/hooks

## The docs site (mkdocs.yml) into site/, strictly: a broken reference, a page missing from the nav
## or a docstring that does not parse fails it (no --quiet: it would hide the warnings that strict
## counts). The notebooks are rendered as committed, not run.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python benchmarks/cell_stats.py
	$(BIN)/python benchmarks/fit_speed.py
	$(BIN)/python benchmarks/fit_scale.py
	$(BIN)/python benchmarks/calibration.py
	$(BIN)/python benchmarks/decide_speed.py

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache
