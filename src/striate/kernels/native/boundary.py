"""The boundary of the compiled kernels: loading the extension `striate.kernels._native`, and
the checks every wrapper makes before any compiled code runs (dtypes, shapes, contiguity,
alignment, outputs that overlap inputs), and into how many parts a call cuts its work."""

from __future__ import annotations

import importlib
import os
import warnings

import numpy as np

from ... import _parallel

_native = None
reason = ""
if os.environ.get("STRIATE_NATIVE", "1") == "0":
    reason = "the compiled kernels are switched off (STRIATE_NATIVE=0)"
else:
    try:
        _native = importlib.import_module("striate.kernels._native")
    except ImportError as error:
        reason = (f"the compiled kernels were not built (no C compiler at install time?): "
                  f"{error}")
available: bool = _native is not None
if not available and os.environ.get("STRIATE_NATIVE", "1") != "0":
    # Said once per process: the NumPy kernels compute the same, slower on few channels.
    warnings.warn(f"striate: {reason}; running on the NumPy kernels, which are slower on "
                  f"layers with few channels (reinstall with a C compiler to build them)",
                  RuntimeWarning, stacklevel=2)

# Elements touched below which one thread does the work: handing a part to a sleeping thread
# costs tens of microseconds, as much as a pass over ~10^5 float32 values.
MIN_PARALLEL_WORK = 1 << 17

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}

Pads = tuple[tuple[int, int], tuple[int, int]]


# ===== checks ==================================================================================
def _need() -> None:
    if _native is None:
        raise RuntimeError(f"striate.kernels.native is not available: {reason}")


def _array(op: str, name: str, a, dtype=None, ndim: int | None = None) -> np.ndarray:
    """a, checked: an aligned, C-contiguous float32/float64 ndarray (of `dtype` if given)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{op}: {name} must be an ndarray, got {type(a).__name__}")
    if a.dtype not in _DTYPES:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{op}: {name} has dtype {a.dtype} but x has {dtype}; use one dtype")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {a.shape}")
    if not a.flags.c_contiguous or not a.flags.aligned:
        raise ValueError(f"{op}: {name} must be C-contiguous and aligned (shape {a.shape}); "
                         f"pass np.ascontiguousarray({name})")
    return a


def _shape(op: str, name: str, a: np.ndarray, shape: tuple) -> None:
    if a.shape != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)}, got {a.shape}")


def _output(op: str, name: str, out, shape, dtype, inputs=(), may_alias=()) -> np.ndarray:
    """A new array, or `out` checked: shape, dtype, writable, sharing no memory with `inputs`
    (except the arrays in `may_alias`, which it may be exactly)."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    _array(op, name, out, dtype)
    _shape(op, name, out, shape)
    if not out.flags.writeable:
        raise ValueError(f"{op}: {name} must be writable")
    for a in inputs:
        if a is None or any(a is b for b in may_alias):
            continue
        if np.may_share_memory(out, a):
            raise ValueError(f"{op}: {name} overlaps an input; pass a separate array")
    return out


def _pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in pair)
            or min(pair) < minimum):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or a pair of them, "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding(op: str, padding) -> Pads:
    """An int, (pH, pW) or ((top, bottom), (left, right)), all >= 0, as the last form."""
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list)) for p in padding):
        return _pair(op, "padding", padding[0], 0), _pair(op, "padding", padding[1], 0)
    ph, pw = _pair(op, "padding", padding, 0)
    return (ph, ph), (pw, pw)


def _parts(n: int, work: int) -> int:
    """Into how many parts a kernel cuts its n rows, each run at once on a thread of the
    extension's own (threads.c): one per core striate uses (`_parallel.THREADS`) when the work
    (elements touched) repays the threads, else 1; 1 inside a thread of striate's pool, whose
    other threads already have their own shares."""
    if work < MIN_PARALLEL_WORK or _parallel.in_pool():
        return 1
    return max(1, min(n, _parallel.THREADS))


def _rows(n: int, work: int) -> tuple[int, int, int]:
    """The last three arguments of a kernel call over all n rows: (0, n, parts)."""
    return 0, n, _parts(n, work)


def isa() -> str:
    """The instruction set the kernels run with: 'avx2' (AVX2 and FMA) or 'baseline' (x86-64's
    SSE2, or the plain C of other machines); the best the CPU has, chosen at import.
    NOTE: an AVX-512 variant (16 float lanes) measured no faster on AMD EPYC (Zen 4 runs
    512-bit operations as two 256-bit halves), so AVX-512 CPUs run the AVX2 code."""
    _need()
    return _native.isa()


def set_isa(name: str) -> None:
    """Run the kernels with instruction set `name` ('baseline', or 'avx2' if the CPU has it),
    for tests of every path; process-wide."""
    _need()
    _native.set_isa(name)
