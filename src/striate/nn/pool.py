"""Pooling layers: sliding-window (max, average, L_p, Gaussian), global, adaptive, and maxout.

No parameters; each layer validates its configuration once and its input rank on every call,
then calls the functional op it names. Output size per axis: floor((I + P_start + P_end - K) / S)
+ 1, strides defaulting to pool_size; max and average pools take PyTorch's ceil_mode=True
(ceil instead of floor, see `arith.ceil_mode_padding`).

>>> MaxPool2D(2)(np.zeros((2, 28, 28, 6))).shape
(2, 14, 14, 6)
"""

from __future__ import annotations

import numbers

from .. import functional as F
from ..arith import ceil_mode_padding, ntuple, resolve_padding
from ..tensor import Tensor
from .module import Module, format_args

__all__ = [
    "AdaptiveAvgPool1D",
    "AdaptiveAvgPool2D",
    "AdaptiveAvgPool3D",
    "AdaptiveMaxPool1D",
    "AdaptiveMaxPool2D",
    "AdaptiveMaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GaussianPool2D",
    "GlobalAveragePooling",
    "GlobalMaxPooling",
    "LPPool1D",
    "LPPool2D",
    "LPPool3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "Maxout",
]

_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}


class _Pool(Module):
    """Sliding-window pooling over the spatial axes, see the functional op named by the layer.

    pool_size: int or one per spatial axis; strides: likewise, default pool_size;
    padding: 'valid' | 'same' | 'full' | int | per-axis ints | per-axis (start, end) pairs.
    """

    rank = 2

    def __init__(self, pool_size, strides=None, padding="valid", *, name: str | None = None):
        super().__init__(name=name)
        layer, n = type(self).__name__, self.rank
        self.pool_size = ntuple(pool_size, n, "pool_size", layer)
        self.strides = self.pool_size if strides is None else ntuple(strides, n, "strides", layer)
        resolve_padding(padding, (1,) * n, self.pool_size, self.strides, (1,) * n, layer)
        self.padding = padding.lower() if isinstance(padding, str) else padding

    def _pool(self, x, **options) -> Tensor:
        self._check_rank(x, self.rank + 2, _LAYOUTS[self.rank])
        return type(self)._function(x, size=self.pool_size, stride=self.strides,
                                    padding=self._padding(x), **options)

    def _padding(self, x):
        """The padding handed to the functional op for input x."""
        return self.padding

    def forward(self, x):
        return self._pool(x)

    def _repr_args(self) -> list[tuple[str, object, object]]:
        return [("strides", self.strides, self.pool_size), ("padding", self.padding, "valid")]

    def extra_repr(self) -> str:
        return format_args([self.pool_size], self._repr_args())


def _flag(layer: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{layer}: {name} must be True or False, got {value!r}")
    return value


class _CeilPool(_Pool):
    """With ceil_mode=True, PyTorch's ceil_mode: O = ceil((I + P - K) / S) + 1, keeping a last
    partial window when it starts inside the input or the start padding (`ceil_mode_padding`
    grows the end padding per input size)."""

    def __init__(self, pool_size, strides=None, padding="valid", *, ceil_mode: bool = False,
                 name: str | None = None):
        super().__init__(pool_size, strides, padding, name=name)
        self.ceil_mode = _flag(type(self).__name__, "ceil_mode", ceil_mode)

    def _pads(self, x) -> tuple[tuple[int, int], ...]:
        """The layer's padding as one (start, end) pair per spatial axis of x."""
        return resolve_padding(self.padding, x.shape[1:-1], self.pool_size, self.strides,
                               (1,) * self.rank, self.label)

    def _padding(self, x):
        if not self.ceil_mode:
            return self.padding
        return tuple(
            ceil_mode_padding(size, k, s, pad, op=self.label)
            for size, k, s, pad in zip(x.shape[1:-1], self.pool_size, self.strides, self._pads(x),
                                       strict=True)
        )

    def _repr_args(self):
        return super()._repr_args() + [("ceil_mode", self.ceil_mode, False)]


class _MaxPool(_CeilPool):
    """max pooling: the largest value in each window; padding never wins."""


class _AvgPool(_CeilPool):
    """average pooling: the mean of each window; padding is left out of the count unless
    count_include_pad (ceil_mode's extra end padding never counts, as in PyTorch)."""

    def __init__(self, pool_size, strides=None, padding="valid", count_include_pad: bool = False,
                 *, ceil_mode: bool = False, name: str | None = None):
        super().__init__(pool_size, strides, padding, ceil_mode=ceil_mode, name=name)
        self.count_include_pad = _flag(type(self).__name__, "count_include_pad",
                                       count_include_pad)

    def forward(self, x):
        if not (self.ceil_mode and self.count_include_pad):
            return self._pool(x, count_include_pad=self.count_include_pad)
        # The layer's padding counts, ceil_mode's extra end does not: pad with zeros that count
        # as input, then pool with only the extra end as (uncounted) padding.
        self._check_rank(x, self.rank + 2, _LAYOUTS[self.rank])
        pads, ceil = self._pads(x), self._padding(x)
        x = F.pad(x, ((0, 0), *pads, (0, 0)))
        extra = tuple((0, c_end - end) for (_, end), (_, c_end) in zip(pads, ceil, strict=True))
        return type(self)._function(x, size=self.pool_size, stride=self.strides, padding=extra)

    def _repr_args(self):
        return super()._repr_args() + [("count_include_pad", self.count_include_pad, False)]


def _real(layer: str, name: str, value, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > minimum:
        raise ValueError(f"{layer}: {name} must be a number > {minimum:g}, got {value!r}")
    return float(value)


class _LPPool(_Pool):
    """L_p pooling: (sum of x^p over each window)^(1/p); p=1 is sum pooling, large p nears max."""

    def __init__(self, p: float, pool_size, strides=None, padding="valid", *,
                 name: str | None = None):
        super().__init__(pool_size, strides, padding, name=name)
        self.p = _real(type(self).__name__, "p", p, 0)

    def forward(self, x):
        return self._pool(x, p=self.p)

    def extra_repr(self) -> str:
        return format_args([self.p, self.pool_size], self._repr_args())


class _GaussianPool(_Pool):
    """Gaussian-weighted average pooling: window entries weighted by exp(-d^2 / (2 sigma^2)) of
    their distance d from the window centre."""

    def __init__(self, pool_size, strides=None, padding="valid", sigma: float = 1.0, *,
                 name: str | None = None):
        super().__init__(pool_size, strides, padding, name=name)
        self.sigma = _real(type(self).__name__, "sigma", sigma, 0)

    def forward(self, x):
        return self._pool(x, sigma=self.sigma)

    def _repr_args(self):
        return super()._repr_args() + [("sigma", self.sigma, 1.0)]


class MaxPool1D(_MaxPool):
    """1-D max pooling, `F.max_pool1d`: (N, L, C) -> (N, L_out, C)."""

    rank = 1
    _function = staticmethod(F.max_pool1d)


class MaxPool2D(_MaxPool):
    """2-D max pooling, `F.max_pool2d`: (N, H, W, C) -> (N, H_out, W_out, C).

    >>> MaxPool2D(3, strides=2)(np.zeros((1, 55, 55, 96))).shape
    (1, 27, 27, 96)
    """

    rank = 2
    _function = staticmethod(F.max_pool2d)


class MaxPool3D(_MaxPool):
    """3-D max pooling, `F.max_pool3d`: (N, D, H, W, C) -> (N, D_out, H_out, W_out, C)."""

    rank = 3
    _function = staticmethod(F.max_pool3d)


class AvgPool1D(_AvgPool):
    """1-D average pooling, `F.avg_pool1d`: (N, L, C) -> (N, L_out, C)."""

    rank = 1
    _function = staticmethod(F.avg_pool1d)


class AvgPool2D(_AvgPool):
    """2-D average pooling, `F.avg_pool2d`: (N, H, W, C) -> (N, H_out, W_out, C).

    >>> AvgPool2D(2)(np.zeros((1, 28, 28, 6))).shape
    (1, 14, 14, 6)
    """

    rank = 2
    _function = staticmethod(F.avg_pool2d)


class AvgPool3D(_AvgPool):
    """3-D average pooling, `F.avg_pool3d`: (N, D, H, W, C) -> (N, D_out, H_out, W_out, C)."""

    rank = 3
    _function = staticmethod(F.avg_pool3d)


class LPPool1D(_LPPool):
    """1-D L_p pooling, `F.lp_pool1d`: (N, L, C) -> (N, L_out, C)."""

    rank = 1
    _function = staticmethod(F.lp_pool1d)


class LPPool2D(_LPPool):
    """2-D L_p pooling, `F.lp_pool2d`: (N, H, W, C) -> (N, H_out, W_out, C).

    >>> LPPool2D(2, 2)(np.ones((1, 4, 4, 3))).shape
    (1, 2, 2, 3)
    """

    rank = 2
    _function = staticmethod(F.lp_pool2d)


class LPPool3D(_LPPool):
    """3-D L_p pooling, `F.lp_pool3d`: (N, D, H, W, C) -> (N, D_out, H_out, W_out, C)."""

    rank = 3
    _function = staticmethod(F.lp_pool3d)


class GaussianPool2D(_GaussianPool):
    """2-D Gaussian-weighted pooling, `F.gaussian_pool2d`: (N, H, W, C) -> (N, H_out, W_out, C).

    >>> GaussianPool2D(3, strides=2, padding="same", sigma=0.8)(np.ones((1, 8, 8, 2))).shape
    (1, 4, 4, 2)
    """

    rank = 2
    _function = staticmethod(F.gaussian_pool2d)


class _Global(Module):
    """Global pooling over every spatial axis: (N, *spatial, C) -> (N, C), or (N, 1, ..., 1, C)
    with keepdims."""

    def __init__(self, keepdims: bool = False, *, name: str | None = None):
        super().__init__(name=name)
        self.keepdims = _flag(type(self).__name__, "keepdims", keepdims)

    def forward(self, x):
        if x.ndim < 3:
            raise ValueError(
                f"{self.label}: expected an input (N, *spatial, C) with at least one spatial "
                f"axis, got shape {tuple(x.shape)}"
            )
        y = type(self)._function(x)
        return y.reshape(x.shape[0], *(1,) * (x.ndim - 2), x.shape[-1]) if self.keepdims else y

    def extra_repr(self) -> str:
        return format_args(keywords=[("keepdims", self.keepdims, False)])


class GlobalAveragePooling(_Global):
    __doc__ = "Average " + _Global.__doc__[0].lower() + _Global.__doc__[1:] + """
    `F.global_avg_pool`.

    >>> GlobalAveragePooling()(np.zeros((2, 7, 7, 512))).shape
    (2, 512)
    """
    _function = staticmethod(F.global_avg_pool)


class GlobalMaxPooling(_Global):
    __doc__ = "Max " + _Global.__doc__[0].lower() + _Global.__doc__[1:] + """
    `F.global_max_pool`.
    """
    _function = staticmethod(F.global_max_pool)


class _Adaptive(Module):
    """Adaptive pooling to a fixed output size, with PyTorch's windows: output i pools
    [floor(i*I/O), ceil((i+1)*I/O)). output_size: int or one per spatial axis (None keeps the
    input's size on that axis)."""

    rank = 2

    def __init__(self, output_size, *, name: str | None = None):
        super().__init__(name=name)
        layer, n = type(self).__name__, self.rank
        if isinstance(output_size, (tuple, list)) and len(output_size) == n:
            self.output_size = tuple(
                None if s is None else ntuple(s, 1, "output_size", layer)[0] for s in output_size
            )
        else:
            self.output_size = ntuple(output_size, n, "output_size", layer)

    def forward(self, x):
        self._check_rank(x, self.rank + 2, _LAYOUTS[self.rank])
        return type(self)._function(x, self.output_size)

    def extra_repr(self) -> str:
        return format_args([self.output_size])


class AdaptiveAvgPool1D(_Adaptive):
    """1-D adaptive average pooling, `F.adaptive_avg_pool1d`: (N, L, C) -> output_size."""

    rank = 1
    _function = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2D(_Adaptive):
    """2-D adaptive average pooling, `F.adaptive_avg_pool2d`: (N, H, W, C) -> output_size.

    >>> AdaptiveAvgPool2D(7)(np.zeros((1, 13, 13, 8))).shape
    (1, 7, 7, 8)
    """

    rank = 2
    _function = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool3D(_Adaptive):
    """3-D adaptive average pooling, `F.adaptive_avg_pool3d`: (N, D, H, W, C) -> output_size."""

    rank = 3
    _function = staticmethod(F.adaptive_avg_pool3d)


class AdaptiveMaxPool1D(_Adaptive):
    """1-D adaptive max pooling, `F.adaptive_max_pool1d`: (N, L, C) -> output_size."""

    rank = 1
    _function = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2D(_Adaptive):
    """2-D adaptive max pooling, `F.adaptive_max_pool2d`: (N, H, W, C) -> output_size."""

    rank = 2
    _function = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool3D(_Adaptive):
    """3-D adaptive max pooling, `F.adaptive_max_pool3d`: (N, D, H, W, C) -> output_size."""

    rank = 3
    _function = staticmethod(F.adaptive_max_pool3d)


class Maxout(Module):
    """Maxout: the maximum over each group of `pieces` consecutive channels, `F.maxout`.

    (..., C) -> (..., C / pieces).

    >>> Maxout(3)(np.zeros((2, 5, 5, 12))).shape
    (2, 5, 5, 4)
    """

    def __init__(self, pieces: int, *, name: str | None = None):
        super().__init__(name=name)
        (self.pieces,) = ntuple(pieces, 1, "pieces", "Maxout")

    def forward(self, x):
        if x.shape[-1] % self.pieces:
            raise ValueError(
                f"{self.label}: the {x.shape[-1]} channels of input shape {tuple(x.shape)} do "
                f"not split into groups of pieces={self.pieces}"
            )
        return F.maxout(x, self.pieces)

    def extra_repr(self) -> str:
        return format_args([self.pieces])
