"""Dense: a convolution as one product with its whole matrix.

Computes `striate.reference.conv.conv` without groups as y = x_flat @ M, M the convolution's
matrix (prod(in)*C_in, prod(out)*C_out): the banded kernel of `banded.py` over every axis.
When the map has no more positions than the kernel has taps, M takes no more multiply-adds than
the patches would, and none of the zeros that padding puts in the patches of a small map
(ResNet's 3x3 kernels on 2x2 maps, 32x32 images: 2.25x fewer). Its gradients are the
transposed products, dw summed back out of M.
"""

from __future__ import annotations

import math

import numpy as np

from ... import _parallel
from .banded import band_kernel, band_weights
from .geometry import Geometry


def _is_kernel(g: Geometry) -> bool:
    """The kernel covers the input exactly (one output position, no padding, no dilation):
    M is the kernel itself, (prod(k)*C_in, C_out). LeNet-5's C5: 5x5 kernels on 5x5 maps."""
    return (g.in_size == g.kernel and all(d == 1 for d in g.dilation)
            and not any(p for pair in g.pads for p in pair))


def _matrix(w: np.ndarray, g: Geometry) -> np.ndarray:
    return w.reshape(-1, w.shape[-1]) if _is_kernel(g) else band_kernel(w, g, len(g.kernel))


def forward(x: np.ndarray, w: np.ndarray, g: Geometry) -> np.ndarray:
    """y (N, *out, C_out) = x (N, prod(in)*C_in) @ M."""
    n, c_out = x.shape[0], w.shape[-1]
    m = _matrix(w, g)
    with _parallel.small_product(n * m.size):
        return (x.reshape(n, -1) @ m).reshape(n, *g.out_size, c_out)


def backward(dy, x, w, g: Geometry, x_shape, w_shape, need_dx, need_dw):
    """dx = dy @ M^T, dM = x^T @ dy summed back into dw."""
    n = x_shape[0]
    dy_rows, axes = dy.reshape(n, -1), len(g.kernel)
    with _parallel.small_product(dy.size * math.prod(x_shape[1:])):
        dx = (dy_rows @ _matrix(w, g).T).reshape(x_shape) if need_dx else None
        dm = x.reshape(n, -1).T @ dy_rows if need_dw else None
    dw = None
    if need_dw:
        dw = dm.reshape(w_shape) if _is_kernel(g) else band_weights(dm, g, w_shape, axes)
    return dx, dw
