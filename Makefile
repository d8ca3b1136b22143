# Two commands do everything: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## make run: start an embedded broker, replay the demo feed and run the daemon on configs/demo.yaml
run: $(STAMP)
	$(BIN)/monitor demo --config configs/demo.yaml

## make test: lint, type-check and run the whole suite (unit, doctests, integration)
test: $(STAMP)
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/ruff format --check monitor tests benchmarks
	$(BIN)/mypy

## make bench: throughput and memory figures
bench: $(STAMP)
	$(BIN)/python benchmarks/detector_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
