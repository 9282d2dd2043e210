# One task runner for people and CI. Every target creates what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help machine install kafka-jars demo test test-unit test-integration lint format typecheck clean bench

help:
	@echo "make demo   - bring up a local Kafka and run the end-to-end demo"
	@echo "make test   - lint, type-check and run every test (real Kafka, no Docker)"
	@echo "make machine - install the system packages the others need (root), or say how"
	@echo "make test-unit | test-integration | lint | typecheck | format | clean"

# System packages (JDK, Maven, PostgreSQL, MariaDB, ...): one list, shared with .ci/run.
machine:
	@scripts/prepare-machine

$(STAMP): pyproject.toml | machine
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $@

install: $(STAMP)

# Resolve the Kafka broker jars from Maven Central once (cached per user).
kafka-jars: $(STAMP) | machine
	$(BIN)/spbe-bus kafka fetch

demo: kafka-jars
	$(BIN)/spbe-bus demo

lint: $(STAMP)
	$(BIN)/ruff check bus adapters tests bench
	$(BIN)/ruff format --check bus adapters tests bench

format: $(STAMP)
	$(BIN)/ruff format bus adapters tests
	$(BIN)/ruff check --fix bus adapters tests

typecheck: $(STAMP)
	$(BIN)/mypy

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-integration: kafka-jars
	$(BIN)/pytest tests/integration

test: lint typecheck kafka-jars
	$(BIN)/pytest

# Throughput and latency next to the raw clients (not part of test). BENCH_ARGS=--quick
bench: kafka-jars
	$(BIN)/pip install -q pyinstrument matplotlib
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
