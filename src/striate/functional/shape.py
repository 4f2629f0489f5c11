"""Shape operations that move values without arithmetic: constant padding, concatenation and
stacking.

(Reshape, transpose and indexing are methods of `striate.Tensor`.)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from ..tensor import Op, Tensor, as_tensor

__all__ = ["concatenate", "pad", "stack"]


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


class Concatenate(Op):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, dy):
        return tuple(np.split(dy, self.bounds, axis=self.axis))


class Stack(Op):
    def forward(self, *arrays, axis):
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, dy):
        return tuple(np.moveaxis(dy, self.axis, 0))


def concatenate(tensors: Sequence, axis: int = -1) -> Tensor:
    """Join tensors along an existing axis (channels by default, as Keras's Concatenate)."""
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence, axis: int = 0) -> Tensor:
    """Join tensors of equal shape along a new axis."""
    return Stack.apply(*tensors, axis=axis)
