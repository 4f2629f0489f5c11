"""Dense (fully connected) layers and embedding lookup."""

from __future__ import annotations

import numpy as np

from .. import _parallel
from ..tensor import Op, Tensor, as_tensor

__all__ = ["dense", "embedding"]


class Dense(Op):
    def forward(self, x, w, b):
        # dx needs w and dw needs x: keep each only when that gradient is wanted.
        self.x = x if self.needs_grad[1] else None
        self.w = w if self.needs_grad[0] else None
        self.macs = x.size * w.shape[1]  # multiply-adds of the product, and of each gradient's
        with _parallel.small_product(self.macs):
            y = x @ w  # (..., out)
        if b is not None:
            y += b
        return y

    def backward(self, dy):
        dx = dw = db = None
        dy2 = dy.reshape(-1, dy.shape[-1])  # (M, out), M = product of the leading axes
        with _parallel.small_product(self.macs):
            if self.needs_grad[0]:
                dx = dy @ self.w.T
            if self.needs_grad[1]:
                dw = self.x.reshape(-1, self.x.shape[-1]).T @ dy2  # (in, M) @ (M, out)
        if self.needs_grad[2]:
            db = dy2.sum(axis=0)
        return dx, dw, db


def dense(x, w, b=None) -> Tensor:
    """Fully connected layer: a matrix product over the last axis, plus a bias.

    y[..., j] = sum_i x[..., i] * w[i, j] + b[j]

    x: (..., in), any number of leading axes; w: (in, out) (the transpose of torch's Linear
    weight); b: (out,) or None. Returns (..., out).

    >>> dense(np.zeros((8, 5, 3)), np.zeros((3, 4)), np.zeros(4)).shape
    (8, 5, 4)
    """
    x, w = as_tensor(x), as_tensor(w)
    if w.ndim != 2:
        raise ValueError(f"dense: w must be 2-D (in, out), got shape {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"dense: x has {x.shape[-1] if x.ndim else 'no'} features (last axis of shape "
            f"{x.shape}) but w expects {w.shape[0]} (w shape {w.shape})"
        )
    if b is not None:
        b = as_tensor(b)
        if b.shape != (w.shape[1],):
            raise ValueError(
                f"dense: b must have shape ({w.shape[1]},) to match w {w.shape}, got {b.shape}"
            )
    return Dense.apply(x, w, b)


class Embedding(Op):
    def forward(self, table, ids, padding_idx):
        self.ids, self.padding_idx, self.table_shape = ids, padding_idx, table.shape
        return table[ids]  # (*ids.shape, D)

    def backward(self, dy):
        flat = self.ids.ravel()
        dtable = np.zeros(self.table_shape, dtype=dy.dtype)
        if flat.size:
            # Sum the rows of dy that share an id: sort the ids once, then one reduceat over the
            # runs of equal ids (vectorised, unlike np.add.at's element-by-element scatter).
            order = np.argsort(flat, kind="stable")
            sorted_ids = flat[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
            rows = dy.reshape(flat.size, -1)[order]  # (N*L, D), grouped by id
            dtable[sorted_ids[starts]] = np.add.reduceat(rows, starts, axis=0)
        if self.padding_idx is not None:
            dtable[self.padding_idx] = 0  # the padding vector stays fixed, as in PyTorch
        return (dtable,)


def embedding(ids, table, padding_idx: int | None = None) -> Tensor:
    """Look up one row of `table` per integer id (word vectors for a text CNN).

    y[n, l, :] = table[ids[n, l], :]; the gradient of a row sums over every use of its id.
    The row at `padding_idx`, if given, receives no gradient.

    ids: integer array of any shape, e.g. (N, L), values in [0, V); table: (V, D).
    Returns (*ids.shape, D).

    >>> embedding(np.array([[0, 2, 1]]), np.zeros((5, 8))).shape
    (1, 3, 8)
    """
    table = as_tensor(table)
    if table.ndim != 2:
        raise ValueError(f"embedding: table must be 2-D (V, D), got shape {table.shape}")
    ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(
            f"embedding: ids must be an integer array, got dtype {ids.dtype} "
            f"(a Tensor holds floats: pass the NumPy integer array)"
        )
    vocab = table.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise ValueError(f"embedding: ids must be in [0, {vocab}) for a table of {vocab} rows, "
                         f"got {bad}")
    if padding_idx is not None and not 0 <= padding_idx < vocab:
        raise ValueError(f"embedding: padding_idx must be in [0, {vocab}), got {padding_idx}")
    return Embedding.apply(table, ids=ids, padding_idx=padding_idx)
