# `make demo` and `make test` each build or refresh .venv from the repo's own pins, then run.
# Two distributions, both installed editable: the optimizer `sgdsai` (the root, torch only) and the
# lab `sgdsai-lab` (lab/: experiments, benchmarks and the `sgdsai` command).
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt
STAMP = $(VENV)/.installed-$(1)

# What each stamp installs: the core's extras, then the lab's.
CORE_demo := .
LAB_demo := ./lab[demo]
CORE_test := .[test]
LAB_test := ./lab[test]
CORE_dev := .[dev]
LAB_dev := ./lab
CORE_docs := .[docs]
LAB_docs := ./lab

.PHONY: demo test lint docs wheel gpu-check clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# Reinstall when the package metadata or the pins change.
$(VENV)/.installed-%: pyproject.toml lab/pyproject.toml requirements/constraints.txt | $(VENV)/bin/python
	$(PIP) torch==2.13.0
	$(PIP) -e "$(CORE_$*)" -e "$(LAB_$*)"
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

# The core wheel holds the optimizer alone: nothing of the lab.
wheel: $(call STAMP,test)
	rm -rf build
	$(VENV)/bin/pip wheel --quiet --no-deps --wheel-dir build/wheel .
	$(VENV)/bin/python .ci/check_wheel.py build/wheel/sgdsai-*.whl

# On a CUDA machine, with its own Python and torch (no venv, no network): CUDA tests, sync-free steady
# steps, memory, step times; records under experiments/records/. Without CUDA it says so and exits 0.
gpu-check:
	$(PYTHON) .ci/gpu_check.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build
