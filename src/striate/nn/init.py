"""Weight initializers, referenced by layers through their Keras names.

An initializer is a callable `init(shape, dtype=np.float32, fans=None, rng=None) -> ndarray`.
`fans` is (fan_in, fan_out); by default it is computed from a channels-last kernel shape as Keras
does (`compute_fans`). Layers whose weight shape does not tell the fans (a bias, a locally
connected kernel) pass them explicitly. Random draws come from one module-level generator, so
`set_seed(seed)` makes model construction reproducible.

    variance-scaling initializers (scale s, mode m, fan = fan_in | (fan_in + fan_out) / 2):
    normal:  N(0, s / fan)            uniform: U(-sqrt(3 s / fan), sqrt(3 s / fan))
    he_*: s = 2, fan_in;   glorot_*: s = 1, (fan_in + fan_out) / 2;   lecun_*: s = 1, fan_in

The normal variants are untruncated. `with_fan_out` turns any of them into PyTorch's
mode="fan_out" (`he_normal_fan_out` is kaiming_normal_(mode="fan_out")). Every initializer's
`__name__` is how layer reprs print it.

>>> set_seed(0)
>>> glorot_uniform((3, 3, 16, 32)).shape
(3, 3, 16, 32)
>>> compute_fans((3, 3, 16, 32))
(144, 288)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ._lookup import lookup

__all__ = [
    "INITIALIZERS",
    "compute_fans",
    "constant",
    "generator",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_normal_fan_out",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "random_normal",
    "random_uniform",
    "set_seed",
    "torch_default",
    "with_fan_out",
    "zeros",
]

Initializer = Callable[..., np.ndarray]

_generator = np.random.default_rng()


def set_seed(seed: int | None) -> None:
    """Reseed the generator behind every initializer and every layer's dropout generator."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The module-level generator that initializers draw from (see `set_seed`)."""
    return _generator


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight, Keras's definitions for channels-last kernels.

    (in, out): (in, out); (*k, C_in/groups, C_out): (prod(k) * C_in/groups, prod(k) * C_out);
    a vector (n,): (n, n); a scalar: (1, 1). As in Keras and PyTorch, fan_out of a grouped
    kernel is not divided by the groups.
    """
    shape = tuple(shape)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


def _named(initializer: Initializer, name: str, doc: str | None = None) -> Initializer:
    """Give an initializer made by a factory the name (and docstring) that reprs show."""
    initializer.__name__ = initializer.__qualname__ = name
    if doc is not None:
        initializer.__doc__ = doc
    return initializer


def _draw_normal(rng: np.random.Generator, shape, dtype, std: float) -> np.ndarray:
    """N(0, std^2) drawn directly in a float dtype: VGG's first dense layer has 100M weights,
    and a float64 draw would take twice the memory and a cast."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        values = rng.standard_normal(size=tuple(shape), dtype=dtype)
        values *= dtype.type(std)
        return values
    return rng.normal(0.0, std, size=tuple(shape)).astype(dtype)


def _scaled(scale: float, mode: str, distribution: str, name: str, doc: str) -> Initializer:
    """A variance-scaling initializer: variance scale / fan (see the module docstring)."""

    def initializer(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape) if fans is None else fans
        fan = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2
        variance = scale / max(fan, 1)
        rng = _generator if rng is None else rng
        if distribution == "normal":
            return _draw_normal(rng, shape, dtype, math.sqrt(variance))
        limit = math.sqrt(3 * variance)
        return rng.uniform(-limit, limit, size=tuple(shape)).astype(dtype)

    return _named(initializer, name, doc)


he_normal = _scaled(2.0, "fan_in", "normal", "he_normal",
                    "He et al. 2015: N(0, 2 / fan_in), for ReLU networks.")
he_uniform = _scaled(2.0, "fan_in", "uniform", "he_uniform",
                     "He et al. 2015: U(-sqrt(6 / fan_in), sqrt(6 / fan_in)).")
glorot_normal = _scaled(1.0, "fan_avg", "normal", "glorot_normal",
                        "Glorot and Bengio 2010: N(0, 2 / (fan_in + fan_out)).")
glorot_uniform = _scaled(
    1.0, "fan_avg", "uniform", "glorot_uniform",
    "Glorot and Bengio 2010 (Keras's default): U(-sqrt(6 / (fan_in + fan_out)), same).",
)
lecun_normal = _scaled(1.0, "fan_in", "normal", "lecun_normal", "LeCun 1998: N(0, 1 / fan_in).")
lecun_uniform = _scaled(1.0, "fan_in", "uniform", "lecun_uniform",
                        "LeCun 1998: U(-sqrt(3 / fan_in), sqrt(3 / fan_in)).")


def torch_default(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
    """PyTorch's default for Conv and Linear weights and biases: U(-1/sqrt(fan_in), same).

    (kaiming_uniform with a=sqrt(5) gives exactly this bound.) For a bias, pass the fans of its
    layer's weight.
    """
    fan_in, _ = compute_fans(shape) if fans is None else fans
    bound = 1 / math.sqrt(max(fan_in, 1))
    rng = _generator if rng is None else rng
    return rng.uniform(-bound, bound, size=tuple(shape)).astype(dtype)


def constant(value: float) -> Initializer:
    """An initializer filling every entry with `value`.

    >>> constant(0.1)((2,))
    array([0.1, 0.1], dtype=float32)
    """
    value = float(value)

    def initializer(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
        return np.full(tuple(shape), value, dtype=dtype)

    return _named(initializer, f"constant({value:g})")


def normal(std: float) -> Initializer:
    """An initializer drawing from N(0, std^2), whatever the fans (torchvision's classifier
    layers use 0.01).

    >>> normal(0.01).__name__
    'normal(0.01)'
    """
    std = float(std)
    if not std > 0:
        raise ValueError(f"normal: std must be > 0, got {std!r}")

    def initializer(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
        return _draw_normal(_generator if rng is None else rng, shape, dtype, std)

    return _named(initializer, f"normal({std:g})")


def with_fan_out(initializer: Initializer) -> Initializer:
    """The same initializer reading fan_out wherever it reads fan_in: PyTorch's mode="fan_out".

    >>> with_fan_out(torch_default).__name__
    'torch_default_fan_out'
    """

    def swapped(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape) if fans is None else fans
        return initializer(shape, dtype, fans=(fan_out, fan_in), rng=rng)

    return _named(swapped, f"{initializer.__name__}_fan_out")


he_normal_fan_out = _named(
    with_fan_out(he_normal), "he_normal_fan_out",
    "PyTorch's kaiming_normal_(mode='fan_out'): N(0, 2 / fan_out), torchvision's convolution "
    "init for MobileNet, EfficientNet and RegNet.",
)


def zeros(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
    """All zeros (Keras's default bias)."""
    return np.zeros(tuple(shape), dtype=dtype)


def ones(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
    """All ones (batch norm's default scale)."""
    return np.ones(tuple(shape), dtype=dtype)


def random_normal(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
    """N(0, 0.05^2), Keras's RandomNormal default."""
    rng = _generator if rng is None else rng
    return rng.normal(0.0, 0.05, size=tuple(shape)).astype(dtype)


def random_uniform(shape, dtype=np.float32, fans=None, rng=None) -> np.ndarray:
    """U(-0.05, 0.05), Keras's RandomUniform default (and its Embedding default)."""
    rng = _generator if rng is None else rng
    return rng.uniform(-0.05, 0.05, size=tuple(shape)).astype(dtype)


INITIALIZERS: dict[str, Initializer] = {
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_normal_fan_out": he_normal_fan_out,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "ones": ones,
    "random_normal": random_normal,
    "random_uniform": random_uniform,
    "torch_default": torch_default,
    "zeros": zeros,
}


def get(identifier, owner: str = "initializer") -> Initializer:
    """The initializer named by `identifier` (a key of INITIALIZERS), or the callable itself.

    owner: who asks, for the error message (e.g. "Conv2D: kernel_initializer").
    """
    return lookup(identifier, INITIALIZERS, "initializer", owner)
