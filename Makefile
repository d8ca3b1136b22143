# Two commands do everything: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean venv system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## make run: start an embedded broker, replay the demo feed and run the daemon on configs/demo.yaml
run: $(STAMP)
	$(BIN)/monitor demo --config configs/demo.yaml

## system-deps: promtool and prometheus (Debian's prometheus package) for the deploy tests
system-deps:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			DEBIAN_FRONTEND=noninteractive apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus; \
		else \
			echo "make test needs prometheus and promtool: sudo apt-get install prometheus" >&2; \
			exit 1; \
		fi; \
	fi

## make test: lint, type-check and run the whole suite (unit, doctests, integration)
test: $(STAMP) system-deps
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/ruff format --check monitor tests benchmarks
	$(BIN)/mypy

## make bench: throughput, memory, scrape time, latency and detection figures; last line: summary
bench: $(STAMP)
	$(BIN)/python benchmarks/detector_throughput.py
	$(BIN)/python benchmarks/fleet_quality.py
	$(BIN)/python benchmarks/stream_flood.py
	$(BIN)/python benchmarks/pipeline.py --repeat 3
	@$(BIN)/python benchmarks/summary.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
