"""glibc's heap trimming, turned down for models that generate on the CPU.

Each decoding step allocates and frees tensors of megabytes. glibc hands the freed top of its heap back to
the OS once it exceeds `M_TRIM_THRESHOLD` (by default moved up to at most 64 MiB as allocations grow), so
the next step faults the same pages in again, zeroed: on the tiny LLaVA at batch 64 that was ~140k page
faults per 1024 samples and a quarter of the generation time. Raising the threshold keeps freed memory in
the process for reuse; peak memory is unchanged, only the return of memory after a peak is deferred. A
process-wide setting: applied once, only under glibc (elsewhere `mallopt` is absent or ignored).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
TRIM_THRESHOLD = 1 << 30  # freed heap top kept up to 1 GiB
# Setting either fixes both for good (glibc stops raising them as blocks are freed): blocks up to the largest
# threshold glibc's own adjustment reaches (32 MiB on 64-bit) come from the heap, larger ones are mapped.
MMAP_THRESHOLD = 32 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's trim threshold for this process; whether glibc accepted it (an allocator preloaded in
    its place, jemalloc or tcmalloc, ignores it: it manages freed memory its own way)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # no C library by that name, or one without mallopt (musl has a stub)
        return False
