# The commands the README names. Everything installs itself into .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
PYTEST_ARGS ?= -n 2

.PHONY: run test lint format bench bench-full bench-scale soak clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

## make run: migrate the SQLite database under instance/ and start the web server + scheduler
run: $(VENV)/.runtime
	$(FLASK) db upgrade
	@bash scripts/run_dev.sh

## make test: install the test tools and run the whole suite (SQLite unless TEST_DATABASE_URL)
test: $(VENV)/.dev
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## make bench: the quick benchmark profile (SQLite, and PostgreSQL when reachable)
bench: $(VENV)/.dev
	$(PY) -m bench.run --profile quick

## make bench-full: 100,000 clients; by hand only
bench-full: $(VENV)/.dev
	$(PY) -m bench.run --profile full

## make bench-scale: 100,000 clients with one week of history, PostgreSQL only; by hand only
bench-scale: $(VENV)/.dev
	$(PY) -m bench.run --profile scale

## make soak: the long reliability runs (kills, database restart, load)
# One at a time (-n 0): the load run's figures are only worth something on a quiet machine.
# -s prints each run's figures (database restart, load: rate held, p50/p99 per kind).
SOAK_ARGS ?= -n 0 -s
soak: $(VENV)/.dev
	$(PY) -m pytest -m slow tests/soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
