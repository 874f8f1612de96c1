# The project's commands. Everything installs into .venv from the pins in requirements*.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8501
DEMO_DB ?= sqlite:///var/app.db

.PHONY: demo test test-unit bench venv migrate demo-data admin clean data help

help:
	@echo "make demo   - install, migrate, load demo data, start job runner + dashboard"
	@echo "make test   - install and run the whole test suite"
	@echo "make test-unit - the pure-rule unit tests only (seconds)"
	@echo "make bench  - run every benchmark in bench/ (figures in bench/results/)"
	@echo "make data   - download GeoNames DE.zip once (online) and load the PLZ table"

$(STAMP): requirements.txt requirements-test.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	@touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(DEMO_DB)} $(PY) -m alembic upgrade head
	DATABASE_URL=$${DATABASE_URL:-$(DEMO_DB)} $(PY) -m core.geo.plz seed

demo-data: migrate
	DATABASE_URL=$${DATABASE_URL:-$(DEMO_DB)} $(PY) -m demo.data --scale demo

demo: demo-data
	@DATABASE_URL=$${DATABASE_URL:-$(DEMO_DB)} HOST=$(HOST) PORT=$(PORT) PY=$(PY) bash scripts/run_demo.sh

data: migrate
	DATABASE_URL=$${DATABASE_URL:-$(DEMO_DB)} $(PY) -m core.geo.plz data

admin: migrate
	DATABASE_URL=$${DATABASE_URL:-$(DEMO_DB)} $(PY) -m core.cli create-admin

test: $(STAMP)
	@bash scripts/run_tests.sh $(PY)

test-unit: $(STAMP)
	@bash scripts/run_tests.sh $(PY) tests/unit -q

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) var bench/results .pytest_cache
