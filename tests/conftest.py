"""Test-session settings: fully offline, a private HF cache, no user plugins or configs leaking in."""

from __future__ import annotations

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="evalkit-test-hf-")
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": _HF_HOME,
        "TOKENIZERS_PARALLELISM": "false",
    }
)
for var in ("EVALKIT_PLUGINS", "EVALKIT_CONFIGS", "EVALKIT_DATA", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
    os.environ.pop(var, None)
# One intra-op thread: the test suite runs model subprocesses beside each other and beside the servers,
# and OpenMP worker threads that wait on a busy core slow a tiny model's forward pass by orders of magnitude.
os.environ.setdefault("OMP_NUM_THREADS", "1")
