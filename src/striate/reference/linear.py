"""The fully connected (dense) layer: a matrix product over the last axis, plus a bias."""

from __future__ import annotations

import numpy as np


def dense(x, w, b):
    """y[..., j] = sum_i x[..., i] w[i, j] + b[j].

    x: (..., in), any leading axes; w: (in, out), the transpose of torch's Linear weight;
    b: (out,) or None. Returns (..., out).

    >>> dense(np.zeros((8, 5, 3)), np.zeros((3, 4)), np.ones(4)).shape
    (8, 5, 4)
    """
    y = np.einsum("...i,ij->...j", x, w)
    return y if b is None else y + b


def dense_dx(dy, w):
    """dx[..., i] = sum_j dy[..., j] w[i, j]  (dx = dy w^T). Returns (..., in)."""
    return np.einsum("...j,ij->...i", dy, w)


def dense_dw(dy, x):
    """dw[i, j] = sum over the leading positions p of x[p, i] dy[p, j]  (dw = x^T dy)."""
    return np.einsum("mi,mj->ij", x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1]))


def dense_db(dy):
    """db[j] = sum over the leading positions p of dy[p, j]. Returns (out,)."""
    return dy.reshape(-1, dy.shape[-1]).sum(axis=0)
