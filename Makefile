# The two commands of the README: `make demo` runs the example pipeline against the bundled emulator,
# `make test` runs the whole test suite. Both build .venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean test-airflow-3.2 test-ui docs-img

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# The oldest supported Airflow release, in its own virtual environment under build/ (which ruff skips).
VENV_32 := build/venv-airflow-3.2
STAMP_32 := $(VENV_32)/.installed

$(STAMP_32): pyproject.toml constraints-3.2.txt
	$(PYTHON) -m venv $(VENV_32)
	$(VENV_32)/bin/python -m pip install --quiet --constraint constraints-3.2.txt --editable ".[test]"
	touch $(STAMP_32)

test-airflow-3.2: $(STAMP_32)
	$(VENV_32)/bin/python -m pytest

# The browser test alone; it needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver).
test-ui: $(STAMP)
	$(BIN)/python -m pytest -m ui

# Runs the browser test and refreshes the committed screenshot of the connection form in docs/img/.
docs-img: $(STAMP)
	FXIAOKE_UPDATE_DOCS_IMG=1 $(BIN)/python -m pytest -m ui

clean:
	rm -rf $(VENV) build
