"""Activation layers, and the one table mapping activation names to functions.

Each layer applies one function of `striate.functional` (see it for the formula); the shape is
unchanged. `activation=` arguments of Conv and Dense layers take a name from ACTIVATIONS or a
callable.

>>> ReLU()(np.array([[-1.0, 2.0]]))
Tensor([[0. 2.]])
"""

from __future__ import annotations

from collections.abc import Callable

from .. import functional as F
from ._lookup import lookup
from .module import Module, format_args

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "Activation",
    "Hardsigmoid",
    "Hardswish",
    "LeakyReLU",
    "LogSoftmax",
    "ReLU",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "get_activation",
]


def _linear(x):
    return x


ACTIVATIONS: dict[str, Callable] = {
    "elu": F.elu,
    "gelu": F.gelu,
    "hardsigmoid": F.hardsigmoid,
    "hard_sigmoid": F.hardsigmoid,
    "hardswish": F.hardswish,
    "hard_swish": F.hardswish,
    "leaky_relu": F.leaky_relu,
    "linear": _linear,
    "log_softmax": F.log_softmax,
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": F.sigmoid,
    "silu": F.silu,
    "softmax": F.softmax,
    "softplus": F.softplus,
    "swish": F.silu,
    "tanh": F.tanh,
}


def get_activation(identifier, owner: str = "activation") -> Callable | None:
    """The function named by identifier (a key of ACTIVATIONS), a callable itself, or None.

    owner: who asks, for the error message (e.g. "Conv2D: activation").
    """
    return None if identifier is None else lookup(identifier, ACTIVATIONS, "activation", owner)


class _Elementwise(Module):
    """An activation without hyper-parameters: forward applies `function`."""

    function: Callable = staticmethod(_linear)

    def __init__(self, *, name: str | None = None):
        super().__init__(name=name)

    def forward(self, x):
        return type(self).function(x)


class ReLU(_Elementwise):
    """max(x, 0), `F.relu`."""

    function = staticmethod(F.relu)


class ReLU6(_Elementwise):
    """min(max(x, 0), 6), `F.relu6`."""

    function = staticmethod(F.relu6)


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), `F.sigmoid`."""

    function = staticmethod(F.sigmoid)


class Tanh(_Elementwise):
    """tanh(x), `F.tanh`."""

    function = staticmethod(F.tanh)


class SiLU(_Elementwise):
    """x * sigmoid(x) (swish), `F.silu`."""

    function = staticmethod(F.silu)


class Softplus(_Elementwise):
    """log(1 + exp(x)), `F.softplus`."""

    function = staticmethod(F.softplus)


class Hardswish(_Elementwise):
    """x * relu6(x + 3) / 6, `F.hardswish`."""

    function = staticmethod(F.hardswish)


class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6, `F.hardsigmoid`."""

    function = staticmethod(F.hardsigmoid)


class GELU(_Elementwise):
    """x * Phi(x), `F.gelu`; approximate='tanh' uses the tanh formula."""

    def __init__(self, approximate: str = "none", *, name: str | None = None):
        super().__init__(name=name)
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return format_args(keywords=[("approximate", self.approximate, "none")])


def _real(layer: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{layer}: {name} must be a real number, got {value!r}")
    return float(value)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x, `F.leaky_relu`."""

    def __init__(self, negative_slope: float = 0.01, *, name: str | None = None):
        super().__init__(name=name)
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return format_args(keywords=[("negative_slope", self.negative_slope, 0.01)])


class ELU(Module):
    """x if x > 0 else alpha * (exp(x) - 1), `F.elu`."""

    def __init__(self, alpha: float = 1.0, *, name: str | None = None):
        super().__init__(name=name)
        self.alpha = _real("ELU", "alpha", alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return format_args(keywords=[("alpha", self.alpha, 1.0)])


class Softmax(Module):
    """exp(x) / sum(exp(x)) along axis (channels by default), `F.softmax`."""

    function = staticmethod(F.softmax)

    def __init__(self, axis: int = -1, *, name: str | None = None):
        super().__init__(name=name)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"{type(self).__name__}: axis must be an int, got {axis!r}")
        self.axis = axis

    def forward(self, x):
        return type(self).function(x, axis=self.axis)

    def extra_repr(self) -> str:
        return format_args(keywords=[("axis", self.axis, -1)])


class LogSoftmax(Softmax):
    """x - log(sum(exp(x))) along axis, `F.log_softmax`."""

    function = staticmethod(F.log_softmax)


class Activation(Module):
    """The activation named `activation` (a key of ACTIVATIONS) or a callable, as a layer.

    >>> Activation("relu")
    Activation('relu')
    """

    def __init__(self, activation, *, name: str | None = None):
        super().__init__(name=name)
        if activation is None:
            raise ValueError("Activation: activation must be a name or a callable, got None")
        self.function = get_activation(activation, "Activation")
        self.activation = activation

    def forward(self, x):
        return self.function(x)

    def extra_repr(self) -> str:
        return format_args([self.activation])
