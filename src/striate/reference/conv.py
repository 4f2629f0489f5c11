"""Convolution as the lectures define it: a sum over the kernel's taps, in 1, 2 or 3 dimensions.

Data are channels-last, x (N, *in, C_in); kernels (*k, C_in/G, C_out), G = groups. Geometry is
already resolved: stride and dilation one int per spatial axis, padding one (start, end) pair per
spatial axis, applied as zeros. Every function walks the kernel tap by tap: at tap t the strided
slice xp[:, t*d :: s] (xp: x zero-padded) is what that weight sees at every output position, and
one einsum over the channels adds its share. One loop serves 1-D, 2-D and 3-D.

    O = floor((I + p_start + p_end - d*(k - 1) - 1) / s) + 1        (one per spatial axis)
"""

from __future__ import annotations

import itertools

import numpy as np


def pad(x: np.ndarray, padding, value: float = 0.0) -> np.ndarray:
    """x (N, *spatial, C) with padding[i] = (start, end) values added along spatial axis i."""
    return np.pad(x, ((0, 0), *padding, (0, 0)), constant_values=value)


def crop(xp: np.ndarray, padding) -> np.ndarray:
    """The inverse of `pad`: the part of xp that is not padding."""
    return xp[(slice(None), *(slice(p0, xp.shape[i + 1] - p1) for i, (p0, p1) in
                              enumerate(padding)))]


def padded_zeros(x_shape, padding, dtype) -> np.ndarray:
    """Zeros shaped like x_shape (N, *spatial, C) after `pad`: where gradients are summed."""
    spatial = (i + p0 + p1 for i, (p0, p1) in zip(x_shape[1:-1], padding, strict=True))
    return np.zeros((x_shape[0], *spatial, x_shape[-1]), dtype=dtype)


def output_size(size: int, k: int, s: int, p, d: int) -> int:
    """O = floor((I + p_start + p_end - d*(k - 1) - 1) / s) + 1."""
    return (size + p[0] + p[1] - d * (k - 1) - 1) // s + 1


def taps(kernel):
    """Every tap of a kernel of spatial shape `kernel`, in row-major (window) order."""
    return itertools.product(*map(range, kernel))


def tap_slice(t, stride, dilation, out) -> tuple:
    """Index of xp[:, t*d + o*s for o < O, :] over every spatial axis: what tap t sees."""
    return (slice(None), *(slice(u * d, u * d + s * (o - 1) + 1, s)
                           for u, s, d, o in zip(t, stride, dilation, out, strict=True)))


def _split(a: np.ndarray, groups: int) -> np.ndarray:
    """(..., C) -> (..., G, C/G): channel g*C/G + c of a group-split axis."""
    return a.reshape(*a.shape[:-1], groups, a.shape[-1] // groups)


def conv(x, w, b, stride, padding, dilation, groups):
    """Cross-correlation of x with a bank of filters, plus a bias.

    y[n, o, f] = b[f] + sum_{t, c} w[t, c, f] * xp[n, o*s + t*d, g*C_in/G + c]

    o runs over output positions and t over kernel taps (tuples, one entry per spatial axis),
    c over the C_in/G channels of the group g = f // (C_out/G) that filter f belongs to.
    x: (N, *in, C_in); w: (*k, C_in/G, C_out); b: (C_out,) or None. Returns (N, *out, C_out).

    The lecture's series [1, 0, 2, 3, 5, 1, 2, 3] with the kernel [-1, 2, 1], 'valid':

    >>> x, k = np.array([1., 0, 2, 3, 5, 1, 2, 3]), np.array([-1., 2, 1])
    >>> conv(x.reshape(1, 8, 1), k.reshape(3, 1, 1), None, (1,), ((0, 0),), (1,), 1).ravel()
    array([ 1.,  7.,  9.,  8., -1.,  6.])
    """
    kernel = w.shape[:-2]
    xp = pad(x, padding)
    out = [output_size(i, k, s, p, d) for i, k, s, p, d in
           zip(x.shape[1:-1], kernel, stride, padding, dilation, strict=True)]
    y = np.zeros((x.shape[0], *out, groups, w.shape[-1] // groups), dtype=x.dtype)
    for t in taps(kernel):
        seen = _split(xp[tap_slice(t, stride, dilation, out)], groups)  # (N, *out, G, C_in/G)
        y += np.einsum("...gc,cgf->...gf", seen, _split(w[t], groups))
    y = y.reshape(*y.shape[:-2], w.shape[-1])
    return y if b is None else y + b


def conv_dx(dy, w, x_shape, stride, padding, dilation, groups):
    """Gradient of `conv` with respect to x: each output sends dy back through the taps it read.

    dx[n, i, g*C_in/G + c] = sum_{o, t: o*s + t*d = i + p_start} sum_{f in g} dy[n, o, f] w[t, c, f]

    Tap by tap: dxp[:, t*d + o*s] += dy[:, o] @ w[t]^T, then the padding is cut off. With stride 1
    this is a 'full' cross-correlation of dy with the flipped kernel, w[t, c, f] read as
    w'[k-1-t, f, c]; positions never read (rows dropped by the stride) get 0.
    dy: (N, *out, C_out); w: (*k, C_in/G, C_out); x_shape: (N, *in, C_in). Returns x_shape.

    >>> conv_dx(np.ones((1, 3, 1)), np.array([1., 2, 3]).reshape(3, 1, 1), (1, 5, 1), (1,),
    ...         ((0, 0),), (1,), 1).ravel()
    array([1., 3., 6., 5., 3.])
    """
    kernel, out = w.shape[:-2], dy.shape[1:-1]
    dxp = _split(padded_zeros(x_shape, padding, dy.dtype), groups)  # (N, *padded, G, C_in/G)
    dyg = _split(dy, groups)  # (N, *out, G, C_out/G)
    for t in taps(kernel):
        dxp[tap_slice(t, stride, dilation, out)] += np.einsum("...gf,cgf->...gc", dyg,
                                                              _split(w[t], groups))
    return crop(dxp.reshape(*dxp.shape[:-2], x_shape[-1]), padding)


def conv_dw(dy, x, w_shape, stride, padding, dilation, groups):
    """Gradient of `conv` with respect to w: the correlation of the input with the output grad.

    dw[t, c, f] = sum_{n, o} dy[n, o, f] * xp[n, o*s + t*d, g*C_in/G + c]   (g the group of f)

    dy: (N, *out, C_out); x: (N, *in, C_in); w_shape: (*k, C_in/G, C_out). Returns w_shape.

    >>> conv_dw(np.ones((2, 6, 6, 8)), np.ones((2, 8, 8, 4)), (3, 3, 2, 8), (1, 1),
    ...         ((0, 0), (0, 0)), (1, 1), 2).shape
    (3, 3, 2, 8)
    """
    kernel, out = w_shape[:-2], dy.shape[1:-1]
    xp = pad(x, padding)
    dw = np.zeros(w_shape, dtype=dy.dtype)
    dyg = _split(dy, groups).reshape(-1, groups, w_shape[-1] // groups)  # (M, G, C_out/G)
    for t in taps(kernel):
        seen = _split(xp[tap_slice(t, stride, dilation, out)], groups)  # (N, *out, G, C_in/G)
        seen = seen.reshape(dyg.shape[0], groups, -1)  # (M, G, C_in/G), M = N * prod(out)
        dw[t] = np.einsum("mgc,mgf->cgf", seen, dyg).reshape(w_shape[-2:])
    return dw


def conv_db(dy):
    """Gradient of `conv` with respect to b: db[f] = sum_{n, o} dy[n, o, f]. Returns (C_out,)."""
    return dy.reshape(-1, dy.shape[-1]).sum(axis=0)


def flip_kernel(w):
    """w reversed along its spatial axes: w'[t, c, f] = w[k-1-t, c, f]. w: (*k, C_in/G, C_out).

    The textbook's (true) convolution is y[o] = sum_t w[t] x[o - t]: the kernel runs backwards
    over the input. Every library computes the cross-correlation y[o] = sum_t w[t] x[o + t]
    (`conv`) instead, the same operation with the kernel flipped. So conv(x, flip_kernel(w))
    is the true convolution (F's flip=True), and its weight gradient is
    flip_kernel(conv_dw(dy, x, ...)).

    >>> flip_kernel(np.array([-1., 2, 1]).reshape(3, 1, 1)).ravel()
    array([ 1.,  2., -1.])
    """
    return w[(slice(None, None, -1),) * (w.ndim - 2)]


def conv_transpose(x, w, b, stride, padding, dilation, groups, output_shape):
    """Transposed convolution: the adjoint of `conv` with the same kernel and geometry.

    y[n, o*s + t*d - p_start, g*C_in/G + c] += sum_{f in g} x[n, o, f] * w[t, c, f]   (+ b[c])

    It maps conv's output shape back to its input shape, so
    <conv(z, w), x> = <z, conv_transpose(x, w)>: it is conv_dx with x in the role of dy.
    Its gradients are conv_transpose_dx = conv of dy with w, conv_transpose_dw = conv_dw with
    (x, dy) in the roles of (dy, x), and conv_db of dy for b.
    x: (N, *out, C_out); w: (*k, C_in/G, C_out); b: (C_in,) or None; output_shape: the spatial
    sizes of the result (several input sizes map to the same conv output when s > 1).
    Returns (N, *output_shape, C_in).

    >>> conv_transpose(np.ones((1, 4, 4, 8)), np.ones((3, 3, 3, 8)), None, (2, 2),
    ...                ((0, 1), (0, 1)), (1, 1), 1, (8, 8)).shape
    (1, 8, 8, 3)
    """
    y = conv_dx(x, w, (x.shape[0], *output_shape, w.shape[-2] * groups), stride, padding,
                dilation, groups)
    return y if b is None else y + b


def conv_transpose_dx(dy, w, stride, padding, dilation, groups):
    """Gradient of `conv_transpose` with respect to x: conv(dy, w) (the adjoint's adjoint)."""
    return conv(dy, w, None, stride, padding, dilation, groups)


def conv_transpose_dw(dy, x, w_shape, stride, padding, dilation, groups):
    """Gradient of `conv_transpose` with respect to w: dw[t, c, f] = sum_{n,o} x[n, o, f]
    dyp[n, o*s + t*d, g*C_in/G + c], which is conv_dw(x, dy)."""
    return conv_dw(x, dy, w_shape, stride, padding, dilation, groups)


def locally_connected(x, w, b, stride, padding, dilation):
    """A convolution whose weights are not shared: one kernel per output position.

    y[n, o, f] = b[o, f] + sum_{t, c} w[o, t, c, f] * xp[n, o*s + t*d, c]

    x: (N, *in, C_in); w: (*out, *k, C_in, C_out); b: (*out, C_out) or None.
    Returns (N, *out, C_out).

    >>> locally_connected(np.ones((2, 6, 6, 3)), np.ones((4, 4, 3, 3, 3, 5)), None, (1, 1),
    ...                   ((0, 0), (0, 0)), (1, 1)).shape
    (2, 4, 4, 5)
    """
    n = x.ndim - 2
    out, kernel = w.shape[:n], w.shape[n:2 * n]
    xp = pad(x, padding)
    y = np.zeros((x.shape[0], *out, w.shape[-1]), dtype=x.dtype)
    for t in taps(kernel):
        w_t = w[(slice(None),) * n + t]  # (*out, C_in, C_out)
        y += np.einsum("n...c,...cf->n...f", xp[tap_slice(t, stride, dilation, out)], w_t)
    return y if b is None else y + b


def locally_connected_dx(dy, w, x_shape, stride, padding, dilation):
    """dxp[n, o*s + t*d, c] += sum_f dy[n, o, f] * w[o, t, c, f], the padding then cut off."""
    n = len(x_shape) - 2
    out, kernel = w.shape[:n], w.shape[n:2 * n]
    dxp = padded_zeros(x_shape, padding, dy.dtype)
    for t in taps(kernel):
        w_t = w[(slice(None),) * n + t]
        dxp[tap_slice(t, stride, dilation, out)] += np.einsum("n...f,...cf->n...c", dy, w_t)
    return crop(dxp, padding)


def locally_connected_dw(dy, x, w_shape, stride, padding, dilation):
    """dw[o, t, c, f] = sum_n dy[n, o, f] * xp[n, o*s + t*d, c]. Returns w_shape."""
    n = x.ndim - 2
    out, kernel = w_shape[:n], w_shape[n:2 * n]
    xp = pad(x, padding)
    dw = np.zeros(w_shape, dtype=dy.dtype)
    for t in taps(kernel):
        dw[(slice(None),) * n + t] = np.einsum("n...c,n...f->...cf",
                                               xp[tap_slice(t, stride, dilation, out)], dy)
    return dw


def locally_connected_db(dy):
    """db[o, f] = sum_n dy[n, o, f]. Returns (*out, C_out)."""
    return dy.sum(axis=0)
