# cognigy-webhooks: the commands a person wants.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: setup demo test lint format bench capacity build deploy clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed ## create .venv and install the project (editable) with its dev extras

demo: $(VENV)/.installed ## the main job on the embedded local stack (no AWS, no Docker)
	$(BIN)/cogwh demo

test: $(VENV)/.installed ## unit, integration and e2e tests (one worker per core; a test file stays on one)
	$(BIN)/pytest -q -n auto --dist loadfile

lint: $(VENV)/.installed ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Each benchmark's arguments in `make bench` (override one: make bench BENCH_ARGS_reconcile="--n 300").
BENCHES := $(basename $(notdir $(wildcard bench/*.py)))
# reconcile: the cost run at 3,000 endpoints; its paced run (real waits) is bench/reconcile.py's default (100)
BENCH_ARGS_reconcile ?= --n 3000 --no-paced

bench: $(VENV)/.installed ## every benchmark under bench/ (not part of make test); saves each one's last JSON line in bench/results/, then make capacity
	@set -e; $(foreach b,$(BENCHES),echo "== bench/$(b).py $(BENCH_ARGS_$(b))"; $(PY) bench/support/record.py bench/$(b).py $(BENCH_ARGS_$(b));)
	$(PY) docs/capacity/model.py

capacity: $(VENV)/.installed ## rewrite docs/CAPACITY.md's tables from bench/results/*.json and docs/capacity/*.json
	$(PY) docs/capacity/model.py

build: ## sam build (needs the SAM CLI)
	sam build

deploy: build ## sam deploy (guided the first time)
	sam deploy --guided

clean: ## remove the venv, caches, build output and the local stack's state (.cogwh/)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .aws-sam .cogwh
