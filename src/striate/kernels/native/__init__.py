"""striate's compiled kernels: the Python boundary of the C extension `striate.kernels._native`.

Computes, for channels-last float32 and float64 arrays, what `striate.reference` defines:
direct 2-D convolution for few channels and depthwise convolution (forward with bias and ReLU
fused, backward), max, average, L_p and adaptive pooling (forward and backward), batch
normalisation (training and evaluation, forward and backward), and the per-channel pass
y = relu(x * scale + shift + residual) with its backward.
Where they win and by how much: docs/algorithms/direct-conv.md.

`available` says whether the extension was built and loaded (False where no C compiler was
found at install time, or when the environment sets STRIATE_NATIVE=0), `reason` why not.

Every function checks its arguments once (shapes, dtypes, C-contiguity, alignment, outputs
that overlap inputs) and raises TypeError or ValueError before any compiled code runs; the
extension checks buffer sizes again. Outputs are new arrays unless `out=` is given. The batch
(or the rows of the (M, C) matrix view) is split over striate's thread pool with BLAS held at
one thread meanwhile; the compiled code releases the GIL.

Layout: x (N, H, W, C); kernels (kH, kW, C_in, C_out); padding ((top, bottom), (left, right)),
an int, or (pH, pW); stride and dilation an int or (sH, sW).
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable

import numpy as np

from ... import _parallel

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "available",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm_backward",
    "batch_norm_eval",
    "batch_norm_train",
    "channel_map",
    "channel_map_backward",
    "conv2d",
    "conv2d_backward",
    "depthwise_conv2d",
    "depthwise_conv2d_backward",
    "isa",
    "lp_pool2d",
    "lp_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "reason",
    "set_isa",
]

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

# Elements touched below which one thread does the work: a wake-up of the pool's threads costs
# tens of microseconds, as much as a pass over ~10^5 float32 values.
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


def _run(fn: Callable[[slice], object], n: int, work: int) -> list:
    """fn(rows) over slices of [0, n), one per thread of striate's pool when the work
    (elements touched) repays the threads, BLAS held at one thread meanwhile."""
    parts = _parallel.batch_slices(n, _parallel.THREADS if work >= MIN_PARALLEL_WORK else 1)
    if len(parts) == 1:
        return [fn(parts[0])]
    with _parallel.one_blas_thread():
        return _parallel.run_all(fn, parts)


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


# ===== convolution =============================================================================
def _conv_geometry(op, x, w, stride, padding, dilation, depthwise=False):
    n, h, wd, c = x.shape
    kh, kw, cin, k = w.shape
    if depthwise:
        if cin != 1 or k != c:
            raise ValueError(f"{op}: a depthwise kernel for {c} channels must have shape "
                             f"(kH, kW, 1, {c}), got {w.shape}")
    elif cin != c:
        raise ValueError(f"{op}: x has {c} channels but the kernel expects {cin} "
                         f"(x {x.shape}, w {w.shape})")
    sh, sw = _pair(op, "stride", stride, 1)
    dh, dw = _pair(op, "dilation", dilation, 1)
    (ph0, ph1), (pw0, pw1) = _padding(op, padding)
    eh = h + ph0 + ph1 - dh * (kh - 1) - 1
    ew = wd + pw0 + pw1 - dw * (kw - 1) - 1
    if eh < 0 or ew < 0:
        raise ValueError(f"{op}: kernel {kh}x{kw} with dilation ({dh}, {dw}) does not fit the "
                         f"input {h}x{wd} padded by {((ph0, ph1), (pw0, pw1))}")
    ho, wo = eh // sh + 1, ew // sw + 1
    return (n, h, wd, c, kh, kw, k, ho, wo, sh, sw, dh, dw, ph0, ph1, pw0, pw1)


def _forward(op, depthwise, x, w, b, stride, padding, dilation, relu, out):
    _need()
    x = _array(op, "x", x, ndim=4)
    w = _array(op, "w", w, x.dtype, ndim=4)
    geo = _conv_geometry(op, x, w, stride, padding, dilation, depthwise)
    if b is not None:
        _shape(op, "b", _array(op, "b", b, x.dtype), (geo[6],))
    y = _output(op, "out", out, (geo[0], geo[7], geo[8], geo[6]), x.dtype, (x, w, b))
    dt = _DTYPES[x.dtype]
    kernel = _native.depthwise_forward if depthwise else _native.conv2d_forward
    work = y.size * geo[4] * geo[5] * (1 if depthwise else geo[3])
    _run(lambda rows: kernel(dt, x, w, b, y, geo, bool(relu), rows.start, rows.stop), geo[0],
         work)
    return y


def _backward(op, depthwise, dy, x, w, stride, padding, dilation, y, need_dx, need_dw,
              need_db, dx_out=None):
    _need()
    x = _array(op, "x", x, ndim=4)
    w = _array(op, "w", w, x.dtype, ndim=4)
    geo = _conv_geometry(op, x, w, stride, padding, dilation, depthwise)
    n, k = geo[0], geo[6]
    _shape(op, "dy", _array(op, "dy", dy, x.dtype), (n, geo[7], geo[8], k))
    if y is not None:
        _shape(op, "y", _array(op, "y", y, x.dtype), dy.shape)
    dx = _output(op, "dx_out", dx_out, x.shape, x.dtype, (x, w, dy, y)) if need_dx else None
    dt = _DTYPES[x.dtype]
    kernel = _native.depthwise_backward if depthwise else _native.conv2d_backward
    work = dy.size * geo[4] * geo[5] * (1 if depthwise else geo[3])
    parts = _parallel.batch_slices(n, _parallel.THREADS if work >= MIN_PARALLEL_WORK else 1)
    # Each thread sums its share of the batch into its own dw and db; added up at the end.
    dws = np.empty((len(parts), *w.shape), dtype=x.dtype) if need_dw else None
    dbs = np.empty((len(parts), k), dtype=x.dtype) if need_db else None

    def run(t):
        rows = parts[t]
        kernel(dt, x, w, dy, y, dx, None if dws is None else dws[t],
               None if dbs is None else dbs[t], geo, rows.start, rows.stop)

    if len(parts) == 1:
        run(0)
    else:
        with _parallel.one_blas_thread():
            _parallel.run_all(run, range(len(parts)))
    dw = None if dws is None else (dws[0] if len(parts) == 1 else dws.sum(axis=0))
    db = None if dbs is None else (dbs[0] if len(parts) == 1 else dbs.sum(axis=0))
    return dx, dw, db


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0,
           dilation=1, relu: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Direct 2-D cross-correlation, computing `striate.reference.conv.conv` (groups=1), with
    the bias added and, if relu, max(., 0) taken in the same pass.

    y[n, i, j, k] = b[k] + sum_{u,v,c} w[u, v, c, k] * xp[n, i*sH + u*dH, j*sW + v*dW, c]

    x: (N, H, W, C); w: (kH, kW, C, K); b: (K,) or None. Returns (N, H_out, W_out, K),
    H_out = floor((H + pH0 + pH1 - dH*(kH-1) - 1) / sH) + 1. For few channels (LeNet, stems).
    """
    return _forward("native.conv2d", False, x, w, b, stride, padding, dilation, relu, out)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0,
                    dilation=1, y: np.ndarray | None = None, need_dx: bool = True,
                    need_dw: bool = True, need_db: bool = True,
                    dx_out: np.ndarray | None = None):
    """Gradients of `conv2d`: `striate.reference.conv.conv_dx`, `conv_dw`, `conv_db` of
    g = dy, or of g = dy * (y > 0) when y (the output of `conv2d(..., relu=True)`) is given.

    dx[n, p, q, c] = sum_{i,j,u,v: i*sH + u*dH = p + pH0, j*sW + v*dW = q + pW0}
                     sum_k g[n, i, j, k] w[u, v, c, k]
    dw[u, v, c, k] = sum_{n,i,j} g[n, i, j, k] xp[n, i*sH + u*dH, j*sW + v*dW, c]
    db[k] = sum_{n,i,j} g[n, i, j, k]

    dy, y: (N, H_out, W_out, K); x: (N, H, W, C); w: (kH, kW, C, K).
    Returns (dx, dw, db), None for each one not asked for; dx written into dx_out when given.
    """
    return _backward("native.conv2d_backward", False, dy, x, w, stride, padding, dilation, y,
                     need_dx, need_dw, need_db, dx_out)


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1,
                     padding=0, dilation=1, relu: bool = False,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Depthwise 2-D cross-correlation (groups = C, one filter per channel), computing
    `striate.reference.conv.conv` with groups=C, bias and ReLU fused as `conv2d`.

    y[n, i, j, c] = b[c] + sum_{u,v} w[u, v, 0, c] * xp[n, i*sH + u*dH, j*sW + v*dW, c]

    x: (N, H, W, C); w: (kH, kW, 1, C); b: (C,) or None. Returns (N, H_out, W_out, C).
    """
    return _forward("native.depthwise_conv2d", True, x, w, b, stride, padding, dilation, relu,
                    out)


def depthwise_conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0,
                              dilation=1, y: np.ndarray | None = None, need_dx: bool = True,
                              need_dw: bool = True, need_db: bool = True,
                              dx_out: np.ndarray | None = None):
    """Gradients of `depthwise_conv2d` (of g = dy * (y > 0) when y is given, else dy):

    dx[n, p, q, c] = sum_{i,j,u,v: i*sH + u*dH = p + pH0, j*sW + v*dW = q + pW0}
                     g[n, i, j, c] w[u, v, 0, c]
    dw[u, v, 0, c] = sum_{n,i,j} g[n, i, j, c] xp[n, i*sH + u*dH, j*sW + v*dW, c]
    db[c] = sum_{n,i,j} g[n, i, j, c]

    Returns (dx, dw, db), None for each one not asked for; dx written into dx_out when given.
    """
    return _backward("native.depthwise_conv2d_backward", True, dy, x, w, stride, padding,
                     dilation, y, need_dx, need_dw, need_db, dx_out)


# ===== pooling =================================================================================
def _pool_geometry(op, x_shape, size, stride, padding):
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, H, W, C), got shape {tuple(x_shape)}")
    n, h, w, c = x_shape
    kh, kw = _pair(op, "size", size, 1)
    sh, sw = (kh, kw) if stride is None else _pair(op, "stride", stride, 1)
    (ph0, ph1), (pw0, pw1) = _padding(op, padding)
    ho, wo = (h + ph0 + ph1 - kh) // sh + 1, (w + pw0 + pw1 - kw) // sw + 1
    if (ho < 1 or wo < 1 or ph0 >= kh or pw0 >= kw or (ho - 1) * sh - ph0 >= h
            or (wo - 1) * sw - pw0 >= w):
        raise ValueError(f"{op}: size ({kh}, {kw}) with stride ({sh}, {sw}) and padding "
                         f"{((ph0, ph1), (pw0, pw1))} leaves a window without input for "
                         f"H, W = {h}, {w}; use less padding or a smaller window")
    return (n, h, w, c, kh, kw, ho, wo, sh, sw, ph0, pw0)


def max_pool2d(x: np.ndarray, size, stride=None, padding=0, out: np.ndarray | None = None,
               argmax_out: np.ndarray | None = None):
    """Max pooling, computing `striate.reference.pool.max_pool`: padding never wins.

    y[n, i, j, c] = max_{u<kH, v<kW} xp[n, i*sH + u, j*sW + v, c]   (xp: x padded with -inf)

    x: (N, H, W, C); stride defaults to size. Returns (y, argmax): y (N, H_out, W_out, C),
    H_out = floor((H + pH0 + pH1 - kH) / sH) + 1, and argmax (int32, like y) the window-order
    index u*kW + v of each window's first maximum (a NaN takes over and propagates).
    out, argmax_out: arrays to write y and argmax into, instead of new ones.
    """
    op = "native.max_pool2d"
    _need()
    x = _array(op, "x", x, ndim=4)
    geo = _pool_geometry(op, x.shape, size, stride, padding)
    shape = (geo[0], geo[6], geo[7], geo[3])
    y = _output(op, "out", out, shape, x.dtype, (x,))
    if argmax_out is None:
        arg = np.empty(shape, dtype=np.int32)
    else:
        if not isinstance(argmax_out, np.ndarray) or argmax_out.dtype != np.int32:
            raise TypeError(f"{op}: argmax_out must be an int32 ndarray")
        _shape(op, "argmax_out", argmax_out, shape)
        if (not argmax_out.flags.c_contiguous or not argmax_out.flags.aligned
                or not argmax_out.flags.writeable):
            raise ValueError(f"{op}: argmax_out must be C-contiguous, aligned and writable")
        if np.may_share_memory(argmax_out, x) or np.may_share_memory(argmax_out, y):
            raise ValueError(f"{op}: argmax_out overlaps x or out; pass a separate array")
        arg = argmax_out
    dt = _DTYPES[x.dtype]
    _run(lambda rows: _native.max_pool_forward(dt, x, y, arg, geo, rows.start, rows.stop),
         geo[0], x.size + 2 * y.size)
    return y, arg


def max_pool2d_backward(dy: np.ndarray, argmax: np.ndarray, x_shape, size, stride=None,
                        padding=0, out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of `max_pool2d` (`striate.reference.pool.max_pool_dx`): each window's dy goes
    to the element argmax names; overlapping windows add up. Returns dx of shape x_shape."""
    op = "native.max_pool2d_backward"
    _need()
    geo = _pool_geometry(op, tuple(x_shape), size, stride, padding)
    dy = _array(op, "dy", dy, ndim=4)
    _shape(op, "dy", dy, (geo[0], geo[6], geo[7], geo[3]))
    if not isinstance(argmax, np.ndarray) or argmax.dtype != np.int32:
        raise TypeError(f"{op}: argmax must be the int32 array of max_pool2d")
    _shape(op, "argmax", argmax, dy.shape)
    if not argmax.flags.c_contiguous or not argmax.flags.aligned:
        raise ValueError(f"{op}: argmax must be C-contiguous and aligned")
    dx = _output(op, "out", out, tuple(x_shape), dy.dtype, (dy, argmax))
    dt = _DTYPES[dy.dtype]
    _run(lambda rows: _native.max_pool_backward(dt, dy, argmax, dx, geo, rows.start, rows.stop),
         geo[0], dx.size + 2 * dy.size)
    return dx


def avg_pool2d(x: np.ndarray, size, stride=None, padding=0, count_include_pad: bool = False,
               out: np.ndarray | None = None) -> np.ndarray:
    """Average pooling, computing `striate.reference.pool.avg_pool`.

    y[n, i, j, c] = sum_{u<kH, v<kW} xp[n, i*sH + u, j*sW + v, c] / count   (xp: zero padded)

    count: the window's elements on the input, or kH*kW if count_include_pad.
    x: (N, H, W, C). Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1,
    written into out when given.
    """
    op = "native.avg_pool2d"
    _need()
    x = _array(op, "x", x, ndim=4)
    geo = _pool_geometry(op, x.shape, size, stride, padding)
    y = _output(op, "out", out, (geo[0], geo[6], geo[7], geo[3]), x.dtype, (x,))
    dt = _DTYPES[x.dtype]
    include = bool(count_include_pad)
    _run(lambda rows: _native.avg_pool_forward(dt, x, y, geo, include, rows.start, rows.stop),
         geo[0], y.size * geo[4] * geo[5])
    return y


def avg_pool2d_backward(dy: np.ndarray, x_shape, size, stride=None, padding=0,
                        count_include_pad: bool = False,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of `avg_pool2d` (`striate.reference.pool.avg_pool_dx`):
    dx[n, p, q, c] = sum over windows holding (p, q) of dy[n, i, j, c] / count; written into
    out when given."""
    op = "native.avg_pool2d_backward"
    _need()
    geo = _pool_geometry(op, tuple(x_shape), size, stride, padding)
    dy = _array(op, "dy", dy, ndim=4)
    _shape(op, "dy", dy, (geo[0], geo[6], geo[7], geo[3]))
    dx = _output(op, "out", out, tuple(x_shape), dy.dtype, (dy,))
    dt = _DTYPES[dy.dtype]
    include = bool(count_include_pad)
    _run(lambda rows: _native.avg_pool_backward(dt, dy, dx, geo, include, rows.start,
                                                rows.stop), geo[0], dy.size * geo[4] * geo[5])
    return dx


def lp_pool2d(x: np.ndarray, p: float, size, stride=None, padding=0) -> np.ndarray:
    """L_p-norm pooling, computing `striate.reference.pool.lp_pool` (p >= 1, finite):

    y[n, i, j, c] = (sum_{u<kH, v<kW} |xp[n, i*sH + u, j*sW + v, c]|^p)^(1/p)   (zero padded)

    x: (N, H, W, C). Returns (N, H_out, W_out, C).
    """
    op = "native.lp_pool2d"
    _need()
    x = _array(op, "x", x, ndim=4)
    p = _power(op, p)
    geo = _pool_geometry(op, x.shape, size, stride, padding)
    y = np.empty((geo[0], geo[6], geo[7], geo[3]), dtype=x.dtype)
    dt = _DTYPES[x.dtype]
    _run(lambda rows: _native.lp_pool_forward(dt, x, y, geo, p, rows.start, rows.stop), geo[0],
         y.size * geo[4] * geo[5])
    return y


def lp_pool2d_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray, p: float, size,
                       stride=None, padding=0) -> np.ndarray:
    """Gradient of `lp_pool2d` (`striate.reference.pool.lp_pool_dx`), y its output:

    dx[i] = |x[i]|^(p-1) sign(x[i]) * sum over windows o holding i of dy[o] / y[o]^(p-1)

    (0 from a window of zeros). Returns an array like x.
    """
    op = "native.lp_pool2d_backward"
    _need()
    x = _array(op, "x", x, ndim=4)
    p = _power(op, p)
    geo = _pool_geometry(op, x.shape, size, stride, padding)
    out_shape = (geo[0], geo[6], geo[7], geo[3])
    _shape(op, "dy", _array(op, "dy", dy, x.dtype), out_shape)
    _shape(op, "y", _array(op, "y", y, x.dtype), out_shape)
    dx = np.empty(x.shape, dtype=x.dtype)
    dt = _DTYPES[x.dtype]
    _run(lambda rows: _native.lp_pool_backward(dt, x, y, dy, dx, geo, p, rows.start, rows.stop),
         geo[0], dy.size * geo[4] * geo[5] + x.size)
    return dx


def _power(op: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) \
            or not 1 <= float(p) < float("inf"):
        raise ValueError(f"{op}: p must be a finite number >= 1, got {p!r}")
    return float(p)


def _adaptive_geometry(op, x_shape, output_size):
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, H, W, C), got shape {tuple(x_shape)}")
    n, h, w, c = x_shape
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(i if o is None else o for o, i in zip(output_size, (h, w),
                                                                    strict=True))
    ho, wo = _pair(op, "output_size", output_size, 1)
    if min(h, w) < 1 or max(h, w, ho, wo) >= 1 << 15:
        raise ValueError(f"{op}: sizes out of range (input {tuple(x_shape)}, "
                         f"output {(ho, wo)})")
    return (n, h, w, c, ho, wo)


def adaptive_avg_pool2d(x: np.ndarray, output_size) -> np.ndarray:
    """Adaptive average pooling, computing `striate.reference.pool.adaptive_avg_pool`:
    output (i, j) is the mean of x over rows [floor(i*H/H_out), ceil((i+1)*H/H_out)) and the
    columns alike (PyTorch's windows). x: (N, H, W, C); output_size: int or (H_out, W_out),
    None keeping that input size. Returns (N, H_out, W_out, C)."""
    op = "native.adaptive_avg_pool2d"
    _need()
    x = _array(op, "x", x, ndim=4)
    geo = _adaptive_geometry(op, x.shape, output_size)
    y = np.empty((geo[0], geo[4], geo[5], geo[3]), dtype=x.dtype)
    dt = _DTYPES[x.dtype]
    _run(lambda rows: _native.adaptive_avg_forward(dt, x, y, geo, rows.start, rows.stop),
         geo[0], x.size + y.size)
    return y


def adaptive_avg_pool2d_backward(dy: np.ndarray, x_shape) -> np.ndarray:
    """Gradient of `adaptive_avg_pool2d`: each window's dy / (its size) to each of its
    elements; overlapping windows add up. Returns dx of shape x_shape."""
    op = "native.adaptive_avg_pool2d_backward"
    _need()
    dy = _array(op, "dy", dy, ndim=4)
    geo = _adaptive_geometry(op, tuple(x_shape), dy.shape[1:3])
    _shape(op, "dy", dy, (geo[0], geo[4], geo[5], geo[3]))
    dx = np.empty(tuple(x_shape), dtype=dy.dtype)
    dt = _DTYPES[dy.dtype]
    _run(lambda rows: _native.adaptive_avg_backward(dt, dy, dx, geo, rows.start, rows.stop),
         geo[0], dx.size + dy.size)
    return dx


def adaptive_max_pool2d(x: np.ndarray, output_size):
    """Adaptive max pooling (`striate.reference.pool.adaptive_max_pool`), windows as
    `adaptive_avg_pool2d`. Returns (y, argmax): argmax (int32, like y) the flat spatial index
    h*W + w of each window's first maximum in row-major order (a NaN takes over)."""
    op = "native.adaptive_max_pool2d"
    _need()
    x = _array(op, "x", x, ndim=4)
    geo = _adaptive_geometry(op, x.shape, output_size)
    shape = (geo[0], geo[4], geo[5], geo[3])
    y, arg = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int32)
    dt = _DTYPES[x.dtype]
    _run(lambda rows: _native.adaptive_max_forward(dt, x, arg, y, geo, rows.start, rows.stop),
         geo[0], x.size + 2 * y.size)
    return y, arg


def adaptive_max_pool2d_backward(dy: np.ndarray, argmax: np.ndarray, x_shape) -> np.ndarray:
    """Gradient of `adaptive_max_pool2d`: each window's dy to the element argmax names;
    overlapping windows add up. Returns dx of shape x_shape."""
    op = "native.adaptive_max_pool2d_backward"
    _need()
    dy = _array(op, "dy", dy, ndim=4)
    geo = _adaptive_geometry(op, tuple(x_shape), dy.shape[1:3])
    _shape(op, "dy", dy, (geo[0], geo[4], geo[5], geo[3]))
    if not isinstance(argmax, np.ndarray) or argmax.dtype != np.int32:
        raise TypeError(f"{op}: argmax must be the int32 array of adaptive_max_pool2d")
    _shape(op, "argmax", argmax, dy.shape)
    if not argmax.flags.c_contiguous or not argmax.flags.aligned:
        raise ValueError(f"{op}: argmax must be C-contiguous and aligned")
    dx = np.empty(tuple(x_shape), dtype=dy.dtype)
    dt = _DTYPES[dy.dtype]
    _run(lambda rows: _native.adaptive_max_backward(dt, dy, argmax, dx, geo, rows.start,
                                                    rows.stop), geo[0], dx.size + 2 * dy.size)
    return dx


# ===== per-channel passes ======================================================================
def _vector(op: str, name: str, v, c: int, dtype) -> np.ndarray | None:
    """A per-channel vector (C,) as a contiguous array of dtype, or None."""
    if v is None:
        return None
    v = np.asarray(v)
    if v.shape != (c,):
        raise ValueError(f"{op}: {name} must have shape ({c},), got {v.shape}")
    return np.ascontiguousarray(v, dtype=dtype)


def _sums(dt: int, m: int, c: int, x=None, y=None, dy=None, center=None) -> np.ndarray:
    """(2, C) float64: the sums of `channel_sums` over all m rows, split over the threads."""
    def run(rows):
        s = np.empty((2, c), dtype=np.float64)
        _native.channel_sums(dt, x, y, dy, center, s, m, c, rows.start, rows.stop)
        return s

    return sum(_run(run, m, m * c))


def _map(dt, m, c, x, out, center=None, scale=None, shift=None, residual=None, relu=False):
    _run(lambda rows: _native.channel_map(dt, x, center, scale, shift, residual, bool(relu), out,
                                          m, c, rows.start, rows.stop), m, m * c)


def _grad(dt, m, c, dy, y=None, x=None, center=None, scale=None, offset=None, slope=None,
          dx=None, dres=None):
    _run(lambda rows: _native.channel_grad(dt, dy, y, x, center, scale, offset, slope, dx, dres,
                                           m, c, rows.start, rows.stop), m, m * c)


def _channels_last(op: str, x: np.ndarray) -> tuple[int, int]:
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"{op}: x must have a channel axis (..., C), got shape {x.shape}")
    return x.size // x.shape[-1], x.shape[-1]


def _residual(op, residual, x):
    if residual is not None:
        _shape(op, "residual", _array(op, "residual", residual, x.dtype), x.shape)
    return residual


def channel_map(x: np.ndarray, scale=None, shift=None, residual=None, relu: bool = False,
                out: np.ndarray | None = None) -> np.ndarray:
    """The per-channel pass that follows a convolution (its bias, an evaluation batch norm, a
    ResNet block's shortcut), in one pass:

    y[..., c] = max(0, x[..., c] * scale[c] + shift[c] + residual[..., c])   (max if relu)

    x, residual: (..., C); scale, shift: (C,) or None (1 and 0). out may be x (in place).
    Returns an array like x.
    """
    op = "native.channel_map"
    _need()
    x = _array(op, "x", x)
    m, c = _channels_last(op, x)
    scale, shift = _vector(op, "scale", scale, c, x.dtype), _vector(op, "shift", shift, c, x.dtype)
    residual = _residual(op, residual, x)
    y = _output(op, "out", out, x.shape, x.dtype, (x, residual), may_alias=(x,))
    _map(_DTYPES[x.dtype], m, c, x, y, None, scale, shift, residual, relu)
    return y


def channel_map_backward(dy: np.ndarray, x: np.ndarray | None = None, scale=None,
                         y: np.ndarray | None = None, need_dx: bool = True,
                         need_dscale: bool = False, need_dshift: bool = False,
                         need_dresidual: bool = False):
    """Gradients of `channel_map`, with g = dy * (y > 0) if y (its output with relu) is given,
    else dy:

    dx = g * scale;  dscale[c] = sum g[..., c] x[..., c];  dshift[c] = sum g[..., c];
    dresidual = g.

    x is needed for dscale only. Returns (dx, dscale, dshift, dresidual), None where not asked.
    """
    op = "native.channel_map_backward"
    _need()
    dy = _array(op, "dy", dy)
    m, c = _channels_last(op, dy)
    if y is not None:
        _shape(op, "y", _array(op, "y", y, dy.dtype), dy.shape)
    if need_dscale:
        if x is None:
            raise ValueError(f"{op}: the gradient of scale needs x")
        _shape(op, "x", _array(op, "x", x, dy.dtype), dy.shape)
    scale = _vector(op, "scale", scale, c, dy.dtype)
    dt = _DTYPES[dy.dtype]
    dx = np.empty(dy.shape, dy.dtype) if need_dx else None
    dres = np.empty(dy.shape, dy.dtype) if need_dresidual else None
    dscale = dshift = None
    if need_dscale or need_dshift:
        s = _sums(dt, m, c, x=x if need_dscale else None, y=y, dy=dy)
        dshift = s[0].astype(dy.dtype) if need_dshift else None
        dscale = s[1].astype(dy.dtype) if need_dscale else None
    if need_dx or need_dresidual:
        _grad(dt, m, c, dy, y, scale=scale, dx=dx, dres=dres)
    return dx, dscale, dshift, dres


def batch_norm_train(x: np.ndarray, gamma=None, beta=None, eps: float = 1e-5, residual=None,
                     relu: bool = False, out: np.ndarray | None = None):
    """Batch normalisation with the batch's statistics, computing
    `striate.reference.norm.batch_norm_train`, plus a residual and a ReLU in the same pass:

    mean[c] = (1/m) sum_i x[i, c];  var[c] = (1/m) sum_i (x[i, c] - mean[c])^2   (biased)
    y = max(0, (x - mean) * gamma / sqrt(var + eps) + beta + residual)        (max if relu)

    i runs over the m = N * positions values of channel c. x, residual: (..., C); gamma, beta:
    (C,) or None. Returns (y, mean, var, inv_std), the last three (C,) of x's dtype,
    inv_std = 1 / sqrt(var + eps). The running statistics are the caller's.
    """
    op = "native.batch_norm_train"
    _need()
    x = _array(op, "x", x)
    m, c = _channels_last(op, x)
    if m == 0:
        raise ValueError(f"{op}: x has no values per channel (shape {x.shape})")
    dt = _DTYPES[x.dtype]
    gamma, beta = _vector(op, "gamma", gamma, c, x.dtype), _vector(op, "beta", beta, c, x.dtype)
    residual = _residual(op, residual, x)
    y = _output(op, "out", out, x.shape, x.dtype, (x, residual), may_alias=(x,))
    # Sums of x - s, s = the first row: one pass, accumulated in double, and no cancellation
    # as long as s is a value of the channel (it is near the mean on the scale of the spread).
    shift = x.reshape(m, c)[0].copy()
    s = _sums(dt, m, c, x=x, center=shift)
    d = s[0] / m
    mean = (shift + d).astype(x.dtype)
    var = np.maximum(s[1] / m - d * d, 0).astype(x.dtype)
    inv_std = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype)
    scale = inv_std if gamma is None else gamma * inv_std
    _map(dt, m, c, x, y, mean, scale, beta, residual, relu)
    return y, mean, var, inv_std


def batch_norm_eval(x: np.ndarray, mean, var, gamma=None, beta=None, eps: float = 1e-5,
                    residual=None, relu: bool = False, out: np.ndarray | None = None):
    """Batch normalisation with fixed statistics (`striate.reference.norm.batch_norm_eval`),
    plus a residual and a ReLU: y = max(0, x * scale + shift + residual) with
    scale = gamma / sqrt(var + eps), shift = beta - mean * scale. Returns an array like x."""
    op = "native.batch_norm_eval"
    _need()
    x = _array(op, "x", x)
    m, c = _channels_last(op, x)
    mean, var = _vector(op, "mean", mean, c, x.dtype), _vector(op, "var", var, c, x.dtype)
    if mean is None or var is None:
        raise ValueError(f"{op}: mean and var are required")
    gamma, beta = _vector(op, "gamma", gamma, c, x.dtype), _vector(op, "beta", beta, c, x.dtype)
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    scale = inv_std if gamma is None else gamma * inv_std
    shift = -mean * scale if beta is None else beta - mean * scale
    residual = _residual(op, residual, x)
    y = _output(op, "out", out, x.shape, x.dtype, (x, residual), may_alias=(x,))
    _map(_DTYPES[x.dtype], m, c, x, y, None, scale, shift, residual, relu)
    return y


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, mean, inv_std, gamma=None,
                        y: np.ndarray | None = None, training: bool = True,
                        need_dx: bool = True, need_dgamma: bool = True, need_dbeta: bool = True,
                        need_dresidual: bool = False, dx_out: np.ndarray | None = None):
    """Gradients of `batch_norm_train` (training) or `batch_norm_eval`, with g = dy * (y > 0)
    if y (the output with relu) is given, else dy; computing
    `striate.reference.norm.batch_norm_train_grad` / `batch_norm_eval_grad`:

    dbeta[c] = sum_i g[i, c];  dgamma[c] = inv_std[c] * sum_i g[i, c] (x[i, c] - mean[c])
    training:   dx = gamma * inv_std * (g - dbeta/m - (x - mean) * inv_std * dgamma/m)
    evaluation: dx = gamma * inv_std * g;          dresidual = g

    dy, x, y: (..., C); mean, inv_std (from the forward), gamma: (C,).
    Returns (dx, dgamma, dbeta, dresidual), None for each one not asked for; dx written into
    dx_out when given (it may be dy itself: each element is read before it is written).
    """
    op = "native.batch_norm_backward"
    _need()
    x = _array(op, "x", x)
    m, c = _channels_last(op, x)
    _shape(op, "dy", _array(op, "dy", dy, x.dtype), x.shape)
    if y is not None:
        _shape(op, "y", _array(op, "y", y, x.dtype), x.shape)
    mean = _vector(op, "mean", mean, c, x.dtype)
    inv_std = _vector(op, "inv_std", inv_std, c, x.dtype)
    if mean is None or inv_std is None:
        raise ValueError(f"{op}: mean and inv_std are required")
    gamma = _vector(op, "gamma", gamma, c, x.dtype)
    dt = _DTYPES[x.dtype]
    scale = inv_std if gamma is None else gamma * inv_std
    through_stats = training and need_dx
    dgamma = dbeta = None
    sum_g = sum_gxc = None
    if need_dgamma or need_dbeta or through_stats:
        s = _sums(dt, m, c, x=x if need_dgamma or through_stats else None, y=y, dy=dy,
                  center=mean)
        sum_g, sum_gxc = s[0], s[1]
        dbeta = sum_g.astype(x.dtype) if need_dbeta else None
        dgamma = (sum_gxc * inv_std).astype(x.dtype) if need_dgamma else None
    dx = _output(op, "dx_out", dx_out, x.shape, x.dtype, (x, dy, y), may_alias=(dy,)) \
        if need_dx else None
    dres = np.empty(x.shape, x.dtype) if need_dresidual else None
    if need_dx or need_dresidual:
        if through_stats:
            offset = (sum_g / m).astype(x.dtype)
            slope = (inv_std.astype(np.float64) ** 2 * sum_gxc / m).astype(x.dtype)
            _grad(dt, m, c, dy, y, x, mean, scale, offset, slope, dx, dres)
        else:
            _grad(dt, m, c, dy, y, scale=scale, dx=dx, dres=dres)
    return dx, dgamma, dbeta, dres
