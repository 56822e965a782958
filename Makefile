# Two commands on a fresh machine: `make quickstart` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision are pinned here (not in pyproject) so users may bring their own build.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.dogclf-installed
# Test processes (pytest-xdist): "auto" is one per CPU; each file runs whole on one worker (its fixtures once).
TEST_WORKERS ?= auto

.PHONY: venv quickstart test lint bench docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

quickstart: venv
	$(VENV)/bin/dogclf quickstart --workdir quickstart

test: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: venv
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/ruff format --check src tests examples benchmarks

bench: venv
	$(PY) benchmarks/bench_train.py

docs: venv
	$(PY) -m dogclf.cli.docgen

clean:
	rm -rf $(VENV) quickstart .pytest_cache
