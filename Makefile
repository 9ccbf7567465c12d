# kafka-parquet-archiver: everything a fresh machine needs is set up by these targets.
#   make run    install, start the local broker (unless one is configured), create the topic, run the daemon
#   make test   install, lint and type-check, run the whole test suite against a real broker
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/archiver.toml
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench-deps quix-env bench bench-quick soak broker-start broker-stop clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	@if [ -z "$$ARCHIVER_KAFKA__BOOTSTRAP_SERVERS" ]; then $(BIN)/python scripts/kafka-local start; fi
	$(BIN)/kafka-parquet-archiver create-topics --config $(CONFIG)
	exec $(BIN)/kafka-parquet-archiver run --config $(CONFIG)

test: install lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check consumer tests bench scripts/kafka-local
	$(BIN)/ruff format --check consumer tests bench scripts/kafka-local
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix consumer tests bench scripts/kafka-local
	$(BIN)/ruff format consumer tests bench scripts/kafka-local

# Benchmarks are not part of `make test`: they need minutes and a quiet machine.
bench-deps: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'

# Quix Streams (system d) gets its own virtualenv: its pins conflict with ours (see pyproject.toml).
quix-env: install
	test -x bench/.venv-quix/bin/python || $(BIN)/python -m venv bench/.venv-quix
	bench/.venv-quix/bin/python -m pip install --quiet -r bench/requirements-quix.txt

# The full benchmark measures every system three times in interleaved rounds and compares median
# runs: one run of a system can be 30% off on a shared machine.
bench: bench-deps quix-env
	$(BIN)/python -m bench.run --repeat 3 --workloads W1,W2,W3

bench-quick: bench-deps quix-env
	$(BIN)/python -m bench.run --quick --workloads W1,W2

# The memory soak is not part of `make test` either: 5 million churning-key records through the
# daemon with a 64 MiB budget, RSS sampled every second (bench/soak.py). Options through SOAK_ARGS,
# e.g. make soak SOAK_ARGS='--records 1000000 --allocator mimalloc --keep'.
soak: bench-deps
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

broker-start:
	$(PYTHON) scripts/kafka-local start

broker-stop:
	$(PYTHON) scripts/kafka-local stop

clean:
	-$(PYTHON) scripts/kafka-local stop
	rm -rf $(VENV) .kafka-local .pytest_cache .mypy_cache .ruff_cache
