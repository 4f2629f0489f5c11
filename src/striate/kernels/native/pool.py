"""Max, average, L_p and adaptive 2-D pooling, forward and backward: the wrappers of the compiled
kernels."""

from __future__ import annotations

import numpy as np

from .boundary import _DTYPES, _array, _native, _need, _output, _padding, _pair, _rows, _shape


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
    _native.max_pool_forward(dt, x, y, arg, geo, *_rows(geo[0], x.size + 2 * y.size))
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
    _native.max_pool_backward(dt, dy, argmax, dx, geo, *_rows(geo[0], dx.size + 2 * dy.size))
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
    _native.avg_pool_forward(dt, x, y, geo, include, *_rows(geo[0], y.size * geo[4] * geo[5]))
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
    _native.avg_pool_backward(dt, dy, dx, geo, include,
                              *_rows(geo[0], dy.size * geo[4] * geo[5]))
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
    _native.lp_pool_forward(dt, x, y, geo, p, *_rows(geo[0], y.size * geo[4] * geo[5]))
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
    _native.lp_pool_backward(dt, x, y, dy, dx, geo, p,
                             *_rows(geo[0], dy.size * geo[4] * geo[5] + x.size))
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
    _native.adaptive_avg_forward(dt, x, y, geo, *_rows(geo[0], x.size + y.size))
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
    _native.adaptive_avg_backward(dt, dy, dx, geo, *_rows(geo[0], dx.size + dy.size))
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
    _native.adaptive_max_forward(dt, x, arg, y, geo, *_rows(geo[0], x.size + 2 * y.size))
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
    _native.adaptive_max_backward(dt, dy, argmax, dx, geo, *_rows(geo[0], dx.size + 2 * dy.size))
    return dx
