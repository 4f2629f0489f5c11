"""Convolution layers: Conv1D/2D/3D, transposed, depthwise, separable and locally connected.

Each layer owns its kernel (channels-last, (*k, C_in/groups, C_out)) and bias, infers C_in on its
first call (or from `input_channels=`), validates its input, and hands the maths to the
functional op it names (`F.conv2d` for Conv2D, ...). Output sizes: O = floor((I + P_start
+ P_end - d*(K - 1) - 1) / S) + 1 (`striate.arith`).

>>> Conv2D(16, 3, padding="same")(np.zeros((2, 28, 28, 1))).shape
(2, 28, 28, 16)
"""

from __future__ import annotations

import math
import numbers

from .. import functional as F
from .. import fused
from ..arith import PADDING_WORDS, conv_geometry, ntuple, resolve_padding
from . import init
from .activation import get_activation
from .module import Module, format_args

__all__ = [
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "DepthwiseConv2D",
    "LocallyConnected1D",
    "LocallyConnected2D",
    "SeparableConv2D",
]

_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}


def _positive_int(layer: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def _check_padding(layer: str, padding, kernel, strides, dilation):
    """Reject a malformed padding at construction (its resolution needs no input size)."""
    if isinstance(padding, str) and padding.lower() not in PADDING_WORDS:
        raise ValueError(
            f"{layer}: unknown padding {padding!r}; use 'valid', 'same', 'full', an int, "
            f"{len(kernel)} ints or {len(kernel)} (start, end) pairs"
        )
    resolve_padding(padding, (1,) * len(kernel), kernel, strides, dilation, layer)
    return padding.lower() if isinstance(padding, str) else padding


def _ranked_doc(base: type, rank: int, example: str = "") -> str:
    """The N-d family's docstring for one rank ("N-d" -> "2-D", "{N}" -> "2"), plus a doctest."""
    return base.__doc__.replace("N-d", f"{rank}-D").replace("{N}", str(rank)) + example


class _ConvBase(Module):
    """Shared configuration of the convolution layers: kernel_size, strides, padding,
    dilation_rate, use_bias, activation and the initializers, validated once."""

    rank = 2

    def __init__(self, kernel_size, strides, padding, dilation_rate, use_bias, activation,
                 kernel_initializer, bias_initializer, name):
        super().__init__(name=name)
        layer, n = type(self).__name__, self.rank
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", layer)
        self.strides = ntuple(strides, n, "strides", layer)
        self.dilation_rate = ntuple(dilation_rate, n, "dilation_rate", layer)
        self.padding = _check_padding(layer, padding, self.kernel_size, self.strides,
                                      self.dilation_rate)
        self.use_bias = bool(use_bias)
        self.set_activation(activation)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        init.get(kernel_initializer, f"{layer}: kernel_initializer")
        init.get(bias_initializer, f"{layer}: bias_initializer")

    def check_input(self, x, expected_channels=None):
        """Check x's rank, build on first call, then check its channels against the kernel."""
        self._check_rank(x, self.rank + 2, _LAYOUTS[self.rank])
        self._ensure_built(x)
        expected = self.input_channels if expected_channels is None else expected_channels
        if x.shape[-1] != expected:
            raise ValueError(
                f"{self.label}: input has {x.shape[-1]} channels but the kernel expects "
                f"{expected} (input shape {tuple(x.shape)})"
            )

    def set_activation(self, activation) -> None:
        """Change the activation applied after the convolution (`nn.fuse` sets "relu")."""
        self.activation = activation
        self._activation = get_activation(activation, f"{type(self).__name__}: activation")

    def _activate(self, y):
        return y if self._activation is None else self._activation(y)

    def _common_repr(self) -> list[tuple[str, object, object]]:
        n = self.rank
        return [
            ("strides", self.strides, (1,) * n),
            ("padding", self.padding, "valid"),
            ("dilation_rate", self.dilation_rate, (1,) * n),
        ]

    def _tail_repr(self) -> list[tuple[str, object, object]]:
        return [
            ("use_bias", self.use_bias, True),
            ("activation", self.activation, None),
            ("kernel_initializer", self.kernel_initializer, "glorot_uniform"),
            ("bias_initializer", self.bias_initializer, "zeros"),
        ]

    def _make_bias(self, shape, fans) -> None:
        self.bias = self._parameter(self.bias_initializer, shape, fans) if self.use_bias else None


class _Conv(_ConvBase):
    """N-d convolution layer: y = activation(conv(x, weight) + bias), see `F.conv{N}d`.

    filters: C_out; kernel_size, strides, dilation_rate: int or one per spatial axis;
    padding: 'valid' | 'same' | 'full' | int | per-axis ints | per-axis (start, end) pairs;
    groups: splits C_in and C_out into groups convolved separately (must divide both);
    flip: true convolution instead of cross-correlation; input_channels: build eagerly.
    Parameters: weight (*kernel_size, C_in/groups, filters), bias (filters,).
    """

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 groups: int = 1, use_bias: bool = True, activation=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 flip: bool = False, input_channels: int | None = None, *,
                 name: str | None = None):
        layer = type(self).__name__
        filters = _positive_int(layer, "filters", filters)
        groups = _positive_int(layer, "groups", groups)
        if filters % groups:
            raise ValueError(
                f"{layer}: groups must divide filters; Received: groups={groups}, "
                f"filters={filters}"
            )
        super().__init__(kernel_size, strides, padding, dilation_rate, use_bias, activation,
                         kernel_initializer, bias_initializer, name)
        self.filters, self.groups, self.flip = filters, groups, bool(flip)
        self.built = False
        self.input_channels = None
        if input_channels is not None:
            channels = _positive_int(layer, "input_channels", input_channels)
            self._build((1,) * (self.rank + 1) + (channels,))
            self.built = True

    def _build(self, input_shape) -> None:
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(
                f"{self.label}: groups={self.groups} must divide the input's {channels} "
                f"channels (input shape {input_shape})"
            )
        shape = (*self.kernel_size, channels // self.groups, self.filters)
        fans = init.compute_fans(shape)
        self.input_channels = channels
        self.weight = self._parameter(self.kernel_initializer, shape, fans)
        self._make_bias((self.filters,), fans)

    def forward(self, x):
        self.check_input(x)
        args = dict(stride=self.strides, padding=self.padding, dilation=self.dilation_rate,
                    groups=self.groups, flip=self.flip)
        if self._activation is F.relu:  # the ReLU in the pass that adds the bias
            return fused.conv_relu(x, self.weight, self.bias, **args)
        return self._activate(self._function(x, self.weight, self.bias, **args))

    def extra_repr(self) -> str:
        return format_args(
            [self.filters, self.kernel_size],
            self._common_repr() + [("groups", self.groups, 1)] + self._tail_repr()
            + [("flip", self.flip, False)],
        )


class Conv1D(_Conv):
    __doc__ = _ranked_doc(_Conv, 1, """
    >>> Conv1D(8, 5, strides=2)(np.zeros((2, 100, 3))).shape
    (2, 48, 8)
    """)
    rank = 1
    _function = staticmethod(F.conv1d)


class Conv2D(_Conv):
    __doc__ = _ranked_doc(_Conv, 2, """
    >>> Conv2D(6, 5)(np.zeros((1, 32, 32, 3))).shape
    (1, 28, 28, 6)
    """)
    rank = 2
    _function = staticmethod(F.conv2d)


class Conv3D(_Conv):
    __doc__ = _ranked_doc(_Conv, 3, """
    >>> Conv3D(4, 3, padding="same")(np.zeros((1, 8, 8, 8, 2))).shape
    (1, 8, 8, 8, 4)
    """)
    rank = 3
    _function = staticmethod(F.conv3d)


class _ConvTranspose(_ConvBase):
    """N-d transposed convolution layer (upsampling by the strides), see `F.conv_transpose{N}d`.

    The kernel is that of the convolution it transposes (TensorFlow's layout): weight
    (*kernel_size, filters, C_in), bias (filters,). Output size per axis:
    (I - 1)*S - P_start - P_end + d*(K - 1) + 1 + output_padding ('same': I*S).
    """

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", output_padding=None,
                 dilation_rate=1, use_bias: bool = True, activation=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 input_channels: int | None = None, *, name: str | None = None):
        layer = type(self).__name__
        filters = _positive_int(layer, "filters", filters)
        super().__init__(kernel_size, strides, padding, dilation_rate, use_bias, activation,
                         kernel_initializer, bias_initializer, name)
        self.filters = filters
        self.output_padding = None if output_padding is None else ntuple(
            output_padding, self.rank, "output_padding", layer, minimum=0
        )
        if self.output_padding is not None and any(
            p >= s for p, s in zip(self.output_padding, self.strides, strict=True)
        ):
            raise ValueError(
                f"{layer}: output_padding {self.output_padding} must be smaller than the strides "
                f"{self.strides}"
            )
        self.built = False
        self.input_channels = None
        if input_channels is not None:
            channels = _positive_int(layer, "input_channels", input_channels)
            self._build((1,) * (self.rank + 1) + (channels,))
            self.built = True

    def _build(self, input_shape) -> None:
        shape = (*self.kernel_size, self.filters, input_shape[-1])
        # Fans from the kernel's shape, as Keras and PyTorch both do for transposed kernels
        # (fan_in = prod(k) * filters).
        fans = init.compute_fans(shape)
        self.input_channels = input_shape[-1]
        self.weight = self._parameter(self.kernel_initializer, shape, fans)
        self._make_bias((self.filters,), fans)

    def forward(self, x):
        self.check_input(x)
        y = self._function(x, self.weight, self.bias, stride=self.strides, padding=self.padding,
                           output_padding=self.output_padding, dilation=self.dilation_rate)
        return self._activate(y)

    def extra_repr(self) -> str:
        common = self._common_repr()
        common.insert(2, ("output_padding", self.output_padding, None))
        return format_args([self.filters, self.kernel_size], common + self._tail_repr())


class Conv1DTranspose(_ConvTranspose):
    __doc__ = _ranked_doc(_ConvTranspose, 1)
    rank = 1
    _function = staticmethod(F.conv_transpose1d)


class Conv2DTranspose(_ConvTranspose):
    __doc__ = _ranked_doc(_ConvTranspose, 2, """
    >>> Conv2DTranspose(3, 3, strides=2, padding="same")(np.zeros((2, 4, 4, 16))).shape
    (2, 8, 8, 3)
    """)
    rank = 2
    _function = staticmethod(F.conv_transpose2d)


class Conv3DTranspose(_ConvTranspose):
    __doc__ = _ranked_doc(_ConvTranspose, 3)
    rank = 3
    _function = staticmethod(F.conv_transpose3d)


class DepthwiseConv2D(_ConvBase):
    """Depthwise 2-D convolution: each input channel convolved with its own depth_multiplier
    filters (`F.conv2d` with groups = C_in).

    Parameters: weight (kH, kW, 1, C_in*depth_multiplier), bias (C_in*depth_multiplier,); output
    channel c*depth_multiplier + m comes from input channel c.

    >>> DepthwiseConv2D(3, padding="same")(np.zeros((2, 8, 8, 5))).shape
    (2, 8, 8, 5)
    """

    rank = 2

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier: int = 1,
                 dilation_rate=1, use_bias: bool = True, activation=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 input_channels: int | None = None, *, name: str | None = None):
        layer = type(self).__name__
        depth_multiplier = _positive_int(layer, "depth_multiplier", depth_multiplier)
        super().__init__(kernel_size, strides, padding, dilation_rate, use_bias, activation,
                         kernel_initializer, bias_initializer, name)
        self.depth_multiplier = depth_multiplier
        self.built = False
        self.input_channels = None
        if input_channels is not None:
            self._build((1, 1, 1, _positive_int(layer, "input_channels", input_channels)))
            self.built = True

    def _build(self, input_shape) -> None:
        channels = input_shape[-1]
        shape = (*self.kernel_size, 1, channels * self.depth_multiplier)
        fans = init.compute_fans(shape)
        self.input_channels = channels
        self.weight = self._parameter(self.kernel_initializer, shape, fans)
        self._make_bias((shape[-1],), fans)

    def forward(self, x):
        self.check_input(x)
        y = F.conv2d(x, self.weight, self.bias, stride=self.strides, padding=self.padding,
                     dilation=self.dilation_rate, groups=self.input_channels)
        return self._activate(y)

    def extra_repr(self) -> str:
        common = self._common_repr()
        common.insert(2, ("depth_multiplier", self.depth_multiplier, 1))
        return format_args([self.kernel_size], common + self._tail_repr())


class SeparableConv2D(_ConvBase):
    """Depthwise separable 2-D convolution (Xception, MobileNet): a depthwise convolution, then
    a 1x1 convolution mixing channels (two `F.conv2d` calls), then the bias and activation.

    Parameters: depthwise_weight (kH, kW, 1, C_in*depth_multiplier), pointwise_weight
    (1, 1, C_in*depth_multiplier, filters), bias (filters,).

    >>> SeparableConv2D(16, 3)(np.zeros((2, 8, 8, 4))).shape
    (2, 6, 6, 16)
    """

    rank = 2

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid",
                 depth_multiplier: int = 1, dilation_rate=1, use_bias: bool = True,
                 activation=None, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 input_channels: int | None = None, *, name: str | None = None):
        layer = type(self).__name__
        filters = _positive_int(layer, "filters", filters)
        depth_multiplier = _positive_int(layer, "depth_multiplier", depth_multiplier)
        super().__init__(kernel_size, strides, padding, dilation_rate, use_bias, activation,
                         kernel_initializer, bias_initializer, name)
        self.filters, self.depth_multiplier = filters, depth_multiplier
        self.built = False
        self.input_channels = None
        if input_channels is not None:
            self._build((1, 1, 1, _positive_int(layer, "input_channels", input_channels)))
            self.built = True

    def _build(self, input_shape) -> None:
        channels = input_shape[-1]
        middle = channels * self.depth_multiplier
        depthwise = (*self.kernel_size, 1, middle)
        pointwise = (1, 1, middle, self.filters)
        self.input_channels = channels
        self.depthwise_weight = self._parameter(self.kernel_initializer, depthwise)
        self.pointwise_weight = self._parameter(self.kernel_initializer, pointwise)
        self._make_bias((self.filters,), init.compute_fans(pointwise))

    def forward(self, x):
        self.check_input(x)
        y = F.conv2d(x, self.depthwise_weight, None, stride=self.strides, padding=self.padding,
                     dilation=self.dilation_rate, groups=self.input_channels)
        return self._activate(F.conv2d(y, self.pointwise_weight, self.bias))

    def extra_repr(self) -> str:
        common = self._common_repr()
        common.insert(2, ("depth_multiplier", self.depth_multiplier, 1))
        return format_args([self.filters, self.kernel_size], common + self._tail_repr())


class _LocallyConnected(_ConvBase):
    """N-d locally connected layer: a convolution with one kernel per output position (weights
    not shared), see `F.locally_connected{N}d`.

    The spatial input size is fixed at build. Parameters: weight (*out, *kernel_size, C_in,
    filters), bias (*out, filters), out per axis = floor((I + P - K) / S) + 1.
    """

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid",
                 use_bias: bool = True, activation=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", *, name: str | None = None):
        filters = _positive_int(type(self).__name__, "filters", filters)
        super().__init__(kernel_size, strides, padding, 1, use_bias, activation,
                         kernel_initializer, bias_initializer, name)
        self.filters = filters
        self.built = False
        self.input_channels = None
        self.input_size = None

    def _build(self, input_shape) -> None:
        spatial, channels = tuple(input_shape[1:-1]), input_shape[-1]
        out, _ = conv_geometry(spatial, self.kernel_size, self.strides, self.padding,
                               self.dilation_rate, op=self.label)
        taps = math.prod(self.kernel_size)
        fans = (taps * channels, taps * self.filters)  # per output position, as a convolution
        self.input_channels, self.input_size = channels, spatial
        self.weight = self._parameter(
            self.kernel_initializer, (*out, *self.kernel_size, channels, self.filters), fans
        )
        self._make_bias((*out, self.filters), fans)

    def forward(self, x):
        self.check_input(x)
        if tuple(x.shape[1:-1]) != self.input_size:
            raise ValueError(
                f"{self.label}: built for inputs of spatial size {self.input_size}, got input "
                f"shape {tuple(x.shape)} (locally connected weights depend on the input size)"
            )
        y = self._function(x, self.weight, self.bias, stride=self.strides, padding=self.padding)
        return self._activate(y)

    def extra_repr(self) -> str:
        return format_args([self.filters, self.kernel_size],
                           self._common_repr()[:2] + self._tail_repr())


class LocallyConnected1D(_LocallyConnected):
    __doc__ = _ranked_doc(_LocallyConnected, 1)
    rank = 1
    _function = staticmethod(F.locally_connected1d)


class LocallyConnected2D(_LocallyConnected):
    __doc__ = _ranked_doc(_LocallyConnected, 2, """
    >>> LocallyConnected2D(5, 3)(np.zeros((2, 6, 6, 3))).shape
    (2, 4, 4, 5)
    """)
    rank = 2
    _function = staticmethod(F.locally_connected2d)
