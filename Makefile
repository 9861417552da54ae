# Everything a fresh clone needs: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck pytest bench install node browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.runtime $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

node: node_modules/.installed

## Debian's Chromium for the dashboard browser tests (apt; root or sudo).
browser:
	@bash scripts/ensure-chromium.sh

install: $(VENV)/.dev node

demo: $(VENV)/.runtime node
	$(BIN)/python -m monitor demo $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: install browser
	bash scripts/pytest.sh $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	bash bench/run.sh

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .demo
