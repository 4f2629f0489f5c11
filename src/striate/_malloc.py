"""Keep freed memory for the next training step instead of handing it back to the kernel.

A training step allocates and frees the same activations and gradients every time. glibc's
malloc hands blocks above its mmap threshold (128 KiB at first) back to the kernel when they
are freed, and trims free memory above its trim threshold off the heap, so every step faulted
its arrays in again page by page: about 1,700 page faults per LeNet-5 step (batch 128), ~3 us
each on the development machine, a fifth of the step. With blocks up to 32 MiB (the highest
mmap threshold glibc's own adaptive rule reaches) taken from the heap, and up to 64 MiB of free
heap kept, the same step takes one fault.

The setting is process-wide, like the allocator: it changes how every library in the process
gets its memory (PyTorch's convolutions run faster under it too), and the process keeps up to
64 MiB of freed memory. Importing striate makes it, so that a training script of one's own runs
as fast as the command line (without it a LeNet-5 step took twice as long); the environment
variable STRIATE_KEEP_FREED_MEMORY=0 turns that off. Where the user set glibc's
MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ variables, theirs stand; on other C libraries
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
    """Keep freed memory in the process for the next training step (glibc's malloc: blocks up
    to 32 MiB from the heap, up to 64 MiB of free heap kept), process-wide; True when set,
    False where the user's MALLOC_*_THRESHOLD_ variables stand or the C library is not glibc.
    Call it once, at the start of a training script."""
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
