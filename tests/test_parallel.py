import threading
import warnings

import numpy as np
import pytest

from striate import _parallel


def test_run_all_keeps_order_and_uses_the_pool(monkeypatch):
    monkeypatch.setattr(_parallel, "THREADS", 2)
    names = []

    def work(i):
        names.append(threading.current_thread().name)
        return i * i

    assert _parallel.run_all(work, list(range(5))) == [0, 1, 4, 9, 16]
    assert any(name.startswith("striate") for name in names)


def test_nested_work_runs_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(_parallel, "THREADS", 2)

    def outer(i):
        return sum(_parallel.run_all(lambda j: i * j, [1, 2, 3]))

    assert _parallel.run_all(outer, [1, 2, 3, 4]) == [6, 12, 18, 24]


def test_over_batch_covers_the_batch():
    assert _parallel.batch_slices(5, 3) == [slice(0, 1), slice(1, 3), slice(3, 5)]
    assert _parallel.batch_slices(2, 4) == [slice(0, 1), slice(1, 2)]
    seen = _parallel.over_batch(lambda rows: (rows.start, rows.stop), 10, 1 << 30)
    assert seen[0][0] == 0 and seen[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert _parallel.over_batch(lambda rows: rows, 10, 1) == [slice(0, 10)]


def blas_threads():
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_one_blas_thread_limits_blas_inside_and_restores_it_after():
    before = blas_threads()
    with _parallel.one_blas_thread():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before


def test_small_products_run_on_one_blas_thread_and_large_ones_on_all():
    before = blas_threads()
    with _parallel.small_product(_parallel.SMALL_PRODUCT - 1):
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
    with _parallel.small_product(_parallel.SMALL_PRODUCT):
        assert blas_threads() == before


def test_pool_threads_keep_the_callers_numpy_error_state(monkeypatch):
    monkeypatch.setattr(_parallel, "THREADS", 2)

    def overflow(i):  # overflows in the pool's thread only (item 0 runs in the caller)
        return np.float32(3e38) * np.float32(10 * i)

    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        _parallel.run_all(overflow, [0, 1])
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf(_parallel.run_all(overflow, [0, 1])[1])


def test_blocks_cover_the_rows_in_order():
    assert _parallel.blocks(slice(3, 10), 100, 250) == [slice(3, 5), slice(5, 7), slice(7, 9),
                                                       slice(9, 10)]
    assert _parallel.blocks(slice(0, 5), 100, 50, least=2) == [slice(0, 2), slice(2, 4),
                                                              slice(4, 5)]


@pytest.mark.skipif(_parallel.THREADS < 2, reason="needs the pool: one core here")
def test_an_error_in_the_callers_share_waits_for_the_pools_items():
    """Ctrl-C (or an error) in the calling thread's share leaves run_all only after the pool's
    items have ended: they may be inside BLAS under one_blas_thread, and the interpreter waits
    for the pool at exit."""
    import time

    ended = []

    def work(item):
        if item == 0:
            time.sleep(0.05)  # the pool's item has started
            raise KeyboardInterrupt
        time.sleep(0.3)
        ended.append(item)

    with pytest.raises(KeyboardInterrupt, match=r"^$"):
        _parallel.run_all(work, [0, 1])
    assert ended == [1]
