"""Direct and depthwise 2-D convolution, forward and backward: the wrappers of the compiled
kernels."""

from __future__ import annotations

import numpy as np

from .boundary import (
    _DTYPES,
    _array,
    _native,
    _need,
    _output,
    _padding,
    _pair,
    _rows,
    _shape,
)


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
    kernel(dt, x, w, b, y, geo, bool(relu), *_rows(geo[0], work))
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
    rows = _rows(n, work)
    # Each part sums its share of the batch into its own copy of dw and db; added up here.
    dws = np.empty((rows[2], *w.shape), dtype=x.dtype) if need_dw else None
    dbs = np.empty((rows[2], k), dtype=x.dtype) if need_db else None
    kernel(dt, x, w, dy, y, dx, dws, dbs, geo, *rows)
    dw = None if dws is None else (dws[0] if rows[2] == 1 else dws.sum(axis=0))
    db = None if dbs is None else (dbs[0] if rows[2] == 1 else dbs.sum(axis=0))
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
