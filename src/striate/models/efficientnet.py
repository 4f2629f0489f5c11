"""EfficientNet-B0 (Tan and Le, 2019, https://arxiv.org/abs/1905.11946).

MBConv blocks: MobileNetV2's inverted residual with a squeeze-and-excitation gate after the
depthwise convolution, SiLU activations, and stochastic depth on the residual branch (the
drop rate grows linearly from 0 to 0.2 over the 16 blocks). Layout and state_dict keys are
torchvision's (`features.1.0.block.0.0.weight`, `features.1.0.block.1.fc1.weight`,
`classifier.1.weight`); batch norm uses torchvision's eps 1e-5 and momentum 0.1 for B0.

Paper Table 1 (input 224x224x3):

    stage  operator               resolution  channels  layers
    1      Conv3x3                224x224     32        1
    2      MBConv1, k3x3          112x112     16        1
    3      MBConv6, k3x3          112x112     24        2
    4      MBConv6, k5x5          56x56       40        2
    5      MBConv6, k3x3          28x28       80        3
    6      MBConv6, k5x5          14x14       112       3
    7      MBConv6, k5x5          14x14       192       4
    8      MBConv6, k3x3          7x7         320       1
    9      Conv1x1 & Pooling & FC 7x7         1280      1

>>> efficientnet_b0().num_parameters()
5288548
"""

from __future__ import annotations

import math

from striate import nn
from striate.models.mobilenet import ConvNormActivation, make_divisible
from striate.models.registry import register

# (expand ratio, kernel, first stride, input channels, output channels, layers), Table 1.
_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


class MBConv(nn.Module):
    """Expand 1x1 (when the ratio widens), depthwise kxk, squeeze-excite, project 1x1 + BN;
    at stride 1 with equal widths the branch goes through stochastic depth and adds to x."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        strides: int,
        expand_ratio: float,
        drop_rate: float,
    ) -> None:
        super().__init__()
        self.use_residual = strides == 1 and in_channels == out_channels
        expanded = make_divisible(in_channels * expand_ratio)
        layers = []
        if expanded != in_channels:
            layers.append(ConvNormActivation(in_channels, expanded, 1, activation=nn.SiLU))
        layers += [
            ConvNormActivation(expanded, expanded, kernel_size, strides, groups=expanded,
                               activation=nn.SiLU),
            # The squeeze width is a quarter of the block's input width, not of the expansion.
            nn.SqueezeExcitation(expanded, max(1, in_channels // 4), activation=nn.SiLU,
                                 kernel_initializer=nn.init.he_normal_fan_out),
            ConvNormActivation(expanded, out_channels, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.DropPath(drop_rate)

    def forward(self, x):
        y = self.block(x)
        return self.stochastic_depth(y) + x if self.use_residual else y


class EfficientNet(nn.Module):
    """EfficientNet: features (stem, 7 stages of MBConv, 1x1 conv to 4x the last width),
    global average pool, classifier (Dropout, Dense).

    width_mult and depth_mult scale channels (rounded by `make_divisible`) and layers per stage
    (rounded up); B0 is (1.0, 1.0).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        dropout: float = 0.2,
        stochastic_depth: float = 0.2,
    ) -> None:
        super().__init__()
        stages = [
            (t, k, s, make_divisible(c_in * width_mult), make_divisible(c_out * width_mult),
             int(math.ceil(n * depth_mult)))
            for t, k, s, c_in, c_out, n in _STAGES
        ]
        total = sum(stage[-1] for stage in stages)
        layers = [ConvNormActivation(3, stages[0][3], 3, strides=2, activation=nn.SiLU)]
        index = 0
        for t, k, s, c_in, c_out, n in stages:
            blocks = []
            for i in range(n):
                rate = stochastic_depth * index / total
                blocks.append(MBConv(c_in if i == 0 else c_out, c_out, k, s if i == 0 else 1,
                                     t, rate))
                index += 1
            layers.append(nn.Sequential(*blocks))
        last_in = stages[-1][4]
        layers.append(ConvNormActivation(last_in, 4 * last_in, 1, activation=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.GlobalAveragePooling()
        # torchvision: U(-1/sqrt(num_classes), 1/sqrt(num_classes)), PyTorch's bound on fan_out.
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Dense(num_classes, input_dim=4 * last_in,
                     kernel_initializer=nn.init.with_fan_out(nn.init.torch_default)),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))  # (N, 1280) before classifier


@register("efficientnet_b0")
def efficientnet_b0(num_classes: int = 1000, dropout: float = 0.2,
                    stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B0 (torchvision's efficientnet_b0; 5,288,548 parameters at 1000 classes).

    Input (N, 224, 224, 3) -> logits (N, num_classes); any input size works (global pooling).
    """
    model = EfficientNet(num_classes, 1.0, 1.0, dropout, stochastic_depth)
    model.default_input_shape = (224, 224, 3)
    return model
