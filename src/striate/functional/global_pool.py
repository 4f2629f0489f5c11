"""Pooling over whole axes and adaptive windows: global average and max pooling, maxout, and
adaptive average and max pooling (PyTorch's windows).

As in `pool.py`, the definitions are `striate.reference.pool` and the kernels
`striate.kernels.pool` (adaptive pooling rearranges the uneven windows into uniform ones and
reuses the sliding-window kernels).
"""

from __future__ import annotations

import functools

import numpy as np

from ..arith import ntuple
from ..kernels import pool as kernels
from ..kernels.pool import from_uniform, uniform_windows
from ..reference import pool as reference
from ..tensor import Tensor, as_tensor
from .pool import Definition, MaxPool, Pool, WeightedAverage, check_rank

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "global_avg_pool",
    "global_max_pool",
    "maxout",
]


# ===== maxima along one axis: global max pooling and maxout ====================================


class AxisMax(Pool):
    """x viewed as `shape`, maximum along `axis`; dy goes to the first maximum."""

    def compute(self, x, shape, axis):
        kernels.choose()  # the maximum along an axis (recorded)
        self.shape, self.axis = x.shape, axis
        grouped = x.reshape(shape)
        self.argmax = np.expand_dims(grouped.argmax(axis=axis), axis)
        self.grouped_shape = grouped.shape
        return np.take_along_axis(grouped, self.argmax, axis=axis).squeeze(axis)

    def compute_dx(self, dy):
        dx = np.zeros(self.grouped_shape, dtype=dy.dtype)
        np.put_along_axis(dx, self.argmax, np.expand_dims(dy, self.axis), axis=self.axis)
        return dx.reshape(self.shape)


def _check_global(op: str, x: Tensor) -> None:
    if x.ndim < 3:
        raise ValueError(
            f"{op}: expected an input (N, *spatial, C) with at least one spatial axis, "
            f"got shape {x.shape}"
        )


def global_avg_pool(x) -> Tensor:
    """Global average pooling: the mean of each channel over every spatial position.

    y[n, c] = mean_{positions p} x[n, p, c]

    x: (N, *spatial, C) with any number of spatial axes. Returns (N, C).

    >>> global_avg_pool(np.zeros((2, 7, 7, 512))).shape
    (2, 512)
    """
    x = as_tensor(x)
    _check_global("global_avg_pool", x)
    return x.mean(axis=tuple(range(1, x.ndim - 1)))


def global_max_pool(x) -> Tensor:
    """Global max pooling: the maximum of each channel over every spatial position.

    y[n, c] = max_{positions p} x[n, p, c]; the gradient goes to the first maximum (row-major).

    x: (N, *spatial, C) with any number of spatial axes. Returns (N, C).

    >>> global_max_pool(np.zeros((2, 7, 7, 512))).shape
    (2, 512)
    """
    x = as_tensor(x)
    _check_global("global_max_pool", x)
    definition = Definition(reference.global_max_pool, reference.global_max_pool_dx)
    return AxisMax.apply(x, definition=definition, shape=(x.shape[0], -1, x.shape[-1]), axis=1)


def maxout(x, pieces: int) -> Tensor:
    """Maxout (Goodfellow et al., 2013): the maximum over each group of `pieces` consecutive
    channels, a max pooling over features that lets the network learn its invariances.

    y[..., c] = max_{j < pieces} x[..., c*pieces + j]

    x: (..., C) with C divisible by pieces. Returns (..., C / pieces).

    >>> maxout(np.zeros((2, 5, 5, 12)), 3).shape
    (2, 5, 5, 4)
    """
    x = as_tensor(x)
    (pieces,) = ntuple(pieces, 1, "pieces", "maxout")
    if x.ndim < 1 or x.shape[-1] % pieces:
        channels = x.shape[-1] if x.ndim else None
        raise ValueError(
            f"maxout: the {channels} channels of input shape {x.shape} do not split into "
            f"groups of pieces={pieces}; use a divisor of the channel count"
        )
    definition = Definition(functools.partial(reference.maxout, pieces=pieces),
                             functools.partial(reference.maxout_dx, pieces=pieces))
    return AxisMax.apply(x, definition=definition,
                         shape=(*x.shape[:-1], x.shape[-1] // pieces, pieces), axis=-1)


def _output_size(op: str, x: Tensor, n: int, output_size) -> tuple[int, ...]:
    """output_size as n ints; None entries keep the input's size (as PyTorch)."""
    check_rank(op, x, n)
    if 0 in x.shape[1:-1]:
        raise ValueError(f"{op}: input shape {x.shape} has an empty spatial axis")
    if isinstance(output_size, (tuple, list)) and len(output_size) == n:
        output_size = tuple(
            size if o is None else o for o, size in zip(output_size, x.shape[1:-1], strict=True)
        )
    return ntuple(output_size, n, "output_size", op)


class AdaptiveAvgPool(WeightedAverage):
    """Mean over PyTorch's adaptive windows: the sum over uniform windows (padded with zeros)
    divided by each window's true element count."""

    def compute(self, x, out):
        uniform, windows, self.bounds = uniform_windows(x, out, 0)
        self.input_shape = x.shape
        widths = [np.subtract(ends, starts) for starts, ends, _ in self.bounds]
        count = functools.reduce(np.multiply.outer, widths).reshape((1, *out, 1))
        return super().compute(uniform, windows, None, count.astype(x.dtype))

    def compute_dx(self, dy):
        return from_uniform(super().compute_dx(dy), self.input_shape, self.bounds)


class AdaptiveMaxPool(MaxPool):
    """Maximum over PyTorch's adaptive windows: max pooling over uniform windows padded with
    -inf. The fill comes after a window's own elements, so the first maximum in window order
    is the same element as in PyTorch's window."""

    def compute(self, x, out):
        uniform, windows, self.bounds = uniform_windows(x, out, -np.inf)
        self.input_shape = x.shape
        return super().compute(uniform, windows)

    def compute_dx(self, dy):
        return from_uniform(super().compute_dx(dy), self.input_shape, self.bounds)


def _adaptive(op_class, op: str, n: int, x, output_size) -> Tensor:
    x = as_tensor(x)
    out = _output_size(op, x, n, output_size)
    if op_class is AdaptiveAvgPool:
        definition = Definition(functools.partial(reference.adaptive_avg_pool, out_size=out),
                                 lambda dy, x: reference.adaptive_avg_pool_dx(dy, x.shape))
    else:
        definition = Definition(functools.partial(reference.adaptive_max_pool, out_size=out),
                                 reference.adaptive_max_pool_dx)
    return op_class.apply(x, definition=definition, out=out)


def adaptive_avg_pool1d(x, output_size) -> Tensor:
    """1-D adaptive average pooling: L_out windows that tile the input as evenly as possible.

    y[n, i, c] = mean of x[n, floor(i*L/L_out) : ceil((i+1)*L/L_out), c]

    x: (N, L, C); output_size: int. Returns (N, L_out, C).

    >>> adaptive_avg_pool1d(np.zeros((2, 10, 3)), 4).shape
    (2, 4, 3)
    """
    return _adaptive(AdaptiveAvgPool, "adaptive_avg_pool1d", 1, x, output_size)


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    """2-D adaptive average pooling: a fixed output size for any input size (PyTorch's windows).

    y[n, i, j, c] = mean of x[n, floor(i*H/H_out) : ceil((i+1)*H/H_out),
                              floor(j*W/W_out) : ceil((j+1)*W/W_out), c]

    x: (N, H, W, C); output_size: int or (H_out, W_out), None keeping that input size.
    Returns (N, H_out, W_out, C).

    >>> adaptive_avg_pool2d(np.zeros((2, 13, 9, 3)), (6, None)).shape
    (2, 6, 9, 3)
    """
    return _adaptive(AdaptiveAvgPool, "adaptive_avg_pool2d", 2, x, output_size)


def adaptive_avg_pool3d(x, output_size) -> Tensor:
    """3-D adaptive average pooling (windows as `adaptive_avg_pool2d`, along D, H and W).

    x: (N, D, H, W, C); output_size: int or (D_out, H_out, W_out), None keeping that input size.
    Returns (N, D_out, H_out, W_out, C).

    >>> adaptive_avg_pool3d(np.zeros((1, 5, 7, 7, 2)), 2).shape
    (1, 2, 2, 2, 2)
    """
    return _adaptive(AdaptiveAvgPool, "adaptive_avg_pool3d", 3, x, output_size)


def adaptive_max_pool1d(x, output_size) -> Tensor:
    """1-D adaptive max pooling: L_out windows that tile the input as evenly as possible.

    y[n, i, c] = max of x[n, floor(i*L/L_out) : ceil((i+1)*L/L_out), c]

    x: (N, L, C); output_size: int. Returns (N, L_out, C).

    >>> adaptive_max_pool1d(np.zeros((2, 10, 3)), 4).shape
    (2, 4, 3)
    """
    return _adaptive(AdaptiveMaxPool, "adaptive_max_pool1d", 1, x, output_size)


def adaptive_max_pool2d(x, output_size) -> Tensor:
    """2-D adaptive max pooling: a fixed output size for any input size (PyTorch's windows).

    y[n, i, j, c] = max of x[n, floor(i*H/H_out) : ceil((i+1)*H/H_out),
                             floor(j*W/W_out) : ceil((j+1)*W/W_out), c]

    The gradient goes to the first maximum in window order. x: (N, H, W, C); output_size: int
    or (H_out, W_out), None keeping that input size. Returns (N, H_out, W_out, C).

    >>> adaptive_max_pool2d(np.zeros((2, 13, 9, 3)), 6).shape
    (2, 6, 6, 3)
    """
    return _adaptive(AdaptiveMaxPool, "adaptive_max_pool2d", 2, x, output_size)


def adaptive_max_pool3d(x, output_size) -> Tensor:
    """3-D adaptive max pooling (windows as `adaptive_max_pool2d`, along D, H and W).

    x: (N, D, H, W, C); output_size: int or (D_out, H_out, W_out), None keeping that input size.
    Returns (N, D_out, H_out, W_out, C).

    >>> adaptive_max_pool3d(np.zeros((1, 5, 7, 7, 2)), (1, 2, 3)).shape
    (1, 1, 2, 3, 2)
    """
    return _adaptive(AdaptiveMaxPool, "adaptive_max_pool3d", 3, x, output_size)
