"""Dropout layers: single units (Dropout), whole channels (SpatialDropout), whole samples
(DropPath). Active in training mode only; the identity in evaluation.

Each layer owns a NumPy Generator, seeded from `seed` or, when seed is None, from
`striate.nn.init.generator()`, so that `init.set_seed(s)` before building a model makes its
dropout masks reproducible too. A checkpoint saves `layer.rng_state()` and restores it with
`layer.set_rng_state(state)` to resume the same sequence of masks. While a batch of a
`DataLoader(per_sample_rng=True)` is in use, a layer in training draws each sample's mask from
(seed, epoch, example index, layer) instead (`striate.data.keyed`), so the masks do not depend
on the batch size or on the number of processes of a data-parallel run.

>>> layer = Dropout(0.5, seed=0)
>>> layer(np.ones((2, 4))).shape
(2, 4)
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from ..data.keyed import current_keys
from . import init
from .module import Module, format_args

__all__ = ["DropPath", "Dropout", "SpatialDropout"]


class _Drop(Module):
    """Inverted dropout at `rate` in [0, 1): kept values are scaled by 1 / (1 - rate)."""

    def __init__(self, rate: float, seed: int | None = None, *, name: str | None = None):
        super().__init__(name=name)
        layer = type(self).__name__
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"{layer}: rate must be in [0, 1), got {rate!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"{layer}: seed must be an int or None, got {seed!r}")
        self.rate, self.seed = float(rate), seed
        # the layer's stream among the keyed draws of a batch (below), fixed at construction
        self._stream = int(seed if seed is not None else init.generator().integers(2**63))
        self._rng = np.random.default_rng(self._stream)

    def rng_state(self) -> dict:
        """The state of this layer's generator (a dict of plain values, for checkpoints)."""
        return self._rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        """Restore a state from `rng_state()`."""
        self._rng.bit_generator.state = state

    def forward(self, x):
        rng = self._rng
        keys = current_keys() if self.training else None
        if keys is not None and len(keys) == x.shape[0]:
            # a keyed loader's batch (`DataLoader(per_sample_rng=True)`): each sample's mask
            # depends on (seed, epoch, example index, this layer) only
            rng = keys.generator(self._stream)
        return type(self)._function(x, self.rate, training=self.training, rng=rng)

    def extra_repr(self) -> str:
        return format_args([self.rate], [("seed", self.seed, None)])


class Dropout(_Drop):
    __doc__ = "Unit dropout, `F.dropout`: " + _Drop.__doc__ + """

    >>> Dropout(0.5)
    Dropout(0.5)
    """
    _function = staticmethod(F.dropout)


class SpatialDropout(_Drop):
    __doc__ = "Channel dropout, `F.spatial_dropout`: whole feature maps of (N, *spatial, C). " \
        + _Drop.__doc__
    _function = staticmethod(F.spatial_dropout)


class DropPath(_Drop):
    __doc__ = "Stochastic depth, `F.drop_path`: a residual branch zeroed for whole samples. " \
        + _Drop.__doc__
    _function = staticmethod(F.drop_path)
