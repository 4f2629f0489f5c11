"""Dense: a convolution as one product with its whole matrix.

Computes `striate.reference.conv.conv` without groups as y = x_flat @ M, M the convolution's
matrix (prod(in)*C_in, prod(out)*C_out): the banded kernel of `banded.py` over every axis.
When the map has no more positions than the kernel has taps, M takes no more multiply-adds than
the patches would, and none of the zeros that padding puts in the patches of a small map
(ResNet's 3x3 kernels on 2x2 maps, 32x32 images: 2.25x fewer). Its gradients are the
transposed products, dw summed back out of M.
"""

from __future__ import annotations

import numpy as np

from .banded import band_kernel, band_weights
from .geometry import Geometry


def forward(x: np.ndarray, w: np.ndarray, g: Geometry) -> np.ndarray:
    """y (N, *out, C_out) = x (N, prod(in)*C_in) @ M."""
    n, c_out = x.shape[0], w.shape[-1]
    return (x.reshape(n, -1) @ band_kernel(w, g, len(g.kernel))).reshape(n, *g.out_size, c_out)


def backward(dy, x, w, g: Geometry, x_shape, w_shape, need_dx, need_dw):
    """dx = dy @ M^T, dM = x^T @ dy summed back into dw."""
    n = x_shape[0]
    dy_rows, axes = dy.reshape(n, -1), len(g.kernel)
    dx = (dy_rows @ band_kernel(w, g, axes).T).reshape(x_shape) if need_dx else None
    dw = band_weights(x.reshape(n, -1).T @ dy_rows, g, w_shape, axes) if need_dw else None
    return dx, dw
