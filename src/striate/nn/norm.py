"""Normalisation layers: BatchNorm, LayerNorm, GroupNorm, LocalResponseNorm (channels-last).

>>> BatchNorm()(np.random.default_rng(0).standard_normal((8, 4, 4, 3))).shape
(8, 4, 4, 3)
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from ..tensor import is_grad_enabled
from .module import Module, format_args

__all__ = ["BatchNorm", "GroupNorm", "LayerNorm", "LocalResponseNorm"]


def _number(layer: str, name: str, value, low: float, high: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bound = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{layer}: {name} must be a number {bound}, got {value!r}")
    return float(value)


class _ChannelAffine(Module):
    """A normalisation with a learnable per-channel scale `weight` (gamma) and shift `bias`
    (beta), built from the input's last axis."""

    def __init__(self, eps: float, center: bool, scale: bool, input_channels, name):
        super().__init__(name=name)
        layer = type(self).__name__
        self.eps = _number(layer, "eps", eps, 0.0)
        self.center, self.scale = bool(center), bool(scale)
        self.built = False
        self.input_channels = None
        if input_channels is not None:
            if isinstance(input_channels, bool) or not isinstance(input_channels, int) \
                    or input_channels < 1:
                raise ValueError(f"{layer}: input_channels must be a positive int, "
                                 f"got {input_channels!r}")
            self._build((1, input_channels))
            self.built = True

    def _build(self, input_shape) -> None:
        channels = input_shape[-1]
        self.input_channels = channels
        self.weight = self._parameter("ones", (channels,)) if self.scale else None
        self.bias = self._parameter("zeros", (channels,)) if self.center else None

    def check_input(self, x, min_ndim: int = 2) -> None:
        if x.ndim < min_ndim:
            raise ValueError(
                f"{self.label}: expected an input (N, ..., C), got shape {tuple(x.shape)}"
            )
        self._ensure_built(x)
        if x.shape[-1] != self.input_channels:
            raise ValueError(
                f"{self.label}: input has {x.shape[-1]} channels but the layer was built for "
                f"{self.input_channels} (input shape {tuple(x.shape)})"
            )

    def _affine_repr(self) -> list[tuple[str, object, object]]:
        return [("eps", self.eps, 1e-5), ("center", self.center, True),
                ("scale", self.scale, True)]


class BatchNorm(_ChannelAffine):
    """Batch normalisation over every axis but the channels, `F.batch_norm`.

    Training normalises with the batch's statistics and updates the running estimates,
    running = (1 - momentum) * running + momentum * batch: PyTorch's convention, so Keras's
    momentum=0.99 is momentum=0.01 here. Evaluation uses the running estimates.
    Parameters: weight (gamma, C) if scale, bias (beta, C) if center; buffers running_mean (C,),
    running_var (C,). Works for (N, C), (N, L, C), (N, H, W, C), (N, D, H, W, C).
    (`striate.fused.bn_relu` and `conv_bn` take a ReLU, a residual and in evaluation the
    convolution before it into its pass.)

    >>> BatchNorm(momentum=0.01, input_channels=16).running_var.shape
    (16,)
    """

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, center: bool = True,
                 scale: bool = True, input_channels: int | None = None, *,
                 name: str | None = None):
        momentum = _number("BatchNorm", "momentum", momentum, 0.0, 1.0)
        super().__init__(eps, center, scale, input_channels, name)
        self.momentum = momentum

    @property
    def fusable(self) -> bool:
        """Whether `striate.fused` may compute this batch norm inside its own pass (a subclass
        that computes it otherwise, `distributed.SyncBatchNorm` in training, says no)."""
        return True

    def _build(self, input_shape) -> None:
        super()._build(input_shape)
        channels = input_shape[-1]
        self.register_buffer("running_mean", np.zeros(channels, dtype=self._dtype))
        self.register_buffer("running_var", np.ones(channels, dtype=self._dtype))

    def forward(self, x):
        self.check_input(x)
        return F.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            training=self.training, momentum=self.momentum, eps=self.eps)

    def evaluation_map(self):
        """(scale, shift), each (C,): evaluation's batch norm as y = x * scale + shift, with
        scale = weight / sqrt(running_var + eps) and shift = bias - running_mean * scale:
        Tensors that carry the gradient to weight and bias, or plain arrays where no gradient
        is recorded (each Tensor op costs microseconds, and ResNet-50 makes 53 of these)."""
        weight, bias = self.weight, self.bias
        if not is_grad_enabled():
            weight, bias = (None if p is None else p.data for p in (weight, bias))
        scale = 1 / np.sqrt(self.running_var + self.eps)
        if weight is not None:
            scale = weight * scale
        shift = -self.running_mean * scale
        return scale, shift if bias is None else shift + bias

    def extra_repr(self) -> str:
        return format_args(keywords=[("momentum", self.momentum, 0.1)] + self._affine_repr())


class LayerNorm(_ChannelAffine):
    """Layer normalisation over the last axis, at every position, `F.layer_norm`.

    Parameters: weight (C,) if scale, bias (C,) if center.

    >>> LayerNorm()(np.ones((2, 7, 16))).shape
    (2, 7, 16)
    """

    def __init__(self, eps: float = 1e-5, center: bool = True, scale: bool = True,
                 input_channels: int | None = None, *, name: str | None = None):
        super().__init__(eps, center, scale, input_channels, name)

    def forward(self, x):
        self.check_input(x, min_ndim=1)
        return F.layer_norm(x, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return format_args(keywords=self._affine_repr())


class GroupNorm(_ChannelAffine):
    """Group normalisation: statistics per sample over the spatial axes and each of `groups`
    groups of channels, `F.group_norm`. Parameters: weight (C,), bias (C,).

    >>> GroupNorm(4)(np.ones((2, 5, 5, 8))).shape
    (2, 5, 5, 8)
    """

    def __init__(self, groups: int, eps: float = 1e-5, center: bool = True, scale: bool = True,
                 input_channels: int | None = None, *, name: str | None = None):
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"GroupNorm: groups must be a positive int, got {groups!r}")
        if input_channels is not None and isinstance(input_channels, int) \
                and input_channels % groups:
            raise ValueError(f"GroupNorm: groups must divide input_channels; Received: "
                             f"groups={groups}, input_channels={input_channels}")
        super().__init__(eps, center, scale, input_channels, name)
        self.groups = groups

    def forward(self, x):
        self.check_input(x)
        if x.shape[-1] % self.groups:
            raise ValueError(f"{self.label}: groups={self.groups} must divide the input's "
                             f"{x.shape[-1]} channels (input shape {tuple(x.shape)})")
        return F.group_norm(x, self.groups, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return format_args([self.groups], self._affine_repr())


class LocalResponseNorm(Module):
    """Local response normalisation across channels (AlexNet), `F.local_response_norm`, with
    PyTorch's definition (alpha is divided by size):
    y_c = x_c / (k + alpha/size * sum of x^2 over the size channels around c)^beta.

    AlexNet's paper layer is LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0).

    >>> LocalResponseNorm(5, alpha=5e-4, k=2.0)(np.ones((1, 3, 3, 8))).shape
    (1, 3, 3, 8)
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                 *, name: str | None = None):
        super().__init__(name=name)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"LocalResponseNorm: size must be a positive int, got {size!r}")
        self.size = size
        self.alpha = _number("LocalResponseNorm", "alpha", alpha, 0.0)
        self.beta = _number("LocalResponseNorm", "beta", beta, 0.0)
        self.k = _number("LocalResponseNorm", "k", k, 0.0)

    def forward(self, x):
        if x.ndim < 2:
            raise ValueError(
                f"{self.label}: expected an input (N, ..., C), got shape {tuple(x.shape)}"
            )
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return format_args(keywords=[("size", self.size, 5), ("alpha", self.alpha, 1e-4),
                                     ("beta", self.beta, 0.75), ("k", self.k, 1.0)])
