# Targets for a fresh machine with Python 3.10+, make and git. Everything installs into
# .venv; Meltano installs its plugins under .meltano/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed

.PHONY: setup test demo bench lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
	$(UV) pip install --quiet --python $(BIN)/python -e . --group dev
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python scripts/demo.py

bench: setup
	$(BIN)/python -m benchmarks.run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .meltano output .run dist
