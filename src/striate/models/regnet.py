"""RegNetX and RegNetY at 400 MF (Radosavovic et al., 2020, https://arxiv.org/abs/2003.13678).

A RegNet is a stem, four stages of residual bottleneck blocks with grouped 3x3 convolutions, and
a classifier. The per-stage widths and depths are not listed by hand: they come from four
numbers (depth d, initial width w_0, slope w_a, log-step w_m) through the quantised linear rule
of the paper, ported from torchvision's `BlockParams.from_init_params`:

    u_j = w_0 + w_a * j                        (j = 0 .. d-1, continuous widths)
    s_j = round(log(u_j / w_0) / log(w_m))     (block capacity)
    w_j = 8 * round(w_0 * w_m^s_j / 8)         (quantised to multiples of 8)

Consecutive blocks of equal width form a stage; the widths are then adjusted so that the
bottleneck width is a multiple of the group width. RegNetY adds a squeeze-and-excitation gate
(a quarter of the block's input width) inside each block. Layout and state_dict keys are
torchvision's: `stem.0.weight`, `trunk_output.block1.block1-0.f.a.0.weight`,
`trunk_output.block1.block1-0.proj.0.weight`, `trunk_output.block1.block1-0.f.se.fc1.weight`,
`fc.weight`.

>>> regnet_stages(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16)
([1, 2, 7, 12], [32, 64, 160, 400], [16, 16, 16, 16])
"""

from __future__ import annotations

import math

import numpy as np

from striate import nn
from striate.models.mobilenet import ConvNormActivation, make_divisible
from striate.models.registry import register

_QUANT = 8  # widths are multiples of 8


def regnet_stages(
    depth: int,
    w_0: int,
    w_a: float,
    w_m: float,
    group_width: int,
    bottleneck_multiplier: float = 1.0,
) -> tuple[list[int], list[int], list[int]]:
    """(depths, widths, group widths) of the stages of a RegNet, torchvision's quantisation.

    See the module docstring for the rule. Raises ValueError for w_a < 0, w_0 <= 0, w_m <= 1
    or w_0 not a multiple of 8.
    """
    if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % _QUANT:
        raise ValueError(
            f"regnet_stages: need w_a >= 0, w_0 > 0 and a multiple of {_QUANT}, w_m > 1; "
            f"got w_a={w_a}, w_0={w_0}, w_m={w_m}"
        )
    continuous = np.arange(depth) * w_a + w_0
    capacity = np.round(np.log(continuous / w_0) / math.log(w_m))
    block_widths = (np.round(w_0 * np.power(w_m, capacity) / _QUANT) * _QUANT).astype(int)
    # A stage is a run of equal block widths.
    widths: list[int] = []
    depths: list[int] = []
    for width in block_widths.tolist():
        if widths and widths[-1] == width:
            depths[-1] += 1
        else:
            widths.append(width)
            depths.append(1)
    # Make the bottleneck width a multiple of the group width (groups must divide channels).
    bottlenecks = [int(w * bottleneck_multiplier) for w in widths]
    group_widths = [min(group_width, b) for b in bottlenecks]
    bottlenecks = [make_divisible(b, g) for b, g in zip(bottlenecks, group_widths, strict=True)]
    widths = [int(b / bottleneck_multiplier) for b in bottlenecks]
    return depths, widths, group_widths


class BottleneckTransform(nn.Sequential):
    """a: 1x1, b: grouped 3x3 (stride here), se: squeeze-excite (RegNetY), c: 1x1 + BN."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        strides: int,
        group_width: int,
        bottleneck_multiplier: float,
        se_ratio: float | None,
    ) -> None:
        bottleneck = int(round(out_channels * bottleneck_multiplier))
        groups = bottleneck // group_width
        layers = {
            "a": ConvNormActivation(in_channels, bottleneck, 1),
            "b": ConvNormActivation(bottleneck, bottleneck, 3, strides, groups=groups),
        }
        if se_ratio:
            # The squeeze width is relative to the block's input, not to the bottleneck.
            layers["se"] = nn.SqueezeExcitation(bottleneck, int(round(se_ratio * in_channels)),
                                                kernel_initializer=nn.init.he_normal_fan_out)
        layers["c"] = ConvNormActivation(bottleneck, out_channels, 1, activation=None)
        super().__init__(layers)


class ResBottleneckBlock(nn.Module):
    """relu(shortcut(x) + f(x)); the shortcut is a strided 1x1 conv + BN when shapes change."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        strides: int,
        group_width: int,
        bottleneck_multiplier: float,
        se_ratio: float | None,
    ) -> None:
        super().__init__()
        self.proj = None
        if in_channels != out_channels or strides != 1:
            self.proj = ConvNormActivation(in_channels, out_channels, 1, strides, activation=None)
        self.f = BottleneckTransform(in_channels, out_channels, strides, group_width,
                                     bottleneck_multiplier, se_ratio)
        self.activation = nn.ReLU()

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.f(x))


class RegNet(nn.Module):
    """stem (3x3 stride 2 to 32 channels), trunk_output (block1..block4, each halving the size),
    global average pool, fc."""

    def __init__(
        self,
        depth: int,
        w_0: int,
        w_a: float,
        w_m: float,
        group_width: int,
        se_ratio: float | None = None,
        bottleneck_multiplier: float = 1.0,
        num_classes: int = 1000,
        stem_width: int = 32,
    ) -> None:
        super().__init__()
        depths, widths, group_widths = regnet_stages(depth, w_0, w_a, w_m, group_width,
                                                     bottleneck_multiplier)
        self.stem = ConvNormActivation(3, stem_width, 3, strides=2)
        stages = {}
        width = stem_width
        for i, (n, out, g) in enumerate(zip(depths, widths, group_widths, strict=True), 1):
            # torchvision names each block "block<stage>-<index>" inside stage "block<stage>".
            stages[f"block{i}"] = nn.Sequential({
                f"block{i}-{j}": ResBottleneckBlock(width if j == 0 else out, out,
                                                    2 if j == 0 else 1, g,
                                                    bottleneck_multiplier, se_ratio)
                for j in range(n)
            })
            width = out
        self.trunk_output = nn.Sequential(stages)
        self.avgpool = nn.GlobalAveragePooling()
        self.fc = nn.Dense(num_classes, kernel_initializer=nn.init.normal(0.01), input_dim=width)

    def forward(self, x):
        return self.fc(self.avgpool(self.trunk_output(self.stem(x))))


@register("regnet_x_400mf")
def regnet_x_400mf(num_classes: int = 1000) -> RegNet:
    """RegNetX-400MF: d=22, w_0=24, w_a=24.48, w_m=2.54, group width 16 (torchvision's
    regnet_x_400mf; 5,495,976 parameters at 1000 classes). Input (N, 224, 224, 3)."""
    model = RegNet(22, 24, 24.48, 2.54, 16, num_classes=num_classes)
    model.default_input_shape = (224, 224, 3)
    return model


@register("regnet_y_400mf")
def regnet_y_400mf(num_classes: int = 1000) -> RegNet:
    """RegNetY-400MF: d=16, w_0=48, w_a=27.89, w_m=2.09, group width 8, SE ratio 0.25
    (torchvision's regnet_y_400mf; 4,344,144 parameters at 1000 classes). Input
    (N, 224, 224, 3)."""
    model = RegNet(16, 48, 27.89, 2.09, 8, se_ratio=0.25, num_classes=num_classes)
    model.default_input_shape = (224, 224, 3)
    return model
