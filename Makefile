# Two commands: `make run` (the platform on embedded defaults) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# pytest-xdist workers for `make test` (0: one process); the e2e tests share one of them (tests/conftest.py).
PYTEST_WORKERS ?= 2
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: install run test services migrate bench clean

install: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(PY) -m scripts.run_local

services:
	bash scripts/ensure_services.sh

migrate: install
	$(VENV)/bin/alembic upgrade head

test: install services
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache
