"""Merge layers: combine several tensors of matching shapes (residual sums, inception
concatenation, gating). Called as `Add()(a, b, c)` or `Add()([a, b, c])`.

>>> Add()(np.ones((2, 3)), np.ones((2, 3))).shape
(2, 3)
"""

from __future__ import annotations

import functools
import operator

from ..functional import concatenate
from ..tensor import Tensor, as_tensor
from .module import Module, format_args

__all__ = ["Add", "Concatenate", "Multiply"]


class _Merge(Module):
    def __init__(self, *, name: str | None = None):
        super().__init__(name=name)

    def _inputs(self, inputs) -> list[Tensor]:
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = inputs[0]
        if len(inputs) < 2:
            raise ValueError(f"{self.label}: needs at least 2 inputs, got {len(inputs)}")
        return [as_tensor(x) for x in inputs]

    def _same_shapes(self, tensors: list[Tensor], skip_axis: int | None = None) -> None:
        def key(t):
            shape = list(t.shape)
            if skip_axis is not None and -len(shape) <= skip_axis < len(shape):
                shape[skip_axis] = None
            return shape

        if any(t.ndim != tensors[0].ndim or key(t) != key(tensors[0]) for t in tensors):
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            which = "" if skip_axis is None else f" except along axis {skip_axis}"
            raise ValueError(f"{self.label}: inputs must have the same shape{which}, got {shapes}")


class Add(_Merge):
    """Elementwise sum of the inputs (a residual connection). All inputs share one shape."""

    def forward(self, *inputs):
        tensors = self._inputs(inputs)
        self._same_shapes(tensors)
        return functools.reduce(operator.add, tensors)


class Multiply(_Merge):
    """Elementwise product of the inputs (gating). All inputs share one shape."""

    def forward(self, *inputs):
        tensors = self._inputs(inputs)
        self._same_shapes(tensors)
        return functools.reduce(operator.mul, tensors)


class Concatenate(_Merge):
    """Join the inputs along `axis` (channels by default: inception modules), `concatenate`.

    >>> Concatenate()([np.ones((2, 4, 4, 3)), np.ones((2, 4, 4, 5))]).shape
    (2, 4, 4, 8)
    """

    def __init__(self, axis: int = -1, *, name: str | None = None):
        super().__init__(name=name)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"Concatenate: axis must be an int, got {axis!r}")
        self.axis = axis

    def forward(self, *inputs):
        tensors = self._inputs(inputs)
        ndim = tensors[0].ndim
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"{self.label}: axis {self.axis} is out of range for inputs of shape "
                f"{tuple(tensors[0].shape)}"
            )
        self._same_shapes(tensors, skip_axis=self.axis)
        return concatenate(tensors, axis=self.axis)

    def extra_repr(self) -> str:
        return format_args(keywords=[("axis", self.axis, -1)])
