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

# Every bench script at a small size, so that a broken one fails the build (~30 s on 2 cores); the
# full sizes are each script's defaults (see its docstring; bench/gpu_throughput.py wants a CUDA GPU).
# vllm_agreement needs a GPU and vLLM: here its --help only checks that it still imports and parses.
BENCH_SMALL = \
	"bench/runner_overhead.py --samples 32 --rounds 1" \
	"bench/vqa_scoring.py --questions 20000" \
	"bench/memory.py --questions 20000" \
	"bench/gpu_throughput.py --tiny" \
	"bench/vllm_agreement.py --help"

bench: install
	@failed=""; for cmd in $(BENCH_SMALL); do \
		echo "== $(PYTHON) $$cmd"; OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PYTHON) $$cmd || failed="$$failed\n  $$cmd"; \
	done; \
	if [ -n "$$failed" ]; then printf "make bench: failed:$$failed\n"; exit 1; fi
