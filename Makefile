# cognigy-webhooks: the commands a person wants.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: setup demo test lint format bench build deploy clean

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

bench: $(VENV)/.installed ## every benchmark under bench/ (not part of make test)
	@set -e; for b in bench/*.py; do echo "== $$b"; $(PY) $$b; done

build: ## sam build (needs the SAM CLI)
	sam build

deploy: build ## sam deploy (guided the first time)
	sam deploy --guided

clean: ## remove the venv, caches, build output and the local stack's state (.cogwh/)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .aws-sam .cogwh
