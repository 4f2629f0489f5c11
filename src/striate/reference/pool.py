"""Pooling as the lectures define it: a max, a mean or a norm over each window.

Data are channels-last, x (N, *spatial, C); every channel is pooled on its own. Geometry is
already resolved: size and stride one int per spatial axis, padding one (start, end) pair per
spatial axis. Windows start at o*s - p_start and hold `size` elements; O is conv's output size
with dilation 1. Padding never wins a max (it acts as -inf) and adds nothing to a sum.
"""

from __future__ import annotations

import math

import numpy as np

from .conv import crop, output_size, pad, padded_zeros, taps


def _out(x_shape, size, stride, padding) -> list[int]:
    return [output_size(i, k, s, p, 1)
            for i, k, s, p in zip(x_shape[1:-1], size, stride, padding, strict=True)]


def _view(t, stride, out) -> tuple:
    """What element t of every window is, in the padded input: xp[:, t + o*s for o < O, :]."""
    return (slice(None), *(slice(u, u + s * (o - 1) + 1, s)
                           for u, s, o in zip(t, stride, out, strict=True)))


def _inside(x_shape, padding, dtype=bool) -> np.ndarray:
    """(1, *padded spatial, 1): 1 on the input, 0 on the padding."""
    return pad(np.ones((1, *x_shape[1:-1], 1), dtype=dtype), padding)


# ===== max pooling =============================================================================
def max_pool(x, size, stride, padding):
    """y[n, o, c] = max_{t < size} xp[n, o*s + t, c]   (xp: x padded with -inf).

    x: (N, *in, C). Returns (N, *out, C), O = floor((I + p_start + p_end - k) / s) + 1.

    The lecture's 2x2 max pool at stride 2:

    >>> x = np.array([[1., 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
    >>> max_pool(x.reshape(1, 4, 4, 1), (2, 2), (2, 2), ((0, 0), (0, 0)))[0, :, :, 0]
    array([[6., 8.],
           [3., 4.]])
    """
    xp = pad(x, padding, -np.inf)
    out = _out(x.shape, size, stride, padding)
    y = np.full((x.shape[0], *out, x.shape[-1]), -np.inf, dtype=x.dtype)
    for t in taps(size):
        y = np.maximum(y, xp[_view(t, stride, out)])
    return y


def max_pool_dx(dy, x, size, stride, padding):
    """Gradient of `max_pool`: each window's dy goes to its maximum.

    dx[n, i, c] = sum over windows o of dy[n, o, c] * [i is the winner of window o], the winner
    being the FIRST element of the window, in row-major (window) order, that equals the maximum
    and is not padding (PyTorch's rule on ties). Overlapping windows may share a winner: their
    dy add up. x: (N, *in, C); dy: (N, *out, C). Returns x's shape.

    >>> max_pool_dx(np.ones((1, 1, 1)), np.array([3., 5, 5]).reshape(1, 3, 1), (3,), (1,),
    ...             ((0, 0),)).ravel()
    array([0., 1., 0.])
    """
    xp, inside = pad(x, padding, -np.inf), _inside(x.shape, padding)
    out = dy.shape[1:-1]
    y = max_pool(x, size, stride, padding)
    dxp = padded_zeros(x.shape, padding, dy.dtype)
    taken = np.zeros(y.shape, dtype=bool)  # the window's winner is already found
    for t in taps(size):
        at = _view(t, stride, out)
        win = (xp[at] == y) & inside[at] & ~taken
        dxp[at] += dy * win
        taken |= win
    return crop(dxp, padding)


def global_max_pool(x):
    """y[n, c] = max over every position p of x[n, p, c]. x: (N, *spatial, C). Returns (N, C)."""
    return x.reshape(x.shape[0], -1, x.shape[-1]).max(axis=1)


def global_max_pool_dx(dy, x):
    """dx[n, p, c] = dy[n, c] at the first maximum p (row-major), 0 elsewhere."""
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    dx = np.zeros(flat.shape, dtype=dy.dtype)
    np.put_along_axis(dx, flat.argmax(axis=1)[:, None], dy[:, None], axis=1)
    return dx.reshape(x.shape)


def maxout(x, pieces):
    """y[..., c] = max_{j < pieces} x[..., c*pieces + j]. x: (..., C). Returns (..., C/pieces)."""
    return x.reshape(*x.shape[:-1], -1, pieces).max(axis=-1)


def maxout_dx(dy, x, pieces):
    """dx[..., c*pieces + j] = dy[..., c] for the first j that attains the maximum, else 0."""
    grouped = x.reshape(*x.shape[:-1], -1, pieces)
    dx = np.zeros(grouped.shape, dtype=dy.dtype)
    np.put_along_axis(dx, grouped.argmax(axis=-1)[..., None], dy[..., None], axis=-1)
    return dx.reshape(x.shape)


# ===== average, Gaussian and L_p pooling =======================================================
def avg_pool(x, size, stride, padding, count_include_pad):
    """y[n, o, c] = sum_{t < size} xp[n, o*s + t, c] / count[o]   (xp: x zero-padded).

    count[o] = prod(size) if count_include_pad, else the number of window elements that lie on
    the input (padding left out, TensorFlow's and Keras's rule). x: (N, *in, C).
    Returns (N, *out, C).

    >>> avg_pool(np.ones((1, 3, 1)), (2,), (2,), ((0, 1),), False).ravel()
    array([1., 1.])
    >>> avg_pool(np.ones((1, 3, 1)), (2,), (2,), ((0, 1),), True).ravel()
    array([1. , 0.5])
    """
    xp = pad(x, padding)
    out = _out(x.shape, size, stride, padding)
    total = sum(xp[_view(t, stride, out)] for t in taps(size))
    return total / _count(x.shape, size, stride, padding, count_include_pad, out, x.dtype)


def _count(x_shape, size, stride, padding, count_include_pad, out, dtype):
    if count_include_pad:
        return math.prod(size)
    inside = _inside(x_shape, padding, dtype)
    return sum(inside[_view(t, stride, out)] for t in taps(size))  # (1, *out, 1)


def avg_pool_dx(dy, x_shape, size, stride, padding, count_include_pad):
    """dx[n, i, c] = sum over windows o holding i of dy[n, o, c] / count[o]. Returns x_shape."""
    out = dy.shape[1:-1]
    share = dy / _count(x_shape, size, stride, padding, count_include_pad, out, dy.dtype)
    dxp = padded_zeros(x_shape, padding, dy.dtype)
    for t in taps(size):
        dxp[_view(t, stride, out)] += share
    return crop(dxp, padding)


def gaussian_weights(size, sigma) -> np.ndarray:
    """w[t] = prod over axes of exp(-(t_i - (k_i-1)/2)^2 / (2 sigma^2)) / (that axis's sum):
    weights falling with the distance from the window's centre, summing to 1. Shape `size`."""
    axes = [np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * sigma**2)) for k in size]
    w = np.ones(())
    for a in axes:
        w = np.multiply.outer(w, a / a.sum())
    return w


def gaussian_pool(x, size, stride, padding, sigma):
    """y[n, o, c] = sum_t w[t] xp[n, o*s + t, c] / sum_{t on the input} w[t]  (`gaussian_weights`;
    padding carries no weight). x: (N, *in, C). Returns (N, *out, C)."""
    xp, inside = pad(x, padding), _inside(x.shape, padding, x.dtype)
    out, w = _out(x.shape, size, stride, padding), gaussian_weights(size, sigma).astype(x.dtype)
    total = sum(w[t] * xp[_view(t, stride, out)] for t in taps(size))
    return total / sum(w[t] * inside[_view(t, stride, out)] for t in taps(size))


def gaussian_pool_dx(dy, x_shape, size, stride, padding, sigma):
    """dx[n, o*s + t - p_start, c] += w[t] dy[n, o, c] / sum_{t' on the input} w[t']."""
    out, w = dy.shape[1:-1], gaussian_weights(size, sigma).astype(dy.dtype)
    inside = _inside(x_shape, padding, dy.dtype)
    share = dy / sum(w[t] * inside[_view(t, stride, out)] for t in taps(size))
    dxp = padded_zeros(x_shape, padding, dy.dtype)
    for t in taps(size):
        dxp[_view(t, stride, out)] += w[t] * share
    return crop(dxp, padding)


def lp_pool(x, p, size, stride, padding):
    """y[n, o, c] = (sum_{t < size} |xp[n, o*s + t, c]|^p)^(1/p)   (xp: x zero-padded, p >= 1).

    p = 2 is the L2-norm pooling of Goodfellow et al. ch. 9.3. PyTorch's lp_pool sums x^p
    without the absolute value: the same for p = 2 or for x >= 0. x: (N, *in, C).
    Returns (N, *out, C).
    """
    xp = pad(np.abs(x) ** p, padding)
    out = _out(x.shape, size, stride, padding)
    return sum(xp[_view(t, stride, out)] for t in taps(size)) ** (1 / p)


def lp_pool_dx(dy, x, p, size, stride, padding):
    """Gradient of `lp_pool`: with S = sum_window |x|^p and y = S^(1/p),

    dy[o]/dx[i] = (1/p) S^(1/p - 1) * p |x[i]|^(p-1) sign(x[i]) = y^(1-p) |x[i]|^(p-1) sign(x[i]),

    so dx[i] = |x[i]|^(p-1) sign(x[i]) * sum over windows o holding i of dy[o] / y[o]^(p-1).
    A window of zeros (y = 0) sends back 0 (the subgradient), not inf * 0.
    """
    y, out = lp_pool(x, p, size, stride, padding), dy.shape[1:-1]
    g = np.divide(dy, y ** (p - 1), out=np.zeros_like(dy), where=y > 0)
    dxp = padded_zeros(x.shape, padding, dy.dtype)
    for t in taps(size):
        dxp[_view(t, stride, out)] += g
    return crop(dxp, padding) * np.abs(x) ** (p - 1) * np.sign(x)


def global_avg_pool(x):
    """y[n, c] = (1/P) sum over the P positions p of x[n, p, c]. Returns (N, C)."""
    return x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)


def global_avg_pool_dx(dy, x_shape):
    """dx[n, p, c] = dy[n, c] / P. Returns x_shape."""
    positions = math.prod(x_shape[1:-1])
    return np.broadcast_to((dy / positions)[:, None], (x_shape[0], positions, x_shape[-1])) \
        .reshape(x_shape).copy()


# ===== adaptive pooling ========================================================================
def adaptive_windows(size: int, out: int) -> list[slice]:
    """PyTorch's windows: output i pools [floor(i*I/O), ceil((i+1)*I/O)) (they may overlap)."""
    return [slice(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive(x_shape, out_size):
    """(output position, index of its window in x) for every output position, row-major."""
    axes = [adaptive_windows(i, o) for i, o in zip(x_shape[1:-1], out_size, strict=True)]
    for o in taps(out_size):
        yield o, (slice(None), *(a[i] for a, i in zip(axes, o, strict=True)))


def adaptive_avg_pool(x, out_size):
    """y[n, o, c] = mean of x[n, window(o), c], windows as `adaptive_windows` along each axis.
    x: (N, *in, C); out_size: the output's spatial sizes. Returns (N, *out_size, C).

    >>> adaptive_avg_pool(np.zeros((2, 13, 9, 3)), (6, 9)).shape
    (2, 6, 9, 3)"""
    y = np.empty((x.shape[0], *out_size, x.shape[-1]), dtype=x.dtype)
    for o, window in _adaptive(x.shape, out_size):
        part = x[window]
        y[(slice(None), *o)] = part.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)
    return y


def adaptive_avg_pool_dx(dy, x_shape):
    """dx[n, i, c] = sum over windows o holding i of dy[n, o, c] / |window(o)|."""
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for o, window in _adaptive(x_shape, dy.shape[1:-1]):
        dx[window] += global_avg_pool_dx(dy[(slice(None), *o)], dx[window].shape)
    return dx


def adaptive_max_pool(x, out_size):
    """y[n, o, c] = max of x[n, window(o), c] (windows as `adaptive_avg_pool`)."""
    y = np.empty((x.shape[0], *out_size, x.shape[-1]), dtype=x.dtype)
    for o, window in _adaptive(x.shape, out_size):
        y[(slice(None), *o)] = global_max_pool(x[window])
    return y


def adaptive_max_pool_dx(dy, x):
    """dy[n, o, c] goes to the first maximum (row-major) of window(o); overlaps add up."""
    dx = np.zeros(x.shape, dtype=dy.dtype)
    for o, window in _adaptive(x.shape, dy.shape[1:-1]):
        dx[window] += global_max_pool_dx(dy[(slice(None), *o)], x[window])
    return dx
