"""Normaliser-free ResNet-50 (Brock et al. 2021, "Characterizing signal propagation to close the
performance gap in unnormalized ResNets"), https://arxiv.org/abs/2101.08692

No batch norm anywhere. Instead:

- every convolution is a WSConv2D: scaled weight standardisation (each output channel's weights
  get zero mean and variance 1/fan_in) times a learnable gain per output channel, plus a bias;
  `F.weight_standardize` does the maths;
- activations are scaled so that a unit-variance Gaussian input keeps unit variance:
  gamma * relu(x) with gamma = sqrt(2 / (1 - 1/pi)) ~ 1.7129;
- residual blocks compute h_{i+1} = h_i + alpha * f_i(h_i / beta_i) with alpha = 0.2 and
  beta_i = sqrt(Var(h_i)), the expected standard deviation tracked analytically:
  Var(h_{i+1}) = Var(h_i) + alpha^2, reset to 1 + alpha^2 after the first block of a stage,
  whose shortcut (a WSConv2D on the normalised input) restarts the variance at 1;
- f_i is a pre-activation bottleneck: act -> 1x1 -> act -> 3x3 (stride) -> act -> 1x1.
  No SkipInit gain on the branch.

Choices where the paper leaves room (they follow timm's nf_resnet50 except where noted): a
7x7/2 WSConv2D stem of 64 channels and a 3x3/2 max pool without an activation between them (the
first block activates); projection shortcuts are a strided 1x1 WSConv2D (ResNet-50's, where timm
average-pools first); a final scaled ReLU before global average pooling and the dense
classifier; no dropout. Stage depths (3, 4, 6, 3), widths 256, 512, 1024, 2048 as ResNet-50.

Parameters: 25,557,032, exactly ResNet-50's count: every batch norm's (gamma, beta) pair is
replaced by the gain and the bias of the convolution it followed.

>>> from striate import models
>>> models.create("nf_resnet50").num_parameters()
25557032
"""

from __future__ import annotations

import math

from .. import functional as F
from .. import nn
from ..arith import ntuple
from .registry import register

# 1 / std(relu(z)) for z ~ N(0, 1): Var(relu(z)) = (1 - 1/pi) / 2. (timm hard-codes 1.7139, a
# sampled estimate of the same constant.)
GAMMA_RELU = math.sqrt(2 / (1 - 1 / math.pi))


def scaled_relu(x):
    """gamma * relu(x): keeps a unit-variance Gaussian input at unit variance."""
    return F.relu(x) * GAMMA_RELU


class WSConv2D(nn.Module):
    """Convolution with a scaled-weight-standardised kernel, a per-channel gain, and a bias.

    y = conv2d(x, weight_standardize(weight, gain), bias); weight (k, k, C_in, filters),
    gain and bias (filters,). Padding is an int (symmetric) or any form `F.conv2d` accepts.
    """

    torch_kernels = ("weight",)  # interop: a convolution kernel, torch's (C_out, C_in, kH, kW)

    def __init__(self, in_channels: int, filters: int, kernel_size: int, strides: int = 1,
                 padding=0):
        super().__init__()
        kernel = ntuple(kernel_size, 2, "kernel_size", "WSConv2D")
        self.strides, self.padding = strides, padding
        # standardisation removes the init's scale: only its directions matter
        self.weight = self._parameter("lecun_normal", (*kernel, in_channels, filters))
        self.gain = self._parameter("ones", (filters,))
        self.bias = self._parameter("zeros", (filters,))

    def forward(self, x):
        w = F.weight_standardize(self.weight, self.gain)
        return F.conv2d(x, w, self.bias, stride=self.strides, padding=self.padding)

    def extra_repr(self) -> str:
        kH, kW, _, filters = self.weight.shape
        strides = f", strides={self.strides}" if self.strides != 1 else ""
        padding = f", padding={self.padding!r}" if self.padding else ""
        return f"{filters}, {kH if kH == kW else (kH, kW)}{strides}{padding}"


class NFBottleneck(nn.Module):
    """x' = shortcut + alpha * conv3(act(conv2(act(conv1(act(x / beta)))))).

    shortcut = x, or downsample(act(x / beta)) where the shape changes.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int, alpha: float, beta: float):
        super().__init__()
        out_channels = channels * self.expansion
        self.alpha, self.beta = alpha, beta
        self.conv1 = WSConv2D(in_channels, channels, 1)
        self.conv2 = WSConv2D(channels, channels, 3, strides=stride, padding=1)
        self.conv3 = WSConv2D(channels, out_channels, 1)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = WSConv2D(in_channels, out_channels, 1, strides=stride)

    def forward(self, x):
        out = scaled_relu(x * (1 / self.beta))
        shortcut = x if self.downsample is None else self.downsample(out)
        out = self.conv3(scaled_relu(self.conv2(scaled_relu(self.conv1(out)))))
        return shortcut + out * self.alpha

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta:.4f}"


class NFResNet(nn.Module):
    """Normaliser-free ResNet: stem, layer1..layer4 of NFBottlenecks, pooling, classifier."""

    def __init__(self, depths=(3, 4, 6, 3), num_classes: int = 1000, alpha: float = 0.2,
                 in_channels: int = 3):
        super().__init__()
        self.conv1 = WSConv2D(in_channels, 64, 7, strides=2, padding=3)
        self.maxpool = nn.MaxPool2D(3, strides=2, padding=1)
        channels_in, expected_var = 64, 1.0
        for index, (channels, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            blocks = []
            for i in range(depth):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(NFBottleneck(channels_in, channels, stride, alpha,
                                           math.sqrt(expected_var)))
                if i == 0:
                    expected_var = 1.0  # the transition block's shortcut restarts the variance
                expected_var += alpha**2
                channels_in = channels * NFBottleneck.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2D((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Dense(num_classes, input_dim=channels_in, kernel_initializer="torch_default")
        self.default_input_shape = (224, 224, in_channels)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = scaled_relu(self.layer4(self.layer3(self.layer2(self.layer1(x)))))
        return self.fc(self.flatten(self.avgpool(x)))


@register("nf_resnet50")
def nf_resnet50(num_classes: int = 1000, alpha: float = 0.2, **config) -> NFResNet:
    """NF-ResNet-50: ResNet-50's depths without batch norm (see the module docstring)."""
    return NFResNet((3, 4, 6, 3), num_classes, alpha, **config)

