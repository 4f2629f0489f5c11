"""Dropout in three granularities: single units, whole channels, whole samples (drop path).

All are inverted dropout: kept values are scaled by 1/(1 - rate) in training, so the expected
value is unchanged and evaluation is the identity.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Op, Tensor, as_tensor

__all__ = ["drop_path", "dropout", "spatial_dropout"]

# Used when no generator is passed; layers own seeded generators for reproducible runs.
_default_rng = np.random.default_rng()


class Mask(Op):
    """x times a fixed mask (broadcast against x): the mask is both forward and backward."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, dy):
        return (dy * self.mask,)


def _drop(op: str, x, rate, training: bool, rng, mask_shape) -> Tensor:
    """Validate, then multiply x by a random keep-mask of shape mask_shape(x.shape)."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise ValueError(f"{op}: rate must be in [0, 1), got {rate!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{op}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    x = as_tensor(x)
    shape = mask_shape(x.shape)
    if not training or rate == 0:
        return x
    rng = _default_rng if rng is None else rng
    keep = rng.random(shape) >= rate  # each unit kept with probability 1 - rate
    mask = keep.astype(x.dtype) * (1 / (1 - float(rate)))  # the scale stays in x's dtype
    return Mask.apply(x, mask=mask)


def dropout(
    x, rate: float, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Inverted dropout: zero each value with probability `rate`, scale the rest by 1/(1-rate).

    y = x * m / (1 - rate), m ~ Bernoulli(1 - rate) per element; identity when not training
    or when rate == 0.

    x: any shape; rate in [0, 1); rng: a numpy Generator (a module-level one if None).
    Returns the shape of x.

    >>> dropout(np.ones((4, 10)), 0.5, rng=np.random.default_rng(0)).shape
    (4, 10)
    """
    return _drop("dropout", x, rate, training, rng, lambda shape: shape)


def _spatial_mask_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) < 3:
        raise ValueError(
            f"spatial_dropout: x must be (N, *spatial, C) with at least one spatial axis, "
            f"got shape {shape}"
        )
    return (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)


def spatial_dropout(
    x, rate: float, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Channel dropout (Keras's SpatialDropout, PyTorch's dropout2d): zero whole feature maps.

    y[n, ..., c] = x[n, ..., c] * m[n, c] / (1 - rate), m ~ Bernoulli(1 - rate) per sample and
    channel: neighbouring pixels are strongly correlated, so dropping single ones does little.

    x: (N, *spatial, C). Returns the shape of x.

    >>> spatial_dropout(np.ones((2, 8, 8, 16)), 0.25, rng=np.random.default_rng(0)).shape
    (2, 8, 8, 16)
    """
    return _drop("spatial_dropout", x, rate, training, rng, _spatial_mask_shape)


def _sample_mask_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[:1] + (1,) * (len(shape) - 1)


def drop_path(
    x, rate: float, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Stochastic depth: zero a residual branch for whole samples (FractalNet, EfficientNet).

    y[n] = x[n] * m[n] / (1 - rate), m ~ Bernoulli(1 - rate) per sample, as timm's drop_path.

    x: (N, ...), the output of a branch before it is added to the shortcut.
    Returns the shape of x.

    >>> drop_path(np.ones((8, 4, 4, 3)), 0.2, rng=np.random.default_rng(0)).shape
    (8, 4, 4, 3)
    """
    return _drop("drop_path", x, rate, training, rng, _sample_mask_shape)
