"""On a CPU-generating model the hf backend keeps freed heap memory in the process (glibc's trim threshold
raised), so repeated allocations of a decoding loop reuse pages instead of faulting fresh zeroed ones in.
Checked by counting page faults of a workload shaped like one decoding step's allocations, each in a fresh
process."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.demo.tiny_model import build_tiny_llava

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

WORKLOAD = """
import resource, sys
import numpy as np
{setup}
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(1 << 18)  # a 2 MiB block, mapped then freed: glibc's own thresholds rise as they would
before = faults()
for _ in range(50):  # a step's tensors: 32 MiB in 1 MiB blocks from the heap, all freed at its end
    blocks = [np.ones(1 << 17) for _ in range(32)]
    del blocks
print(faults() - before)
"""


def faults(setup: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD.format(setup=setup)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("malloc") / "tiny", seed=0)


def test_freed_memory_is_reused_not_faulted_in_again(checkpoint: Path) -> None:
    default = faults("")
    # each step's 32 MiB is handed back to the OS and faulted in again: 8192 pages a step
    if default < 50 * 4000:
        pytest.skip(f"{default} page faults: glibc is not the allocator (jemalloc or tcmalloc preloaded?)")
    kept = faults("from evalkit.backends.malloc import keep_freed_memory\nassert keep_freed_memory()")
    assert kept < default / 20
    on_cpu = faults(
        f"from evalkit.backends.hf import HFBackend\nHFBackend({str(checkpoint)!r}, device='cpu')"
    )
    assert on_cpu < default / 20
