# Set-up and the two everyday commands. `make demo` and `make test` install what they need first.
# torch: an existing installation (e.g. a CUDA build) is kept; otherwise TORCH is installed.
PYTHON ?= python3
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test lint bench

install:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q "$(TORCH)"
	$(PYTHON) -m pip install -q -e ".[dev]"

demo: install
	$(PYTHON) -m evalkit.cli demo --output results-demo

test: install
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

lint:
	ruff check . && ruff format --check .

bench: install
	$(PYTHON) bench/runner_overhead.py
