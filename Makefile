# Two commands matter: `make demo` and `make test` (see README.md).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(VENV)/bin/python:
	"$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

## A demo store on SQLite with an in-process worker: a simulated month of shoppers and three journeys.
demo: $(STAMP)
	$(PY) -m demo

## The whole suite on real PostgreSQL, Redis and a Celery worker (started here if they are down),
## with the Dashboard extension's vitest, build and Chromium tests (tests/dashboard/).
test: $(STAMP)
	scripts/ensure-services
	scripts/ensure-dashboard-tools
	$(PY) -m pytest

## Benchmarks for the docs/design.md targets; results go in docs/performance.md.
bench: $(STAMP)
	scripts/ensure-services
	$(PY) -m bench

clean:
	rm -rf $(VENV) demo-outbox *.egg-info .hypothesis .pytest_cache "$${TMPDIR:-/tmp}/saleor-flows-demo.sqlite3"*
