# Two commands on a fresh machine: `make quickstart` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision are pinned here (not in pyproject) so users may bring their own build.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.dogclf-installed
# Test processes (pytest-xdist): "auto" is one per CPU; each file runs whole on one worker (its fixtures once).
TEST_WORKERS ?= auto

SDK3_VENV ?= .venv-sdk3
SDK3_STAMP := $(SDK3_VENV)/.dogclf-installed

.PHONY: venv quickstart test test-sdk3 lint bench docs clean

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
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

# SageMaker SDK 3.x beside 2.x: a second venv with the pinned 3.x set (no resolver run); requests compared.
# The submitting side imports no torch, so this venv leaves it out (dogclf without its deps, then theirs).
$(SDK3_STAMP): pyproject.toml .ci/sdk3-constraints.txt
	$(PYTHON) -m venv $(SDK3_VENV)
	$(SDK3_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SDK3_VENV)/bin/python -m pip install --quiet -c .ci/sdk3-constraints.txt \
		sagemaker boto3 pydantic pyyaml numpy pillow tqdm psutil
	$(SDK3_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $(SDK3_STAMP)

test-sdk3: venv $(SDK3_STAMP)
	DOGCLF_SDK3_PYTHON=$(abspath $(SDK3_VENV))/bin/python $(PY) -m pytest -q tests/sagemaker/test_sm_sdk_lines.py

lint: venv
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/ruff format --check src tests examples benchmarks

bench: venv
	$(PY) benchmarks/bench_train.py

docs: venv
	$(PY) -m dogclf.cli.docgen

clean:
	rm -rf $(VENV) quickstart .pytest_cache
