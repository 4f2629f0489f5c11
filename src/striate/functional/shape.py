"""Shape operations that move values without arithmetic: constant padding; and the copies of
strided views that the pooling kernels make (`copy_values`, `packed`).

(Reshape, transpose, indexing and concatenation are methods and functions of `striate.tensor`.)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..tensor import Op, Tensor, as_tensor

__all__ = ["pad"]


# A view whose contiguous runs are shorter than this (a window offset's view of a map with few
# channels along its last spatial axis) is copied one run at a time, as a record
# (`copy_values`): NumPy's copies and ufunc loops run along the last axis alone, and loops over
# 6 values measured ~3x slower per value than record copies (a maximum of two such views of
# (128, 28, 28, 6) float32: 0.7 ms; the record copies of both 0.28 ms, the maximum after 0.09).
SHORT_RUN_BYTES = 128


def _run(a: np.ndarray) -> tuple[int, int]:
    """How many trailing axes of a are laid out back to back, and the bytes they span: one
    run of a's memory ((0, 0) when the last axis is strided: no run to copy as a record)."""
    run, axes = a.itemsize, 0
    for size, stride in zip(reversed(a.shape), reversed(a.strides), strict=True):
        if size != 1 and stride != run:
            break
        run, axes = run * size, axes + 1
    return axes, run if axes else 0


def _as_records(a: np.ndarray, axes: int) -> np.ndarray:
    """a's last `axes` axes, laid out back to back, as one record (a void scalar) per element
    of the others: a view of shape a.shape[:-axes]."""
    record = np.dtype((np.void, math.prod(a.shape[a.ndim - axes:]) * a.itemsize))
    return a.reshape(*a.shape[:a.ndim - axes], -1).view(record)[..., 0]


def _short(run_bytes: int) -> bool:
    return 0 < run_bytes < SHORT_RUN_BYTES


def copy_values(dst: np.ndarray, src: np.ndarray) -> None:
    """dst[...] = src (same shape); where either side has short runs (`SHORT_RUN_BYTES`) and
    both the same dtype, one record per run of their common trailing layout."""
    (dst_axes, dst_bytes), (src_axes, src_bytes) = _run(dst), _run(src)
    if (dst_axes and src_axes and dst.shape == src.shape and dst.dtype == src.dtype
            and (_short(dst_bytes) or _short(src_bytes))):
        axes = min(dst_axes, src_axes)
        np.copyto(_as_records(dst, axes), _as_records(src, axes))
    else:
        np.copyto(dst, src)


def packed(view: np.ndarray) -> np.ndarray:
    """view, or a compact copy of it made by records when its runs are short, for the passes
    that read it."""
    if not _short(_run(view)[1]):
        return view
    out = np.empty(view.shape, dtype=view.dtype)
    copy_values(out, view)
    return out


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class Pad(Op):
    def forward(self, x, pads, value):
        self.inside = tuple(slice(start, start + size) for (start, _), size in zip(pads, x.shape,
                                                                                     strict=True))
        return np.pad(x, pads, mode="constant", constant_values=value)

    def backward(self, dy):
        return (dy[self.inside].copy(),)  # the padding is constant: only the inside flows back


def pad(x, pads, value: float = 0.0) -> Tensor:
    """Pad every axis of x with a constant (zeros by default), as np.pad's constant mode.

    y[i_0 + p_0, i_1 + p_1, ...] = x[i_0, i_1, ...]; every other entry of y is `value`.

    x: any shape (d_0, ..., d_{k-1}); pads: one (start, end) pair, or one int for both sides, per
    axis of x, e.g. ((0, 0), (1, 1), (2, 2), (0, 0)) for the H, W axes of (N, H, W, C).
    Returns (d_0 + p_0 + q_0, ..., d_{k-1} + p_{k-1} + q_{k-1}); the gradient is dy's inside.

    >>> pad(np.zeros((2, 5, 5, 3)), ((0, 0), (1, 1), (1, 2), (0, 0))).shape
    (2, 7, 8, 3)
    """
    x = as_tensor(x)
    try:
        items = list(pads)
    except TypeError:
        raise TypeError(f"pad: pads must be one (start, end) pair per axis of x, got {pads!r}") \
            from None
    if len(items) != x.ndim:
        raise ValueError(
            f"pad: pads must have one entry per axis of x ({x.ndim} for shape {x.shape}), "
            f"got {len(items)}: {pads!r}"
        )
    pairs = []
    for item in items:
        if _is_int(item):
            pair = (int(item), int(item))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and all(map(_is_int, item)):
            pair = (int(item[0]), int(item[1]))
        else:
            raise ValueError(f"pad: each entry of pads must be an int or a (start, end) pair of "
                             f"ints, got {item!r} in {pads!r}")
        if min(pair) < 0:
            raise ValueError(f"pad: padding must be >= 0, got {item!r} in {pads!r}")
        pairs.append(pair)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"pad: value must be a real number, got {value!r}")
    return Pad.apply(x, pads=tuple(pairs), value=float(value))
