"""The one small thread pool that the array kernels (convolution, pooling, the elementwise
passes of activations and batch norm) share.

NumPy releases the GIL inside its copies, ufunc loops and BLAS calls, so a few Python threads
working on separate slices of the batch keep every core busy, also during the memory-bound
copies that BLAS's own threads do not cover. Work submitted from inside the pool runs in the
calling thread (no nested waiting, hence no deadlock). `one_blas_thread` keeps the products of
the pool's threads off BLAS's own threads.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

T = TypeVar("T")
R = TypeVar("R")

# More threads than this only contend for memory bandwidth with BLAS's own threads.
THREADS = max(1, min(4, getattr(os, "process_cpu_count", os.cpu_count)() or 1))
MIN_PARALLEL_WORK = 1 << 20  # elements touched; below this, threads cost more than they save
# Bytes of the leading array per block of `by_blocks`: its passes stay in the (1 MiB) L2 cache.
BLOCK_BYTES = 1 << 20
# Multiply-adds below which a product runs on one BLAS thread (`small_product`).
SMALL_PRODUCT = 1 << 24

_inside = threading.local()


@functools.cache
def _executor() -> ThreadPoolExecutor:
    def mark():
        _inside.pool = True

    return ThreadPoolExecutor(THREADS - 1, thread_name_prefix="striate", initializer=mark)


if hasattr(os, "register_at_fork"):
    # A forked child (a data-loading worker) has none of the parent's threads: start afresh.
    os.register_at_fork(after_in_child=_executor.cache_clear)


def in_pool() -> bool:
    """Whether the calling thread is one of the pool's (its work is a share already)."""
    return getattr(_inside, "pool", False)


def run_all(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """[fn(item) for item in items], the items spread over the pool's threads and the caller's.

    fn must write only memory that belongs to its own item.
    """
    if len(items) <= 1 or THREADS == 1 or in_pool():
        return [fn(item) for item in items]
    # Each item runs in a copy of the caller's context, so that context-local settings (NumPy's
    # np.errstate among them) hold in the pool's threads as in the caller.
    futures = [_executor().submit(contextvars.copy_context().run, fn, item) for item in items[1:]]
    try:
        first = fn(items[0])  # the calling thread works too instead of waiting idle
        return [first, *(f.result() for f in futures)]
    except BaseException:
        # An error, or Ctrl-C, in this thread: the pool's items still run (they may be inside
        # BLAS under `one_blas_thread`, whose exit must not change BLAS's threads under them,
        # and the interpreter waits for the pool at exit). Let them end before leaving.
        for f in futures:
            f.cancel()
        concurrent.futures.wait(futures)
        raise


def blocks(rows: slice, sample_bytes: int, budget: int, least: int = 1) -> list[slice]:
    """rows cut into consecutive blocks of samples of about `budget` bytes (at least `least`
    samples each), for passes that should stay in cache from one to the next."""
    step = max(least, budget // max(sample_bytes, 1))
    return [slice(i, min(i + step, rows.stop)) for i in range(rows.start, rows.stop, step)]


def batch_slices(n: int, parts: int) -> list[slice]:
    """[0, n) cut into `parts` (at most n) slices of nearly equal length."""
    parts = max(1, min(n, parts))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def over_batch(fn: Callable[[slice], R], n: int, work: int) -> list[R]:
    """fn(rows) for slices of the batch that cover [0, n), one per thread when the work
    (elements touched) repays the threads; the results in batch order."""
    parts = THREADS if work >= MIN_PARALLEL_WORK else 1
    return run_all(fn, batch_slices(n, parts))


def by_blocks(fn: Callable[[slice], object], a: np.ndarray) -> None:
    """fn(rows) over blocks of `BLOCK_BYTES` of a's leading axis, the blocks shared out over the
    threads when a is large: for elementwise passes, which are memory-bound (one thread left
    the other core idle: on (50176, 256) float32 two measured 1.6x faster), and for several
    passes over a block, the later ones reading it from cache. fn(Ellipsis) for a 0-d a."""
    if a.ndim == 0:
        fn(Ellipsis)
        return

    def run(rows):
        for block in blocks(rows, a[:1].nbytes, BLOCK_BYTES):
            fn(block)

    over_batch(run, a.shape[0], a.size)


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController().select(user_api="blas")


def small_product(macs: int) -> contextlib.AbstractContextManager:
    """A context for a product of `macs` multiply-adds: BLAS on one thread below SMALL_PRODUCT,
    as it is above.

    After a call on several threads, OpenBLAS's workers spin for ~0.1 s (measured: a whole
    core) waiting for the next call, and take that core from the pool's threads and the
    compiled kernels that run next: a LeNet-5 training step, whose dense layers and bias sums
    were small products on two BLAS threads, took 8.4-9.8 ms against 5.5-6.7 with every
    product on one thread. A product this small gains less from a second thread than that."""
    return one_blas_thread() if macs < SMALL_PRODUCT else contextlib.nullcontext()


def one_blas_thread() -> contextlib.AbstractContextManager:
    """A context in which BLAS runs on one thread, for work split over the pool whose threads
    each multiply their own share (`conv._over_batch`): BLAS's own threads would only contend
    with them, several times slower while other processes load the cores. Costs ~6 us. The
    limit is process-wide (the pool's threads run under it too): enter it from one thread at a
    time."""
    return _blas().limit(limits=1)
