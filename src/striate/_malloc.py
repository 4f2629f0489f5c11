"""Keep freed memory for the next training step instead of handing it back to the kernel.

A training step allocates and frees the same activations and gradients every time. glibc's
malloc hands blocks above its mmap threshold (128 KiB at first) back to the kernel when they
are freed, and trims free memory above its trim threshold off the heap, so every step faulted
its arrays in again page by page: about 1,700 page faults per LeNet-5 step (batch 128), ~3 us
each on the development machine, a fifth of the step. With blocks up to 32 MiB (the highest
mmap threshold glibc's own adaptive rule reaches) taken from the heap, and up to 64 MiB of free
heap kept, the same step takes one fault.

Importing striate makes the setting. It is process-wide, like the allocator: other libraries'
arrays (PyTorch's, in the benchmark) are reused the same way, and the process keeps up to
64 MiB of freed memory. Where the user set glibc's MALLOC_MMAP_THRESHOLD_ or
MALLOC_TRIM_THRESHOLD_ variables, theirs stand (either one opts out); on other C libraries
nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 32 << 20  # blocks up to this size come from the heap, reused when freed
TRIM_THRESHOLD = 64 << 20  # free memory the heap keeps
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc malloc.h)


def keep_freed_memory() -> bool:
    """Set glibc's thresholds as above; True when they were set."""
    if not sys.platform.startswith("linux") or any(
        name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    ):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc's own; others lack these thresholds
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
