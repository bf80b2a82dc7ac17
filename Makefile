# `make demo` and `make test` each build or refresh .venv from the repo's own pins, then run.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt
STAMP = $(VENV)/.installed-$(1)

.PHONY: demo test lint docs gpu-check clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# Reinstall when the package metadata or the pins change.
$(VENV)/.installed-%: pyproject.toml requirements/constraints.txt | $(VENV)/bin/python
	$(PIP) torch==2.13.0
	$(PIP) -e ".[$*]"
	touch $@

demo: $(call STAMP,demo)
	$(VENV)/bin/sgdsai demo

test: $(call STAMP,test)
	$(VENV)/bin/python -m pytest

lint: $(call STAMP,dev)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

docs: $(call STAMP,docs)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# On a CUDA machine, with its own Python and torch (no venv, no network): CUDA tests, sync-free steady
# steps, memory, step times; records under experiments/records/. Without CUDA it says so and exits 0.
gpu-check:
	$(PYTHON) .ci/gpu_check.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
