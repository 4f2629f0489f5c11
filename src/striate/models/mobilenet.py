"""MobileNetV2 (Sandler et al., 2018, https://arxiv.org/abs/1801.04381).

Inverted residual blocks: a 1x1 convolution expands the channels t times, a 3x3 depthwise
convolution filters each channel on its own, a 1x1 convolution projects back down with no
activation (the "linear bottleneck"). The layout and state_dict keys are torchvision's
(`features.1.conv.0.0.weight`, `classifier.1.weight`); `ConvNormActivation` and
`make_divisible` are shared with EfficientNet and RegNet.

Paper Table 2 (input 224x224x3):

    input      operator       t   c     n  s
    224^2x3    conv2d 3x3     -   32    1  2
    112^2x32   bottleneck     1   16    1  1
    112^2x16   bottleneck     6   24    2  2
    56^2x24    bottleneck     6   32    3  2
    28^2x32    bottleneck     6   64    4  2
    14^2x64    bottleneck     6   96    3  1
    14^2x96    bottleneck     6   160   3  2
    7^2x160    bottleneck     6   320   1  1
    7^2x320    conv2d 1x1     -   1280  1  1
    7^2x1280   avgpool 7x7    -   -     1  -
    1x1x1280   conv2d 1x1     -   k     -  -

>>> model = mobilenet_v2()
>>> model.num_parameters()
3504872
"""

from __future__ import annotations

from striate import functional as F
from striate import nn
from striate.models.registry import register

# (expansion t, output channels c, repeats n, first stride s), paper Table 2.
_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never losing more than 10% of it.

    torchvision's `_make_divisible`, from the TensorFlow MobileNet code.

    >>> make_divisible(32 * 0.75), make_divisible(37.3)
    (24, 40)
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvNormActivation(nn.Sequential):
    """Conv2D without bias, BatchNorm, then an activation: torchvision's Conv2dNormActivation.

    Children `0` (conv), `1` (norm) and `2` (activation, left out when `activation` is None).
    The padding (kernel_size - 1) // 2 keeps the size at stride 1 and halves it (rounding up)
    at stride 2, as torchvision's. `kernel_initializer` defaults to He-normal over fan_out,
    the initialisation of MobileNet, EfficientNet and RegNet in torchvision.

    >>> import numpy as np
    >>> ConvNormActivation(3, 32, strides=2)(np.zeros((1, 224, 224, 3))).shape
    (1, 112, 112, 32)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        strides: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
        eps: float = 1e-5,
        momentum: float = 0.1,
        kernel_initializer=nn.init.he_normal_fan_out,
    ) -> None:
        layers = [
            nn.Conv2D(
                out_channels, kernel_size, strides=strides, padding=(kernel_size - 1) // 2,
                groups=groups, use_bias=False, kernel_initializer=kernel_initializer,
                input_channels=in_channels,
            ),
            nn.BatchNorm(momentum=momentum, eps=eps, input_channels=out_channels),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """Expand 1x1 (when t != 1), depthwise 3x3, project 1x1 + BN; x + that when shapes allow.

    The shortcut exists at stride 1 when the input and output widths are equal.
    """

    def __init__(self, in_channels: int, out_channels: int, strides: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = strides == 1 and in_channels == out_channels
        layers = []
        if expand_ratio != 1:
            layers.append(ConvNormActivation(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            ConvNormActivation(hidden, hidden, 3, strides, groups=hidden, activation=nn.ReLU6),
            nn.Conv2D(out_channels, 1, use_bias=False, kernel_initializer=nn.init.he_normal_fan_out,
                      input_channels=hidden),
            nn.BatchNorm(input_channels=out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.use_residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2: features (stem, 17 inverted residuals, 1x1 to 1280), global average pool,
    classifier (Dropout, Dense)."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        width = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers = [ConvNormActivation(3, width, 3, strides=2, activation=nn.ReLU6)]
        for t, c, n, s in _SETTING:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(width, out, s if i == 0 else 1, t))
                width = out
        layers.append(ConvNormActivation(width, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Dense(num_classes, kernel_initializer=nn.init.normal(0.01), input_dim=last),
        )

    def forward(self, x):
        x = F.global_avg_pool(self.features(x))  # (N, 1280)
        return self.classifier(x)


@register("mobilenet_v2")
def mobilenet_v2(
    num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2
) -> MobileNetV2:
    """MobileNetV2 at width multiplier `width_mult` (torchvision's mobilenet_v2; 3,504,872
    parameters at 1000 classes). Input (N, 224, 224, 3) -> logits (N, num_classes)."""
    model = MobileNetV2(num_classes, width_mult, dropout)
    model.default_input_shape = (224, 224, 3)
    return model
