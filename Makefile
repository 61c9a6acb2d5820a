# Everything a fresh machine needs, from the project's own files: a local venv with diffpg and its test extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared

.PHONY: demo test test-fast bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

## The main job: every estimator on pendulum, a table, and a PNG of gradient variance against horizon.
demo: $(VENV)/.installed
	$(VENV)/bin/diffpg compare --env pendulum --out out/compare

## The whole suite (slow statistical and training tests included) and the shared contract tests.
test: $(VENV)/.installed
	$(PY) -m pytest -q tests $(wildcard $(SHARED)/contract)

## The same without the tests marked slow.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow" tests $(wildcard $(SHARED)/contract)

bench: $(VENV)/.installed
	$(PY) benchmarks/gradient_cost.py

clean:
	rm -rf $(VENV) out runs .pytest_cache
