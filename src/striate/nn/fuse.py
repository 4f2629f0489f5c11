"""`fuse(model)`: a copy of a model for inference with each batch norm folded into the
convolution before it, as `torch.ao.quantization.fuse_modules` / `fuse_conv_bn_eval` do.

In evaluation a batch norm is a per-channel scale and shift, s = gamma / sqrt(running_var + eps)
and t = beta - running_mean * s, so bn(conv(x, w) + b) = conv(x, w * s) + (b * s + t): one layer
and one pass fewer. The transform is explicit (the model a user trains keeps its layers): where
a Sequential holds a convolution, then a BatchNorm, the copy's convolution gets the folded
weights and bias and the BatchNorm becomes an `Identity`; a ReLU right after becomes the
convolution's activation (taken in the pass that adds the bias) and an `Identity` too.
Blocks that call `striate.fused` themselves (ResNet's) already run fused in evaluation.
"""

from __future__ import annotations

import copy

import numpy as np

from .activation import ReLU
from .conv import Conv1D, Conv2D, Conv3D
from .linear import Identity
from .module import Module, Parameter, Sequential
from .norm import BatchNorm

__all__ = ["fuse"]

_CONVOLUTIONS = (Conv1D, Conv2D, Conv3D)


def _fold(conv, bn: BatchNorm) -> None:
    """conv's weight and bias made those of bn(conv(.)) in evaluation."""
    scale = 1 / np.sqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = bn.weight.data * scale
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.data
    bias = shift if conv.bias is None else conv.bias.data * scale + shift
    conv.weight = Parameter((conv.weight.data * scale).astype(conv.weight.dtype))
    conv.bias = Parameter(bias.astype(conv.weight.dtype))
    conv.use_bias = True


def fuse(model: Module) -> Module:
    """A copy of `model` in evaluation mode, each (convolution, BatchNorm[, ReLU]) run inside a
    Sequential folded into the convolution. Outputs equal the model's in evaluation to float
    rounding; the copy is for inference (training it would train the folded weights).

    >>> from striate import nn
    >>> model = nn.Sequential(nn.Conv2D(4, 3), nn.BatchNorm(), nn.ReLU())
    >>> _ = model(np.ones((1, 5, 5, 2)))
    >>> fused = nn.fuse(model)
    >>> [type(layer).__name__ for layer in fused.children()]
    ['Conv2D', 'Identity', 'Identity']
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if not isinstance(module, Sequential):
            continue
        layers = [*module.named_children(), (None, None)]  # (key, layer), a blank at the end
        for i in range(len(layers) - 2):
            (_, conv), (bn_key, bn), (relu_key, relu) = layers[i:i + 3]
            if not (isinstance(conv, _CONVOLUTIONS) and isinstance(bn, BatchNorm) and conv.built
                    and bn.built and conv.activation is None and not conv.hooked
                    and not bn.hooked):
                continue
            _fold(conv, bn)
            setattr(module, bn_key, Identity())
            if isinstance(relu, ReLU) and not relu.hooked:
                conv.set_activation("relu")
                setattr(module, relu_key, Identity())
    return fused
