"""Fully connected and shape layers: Dense, Embedding, Flatten, Reshape, Identity, ZeroPadding2D.

>>> Dense(10)(np.zeros((8, 84))).shape
(8, 10)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .activation import get_activation
from .module import Module, format_args

__all__ = ["Dense", "Embedding", "Flatten", "Identity", "Reshape", "ZeroPadding2D"]


def _positive_int(layer: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


class Dense(Module):
    """Fully connected layer over the last axis: y = activation(x @ weight + bias), `F.dense`.

    units: output features; input_dim: build eagerly (otherwise from the first input).
    Parameters: weight (in, units) (the transpose of torch's Linear weight), bias (units,).
    x: (..., in). Returns (..., units).

    >>> Dense(4, activation="relu", input_dim=3).weight.shape
    (3, 4)
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 input_dim: int | None = None, *, name: str | None = None):
        super().__init__(name=name)
        self.units = _positive_int("Dense", "units", units)
        self.activation = activation
        self._activation = get_activation(activation, "Dense: activation")
        self.use_bias = bool(use_bias)
        init.get(kernel_initializer, "Dense: kernel_initializer")
        init.get(bias_initializer, "Dense: bias_initializer")
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.built = False
        self.input_dim = None
        if input_dim is not None:
            self._build((1, _positive_int("Dense", "input_dim", input_dim)))
            self.built = True

    def _build(self, input_shape) -> None:
        shape = (input_shape[-1], self.units)
        self.input_dim = input_shape[-1]
        self.weight = self._parameter(self.kernel_initializer, shape)
        self.bias = (
            self._parameter(self.bias_initializer, (self.units,), init.compute_fans(shape))
            if self.use_bias else None
        )

    def forward(self, x):
        if x.ndim < 1:
            raise ValueError(f"{self.label}: expected an input (..., features), got a scalar")
        self._ensure_built(x)
        if x.shape[-1] != self.input_dim:
            raise ValueError(
                f"{self.label}: input has {x.shape[-1]} features but the weight expects "
                f"{self.input_dim} (input shape {tuple(x.shape)}); flatten (N, H, W, C) inputs "
                f"first"
            )
        y = F.dense(x, self.weight, self.bias)
        return y if self._activation is None else self._activation(y)

    def extra_repr(self) -> str:
        return format_args([self.units], [
            ("activation", self.activation, None),
            ("use_bias", self.use_bias, True),
            ("kernel_initializer", self.kernel_initializer, "glorot_uniform"),
            ("bias_initializer", self.bias_initializer, "zeros"),
        ])


class Embedding(Module):
    """Lookup table of input_dim vectors of size output_dim, `F.embedding`.

    ids: integers in [0, input_dim) of any shape (N, L); floats holding whole numbers (a zero
    batch from `build`) are accepted. Returns (*ids.shape, output_dim).
    Parameter: weight (input_dim, output_dim). trainable=False (Keras' name) freezes the table:
    weight is then a buffer, an ndarray that state_dict saves and load_state_dict and astype
    update, but that parameters() leaves out, so it gets no gradient and no optimizer step.

    >>> Embedding(100, 8)(np.array([[1, 5, 7]])).shape
    (1, 3, 8)
    >>> [name for name, _ in Embedding(100, 8, trainable=False).named_parameters()]
    []
    """

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="random_uniform",
                 trainable: bool = True, *, name: str | None = None):
        super().__init__(name=name)
        self.input_dim = _positive_int("Embedding", "input_dim", input_dim)
        self.output_dim = _positive_int("Embedding", "output_dim", output_dim)
        if not isinstance(trainable, (bool, np.bool_)):
            raise TypeError(f"Embedding: trainable must be a bool, got {trainable!r}")
        self.embeddings_initializer = embeddings_initializer
        self.trainable = bool(trainable)
        weight = self._parameter(
            init.get(embeddings_initializer, "Embedding: embeddings_initializer"),
            (self.input_dim, self.output_dim),
        )
        if self.trainable:
            self.weight = weight
        else:
            self.register_buffer("weight", weight.data)

    @property
    def table(self) -> np.ndarray:
        """The lookup table's values (input_dim, output_dim), trainable or frozen."""
        return self.weight.data if self.trainable else self.weight

    def forward(self, ids):
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if np.issubdtype(ids.dtype, np.floating):
            if not np.all(ids == np.round(ids)):
                raise ValueError(f"{self.label}: ids must be whole numbers, got dtype {ids.dtype} "
                                 f"with fractional values")
            ids = ids.astype(np.int64)
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return format_args([self.input_dim, self.output_dim],
                           [("embeddings_initializer", self.embeddings_initializer,
                             "random_uniform"), ("trainable", self.trainable, True)])


class Flatten(Module):
    """Merge every axis but the batch, in channels-last order: (N, H, W, C) -> (N, H*W*C).

    >>> Flatten()(np.zeros((2, 4, 4, 16))).shape
    (2, 256)
    """

    def __init__(self, *, name: str | None = None):
        super().__init__(name=name)

    def forward(self, x):
        if x.ndim < 1:
            raise ValueError(f"{self.label}: expected an input with a batch axis, got a scalar")
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))


class Reshape(Module):
    """Reshape every sample to `shape` (without the batch axis; one entry may be -1).

    >>> Reshape((7, 7, 64))(np.zeros((2, 3136))).shape
    (2, 7, 7, 64)
    """

    def __init__(self, shape, *, name: str | None = None):
        super().__init__(name=name)
        shape = tuple(shape)
        if not all(isinstance(s, numbers.Integral) and (s > 0 or s == -1) for s in shape) \
                or list(shape).count(-1) > 1:
            raise ValueError(
                f"Reshape: shape must be positive ints with at most one -1, got {shape!r}"
            )
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x):
        size, known = math.prod(x.shape[1:]), math.prod(s for s in self.shape if s != -1)
        if (size != known) if -1 not in self.shape else (known == 0 or size % known):
            raise ValueError(
                f"{self.label}: cannot reshape samples of shape {tuple(x.shape[1:])} ({size} "
                f"values) to {self.shape}"
            )
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return format_args([self.shape])


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. a shortcut without projection)."""

    def __init__(self, *, name: str | None = None):
        super().__init__(name=name)

    def forward(self, x):
        return x


class ZeroPadding2D(Module):
    """Pad the H and W axes of (N, H, W, C) with zeros, `F.pad`.

    padding: int (all four sides), (pH, pW) (symmetric), or ((top, bottom), (left, right)).
    Returns (N, H + top + bottom, W + left + right, C).

    >>> ZeroPadding2D(((1, 2), (3, 0)))(np.zeros((1, 5, 5, 2))).shape
    (1, 8, 8, 2)
    """

    def __init__(self, padding=1, *, name: str | None = None):
        super().__init__(name=name)
        self.padding = _pairs("ZeroPadding2D", padding)

    def forward(self, x):
        self._check_rank(x, 4, "(N, H, W, C)")
        return F.pad(x, ((0, 0), *self.padding, (0, 0)))

    def extra_repr(self) -> str:
        (top, bottom), (left, right) = self.padding
        if top == bottom and left == right:
            return format_args([top if top == left else (top, left)])
        return format_args([self.padding])


def _pairs(layer: str, padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """int | (pH, pW) | ((top, bottom), (left, right)) -> ((top, bottom), (left, right))."""

    def count(v) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0

    if count(padding):
        return ((int(padding),) * 2,) * 2
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(count(p) for p in padding):
            return tuple((int(p), int(p)) for p in padding)
        if all(isinstance(p, (tuple, list)) and len(p) == 2 and all(map(count, p))
               for p in padding):
            return tuple((int(p[0]), int(p[1])) for p in padding)
    raise ValueError(
        f"{layer}: padding must be a non-negative int, (pH, pW) or ((top, bottom), "
        f"(left, right)), got {padding!r}"
    )
