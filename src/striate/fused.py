"""Fused operations: several textbook steps in one pass over memory, each named for what it fuses
and equal (to float rounding, tested) to the composition it replaces.

A convolution, a batch norm, a residual add and a ReLU written one after another each read and
write the whole activation; fused, the per-channel steps run on each piece of the convolution's
output (or of the batch norm's) while it is still in cache (`kernels.channelwise.ChannelMap`).
The zoo's blocks call these where it keeps a training step fast, and say what they compute:

    out = fused.conv_bn_add_relu(self.conv2, self.bn2, out, identity)
    # = relu(bn2(conv2(out)) + identity)

On arrays and Tensors:
    conv_affine(x, w, scale, shift, residual, relu)  relu(conv(x, w) * scale + shift + residual)
    conv_relu(x, w, b)                                relu(conv(x, w) + b)
    batch_norm_relu(x, gamma, beta, ...)              relu(batch_norm(x))
    batch_norm_add_relu(x, residual, gamma, beta, ...)  relu(batch_norm(x) + residual)
On layers (a convolution layer and the `nn.BatchNorm` after it):
    conv_bn(conv, bn, x, residual=None, relu=False)   relu?(bn(conv(x)) + residual)
    conv_bn_relu(conv, bn, x), conv_bn_add_relu(conv, bn, x, residual), bn_relu(bn, x)
In evaluation, where the batch norm's statistics are constants, it is a per-channel scale and
shift (`nn.BatchNorm.evaluation_map`) taken inside the convolution's pass; in training, the
convolution and then the batch norm with the add and the ReLU in its pass. A layer with a
forward hook runs the plain composition, so that the hook sees that layer's own output.
`nn.fuse(model)` folds the batch norms into the convolutions' weights for inference instead.
"""

from __future__ import annotations

import math

import numpy as np

from . import functional as F
from .kernels import conv as kernels
from .kernels.channelwise import ChannelMap, relu_gradient
from .tensor import Op, Tensor, as_tensor

__all__ = [
    "batch_norm_add_relu",
    "batch_norm_relu",
    "bn_relu",
    "conv_affine",
    "conv_bn",
    "conv_bn_add_relu",
    "conv_bn_relu",
    "conv_relu",
]


class ConvAffine(Op):
    """y = relu?(conv(x, w) * scale + shift + residual), the per-channel map applied to each
    piece of the convolution's output right after its product."""

    def forward(self, x, w, scale, shift, residual, geometry, groups, flip, relu):
        if flip:
            w = kernels.flip(w, len(geometry.kernel))
        self.geometry, self.groups, self.flip, self.scale = geometry, groups, flip, scale
        self.relu = relu
        self.x_shape, self.w_shape = x.shape, w.shape
        need_dx, need_dw, need_dscale, _, _ = self.needs_grad
        # dw rebuilds the patches from x; dx needs w; dscale recomputes conv(x, w): both.
        self.x = x if need_dw or need_dscale else None
        self.w = w if need_dx or need_dscale else None
        if scale is not None and w.size < x.shape[0] * math.prod(geometry.out_size) * w.shape[-1]:
            # conv(x, w) * scale = conv(x, w * scale): a pass over fewer values (measured 1-8%
            # faster on ResNet-50's stem and layer1 convolutions at batch 1)
            w, scale = w * scale, None
        y = kernels.forward(x, w, geometry, groups, ChannelMap(scale, shift, residual, relu))
        self.y = y if relu and any(self.needs_grad) else None  # ReLU's gradient: where y > 0
        return y

    def backward(self, dy):
        need_dx, need_dw, need_dscale, need_dshift, need_dresidual = self.needs_grad
        # Without a scale, and with no residual that needs the masked dy, the kernels take the
        # ReLU's mask and dshift in their own pass (compiled: one pass for all three).
        in_kernels = self.scale is None and not need_dresidual
        if self.y is not None and not in_kernels:
            dy = relu_gradient(dy, self.y)
        dscale = None
        if need_dscale:  # sum over positions of conv(x, w) * dy, per channel
            z = kernels.forward(self.x, self.w, self.geometry, self.groups)
            dscale = np.einsum("ij,ij->j", z.reshape(-1, z.shape[-1]),
                               dy.reshape(-1, z.shape[-1]))
        dz = dy if self.scale is None or not (need_dx or need_dw) else ChannelMap(
            self.scale).new(dy)
        dx, dw, dshift = kernels.backward(dz, self.x, self.w, self.geometry, self.groups,
                                          self.x_shape, self.w_shape, need_dx, need_dw,
                                          need_dshift and self.scale is None,
                                          self.y if in_kernels else None)
        if dw is not None and self.flip:
            dw = kernels.flip(dw, len(self.geometry.kernel)).copy()
        if need_dshift and self.scale is not None:
            dshift = kernels.bias_grad(dy)
        return dx, dw, dscale, dshift, dy if need_dresidual else None


def conv_affine(x, w, scale=None, shift=None, residual=None, relu: bool = False, stride=1,
                padding="valid", dilation=1, groups: int = 1, flip: bool = False) -> Tensor:
    """relu?(conv(x, w) * scale + shift + residual) in the convolution's own pass: a
    convolution followed by a batch norm in evaluation (a per-channel scale and shift), a
    residual add and a ReLU.

    x: (N, *in, C_in); w: (*k, C_in/groups, C_out); scale, shift: (C_out,) or None; residual:
    the output's shape or None. The convolution's arguments as `F.conv2d` (1-D to 3-D by w).

    >>> conv_affine(np.ones((1, 5, 5, 2)), np.ones((3, 3, 2, 4)), scale=np.full(4, 0.5),
    ...             relu=True).shape
    (1, 3, 3, 4)
    """
    x, w = as_tensor(x), as_tensor(w)
    n = w.ndim - 2
    op = f"conv_affine ({n}-D)" if n in (1, 2, 3) else "conv_affine"
    if n not in (1, 2, 3):
        raise ValueError(f"{op}: w must be 3-D to 5-D (*k, C_in/groups, C_out), got shape "
                         f"{w.shape}")
    x, w, shift, groups = F.conv.check_conv(op, n, x, w, shift, groups)
    g = F.conv.conv_geometry_of(op, n, x, w, stride, padding, dilation)
    per_channel = f"one per output channel of kernel shape {w.shape}"
    scale = F.conv.check_bias(op, scale, (w.shape[-1],), x.dtype, per_channel, name="scale")
    residual = F.conv.check_bias(op, residual, (x.shape[0], *g.out_size, w.shape[-1]), x.dtype,
                                 "the output's shape", name="residual")
    return ConvAffine.apply(x, w, scale, shift, residual, geometry=g, groups=groups,
                            flip=bool(flip), relu=bool(relu))


def conv_relu(x, w, b=None, stride=1, padding="valid", dilation=1, groups: int = 1,
              flip: bool = False) -> Tensor:
    """relu(conv(x, w) + b), the ReLU taken in the pass that adds the bias (a ReLU of its own
    would read and write the whole output again). Arguments as `F.conv2d`.

    >>> float(conv_relu(np.ones((1, 5, 5, 2)), -np.ones((3, 3, 2, 4))).data.max())
    0.0
    """
    return conv_affine(x, w, None, b, None, True, stride, padding, dilation, groups, flip)


def _batch_norm_ending(op, x, residual, gamma, beta, running_mean, running_var, training,
                       momentum, eps, relu: bool = True) -> Tensor:
    x, gamma, beta, options = F.norm.check_batch_norm(op, x, gamma, beta, running_mean,
                                                      running_var, training, momentum, eps)
    if residual is not None:
        residual = as_tensor(residual)
        if residual.shape != x.shape:
            raise ValueError(f"{op}: residual has shape {residual.shape} but x has {x.shape}; "
                             f"they must be equal")
    return F.norm.BatchNorm.apply(x, gamma, beta, residual, relu=relu, **options)


def batch_norm_relu(x, gamma=None, beta=None, running_mean=None, running_var=None,
                    training: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """relu(batch_norm(x)), the ReLU taken in the batch norm's last pass. Arguments as
    `F.batch_norm`.

    >>> float(batch_norm_relu(np.random.randn(8, 4, 4, 3)).data.min())
    0.0
    """
    return _batch_norm_ending("batch_norm_relu", x, None, gamma, beta, running_mean,
                              running_var, training, momentum, eps)


def batch_norm_add_relu(x, residual, gamma=None, beta=None, running_mean=None, running_var=None,
                        training: bool = True, momentum: float = 0.1, eps: float = 1e-5
                        ) -> Tensor:
    """relu(batch_norm(x) + residual): a ResNet block's ending (its shortcut added, the sum
    rectified) in the batch norm's last pass. residual: the shape of x; the rest as
    `F.batch_norm`.

    >>> batch_norm_add_relu(np.random.randn(8, 3), np.ones((8, 3))).shape
    (8, 3)
    """
    return _batch_norm_ending("batch_norm_add_relu", x, residual, gamma, beta, running_mean,
                              running_var, training, momentum, eps)


# ===== on layers ===============================================================================
def _compose(conv, bn, x, residual, relu: bool):
    """The plain composition relu?(bn(conv(x)) + residual), layer by layer (conv may be None)."""
    y = bn(x if conv is None else conv(x))
    if residual is not None:
        y = y + residual
    return F.relu(y) if relu else y


def _bn_ending(bn, x, residual, relu: bool) -> Tensor:
    """relu?(bn(x) + residual) for an `nn.BatchNorm` layer, in the batch norm's pass."""
    if bn.hooked or not bn.fusable:
        return _compose(None, bn, x, residual, relu)
    bn.check_input(as_tensor(x))
    return _batch_norm_ending(bn.label, x, residual, bn.weight, bn.bias, bn.running_mean,
                              bn.running_var, bn.training, bn.momentum, bn.eps, relu)


def bn_relu(bn, x, residual=None) -> Tensor:
    """relu(bn(x) + residual) for an `nn.BatchNorm` layer bn (residual optional), in the batch
    norm's pass (`batch_norm_add_relu`)."""
    return _bn_ending(bn, x, residual, True)


def conv_bn(conv, bn, x, residual=None, relu: bool = False) -> Tensor:
    """relu?(bn(conv(x)) + residual) for a convolution layer and the `nn.BatchNorm` after it.

    In evaluation the batch norm is a per-channel scale and shift taken inside the
    convolution's pass with the residual and the ReLU (`conv_affine`); in training the
    convolution, then the batch norm with the add and the ReLU in its pass (`bn_relu`). A
    convolution with an activation of its own, a layer with a forward hook, or a batch norm
    that is not `fusable` (a synchronised one in training) runs the plain composition."""
    x = as_tensor(x)
    if conv.activation is not None or conv.hooked or bn.hooked or not bn.fusable:
        return _compose(conv, bn, x, residual, relu)
    if bn.training:
        return _bn_ending(bn, conv(x), residual, relu)
    conv.check_input(x)
    if not bn.built:  # built for the convolution's filters, as its first call would
        bn.build((conv.filters,))
    if bn.input_channels != conv.filters:
        return _compose(conv, bn, x, residual, relu)  # the norm's own error names the layer
    scale, shift = bn.evaluation_map()
    if conv.bias is not None:
        shift = conv.bias * scale + shift
    return conv_affine(x, conv.weight, scale, shift, residual, relu, conv.strides, conv.padding,
                       conv.dilation_rate, conv.groups, conv.flip)


def conv_bn_relu(conv, bn, x) -> Tensor:
    """relu(bn(conv(x))): `conv_bn` with the ReLU."""
    return conv_bn(conv, bn, x, relu=True)


def conv_bn_add_relu(conv, bn, x, residual) -> Tensor:
    """relu(bn(conv(x)) + residual): `conv_bn` ending a residual block."""
    return conv_bn(conv, bn, x, residual, relu=True)
