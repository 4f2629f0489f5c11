"""DenseNet-121 (Huang et al., 2017, https://arxiv.org/abs/1608.06993), the BC variant.

Inside a dense block every layer sees the concatenation (along channels, the last axis) of the
block input and of every earlier layer's output, and adds `growth_rate` new channels:
BN-ReLU-Conv1x1 to 4k channels (the bottleneck), then BN-ReLU-Conv3x3 to k. Transitions
between blocks halve the channels (compression 0.5) with BN-ReLU-Conv1x1 and halve the size
with 2x2 average pooling. Layout and state_dict keys are torchvision's:
`features.conv0.weight`, `features.denseblock1.denselayer1.norm1.running_mean`,
`features.transition1.conv.weight`, `features.norm5.weight`, `classifier.weight` (ReLU modules
hold no weights). Inside a dense layer each ReLU runs in the batch norm's pass
(`striate.fused.bn_relu`), saving a pass over the activations.

Paper Table 1, DenseNet-121 (k = 32, input 224x224x3):

    layers            output   DenseNet-121
    convolution       112x112  7x7 conv, stride 2
    pooling           56x56    3x3 max pool, stride 2
    dense block (1)   56x56    [1x1 conv, 3x3 conv] x 6
    transition (1)    28x28    1x1 conv, 2x2 average pool, stride 2
    dense block (2)   28x28    [1x1 conv, 3x3 conv] x 12
    transition (2)    14x14    1x1 conv, 2x2 average pool, stride 2
    dense block (3)   14x14    [1x1 conv, 3x3 conv] x 24
    transition (3)    7x7      1x1 conv, 2x2 average pool, stride 2
    dense block (4)   7x7      [1x1 conv, 3x3 conv] x 16
    classification    1x1      7x7 global average pool, 1000D fully-connected, softmax

>>> densenet121().num_parameters()
7978856
"""

from __future__ import annotations

from striate import functional as F
from striate import fused, nn
from striate.functional import concatenate
from striate.models.registry import register


def _conv(filters: int, kernel_size: int, in_channels: int, **kwargs) -> nn.Conv2D:
    """Bias-free convolution with torchvision's DenseNet init (kaiming_normal_, fan_in)."""
    return nn.Conv2D(filters, kernel_size, use_bias=False, kernel_initializer="he_normal",
                     input_channels=in_channels, **kwargs)


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1 (bn_size * k channels), BN-ReLU-Conv3x3 (k channels): the k new maps."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        width = bn_size * growth_rate
        self.norm1 = nn.BatchNorm(input_channels=in_channels)
        self.conv1 = _conv(width, 1, in_channels)
        self.norm2 = nn.BatchNorm(input_channels=width)
        self.conv2 = _conv(growth_rate, 3, width, padding=1)

    def forward(self, x):
        out = self.conv1(fused.bn_relu(self.norm1, x))  # conv1(relu(norm1(x)))
        return self.conv2(fused.bn_relu(self.norm2, out))  # conv2(relu(norm2(out)))


class DenseBlock(nn.Module):
    """denselayer1..n; layer i sees in_channels + (i - 1) * growth_rate channels."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int):
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size)
            setattr(self, f"denselayer{i + 1}", layer)

    def forward(self, x):
        features = x
        for layer in self.children():
            features = concatenate([features, layer(features)], axis=-1)  # (N, H, W, C + k)
        return features


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 to out_channels, then 2x2 average pooling at stride 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__({
            "norm": nn.BatchNorm(input_channels=in_channels),
            "relu": nn.ReLU(),
            "conv": _conv(out_channels, 1, in_channels),
            "pool": nn.AvgPool2D(2, strides=2),
        })


class DenseNet(nn.Module):
    """features (stem, dense blocks and transitions, norm5 with its ReLU), global average
    pool, classifier (Dense)."""

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        layers = {
            "conv0": _conv(num_init_features, 7, 3, strides=2, padding=3),
            "norm0": nn.BatchNorm(input_channels=num_init_features),
            "relu0": nn.ReLU(),
            "pool0": nn.MaxPool2D(3, strides=2, padding=1),
        }
        channels = num_init_features
        for i, num_layers in enumerate(block_config, 1):
            layers[f"denseblock{i}"] = DenseBlock(num_layers, channels, growth_rate, bn_size)
            channels += num_layers * growth_rate
            if i != len(block_config):
                layers[f"transition{i}"] = Transition(channels, channels // 2)
                channels //= 2
        layers["norm5"] = nn.BatchNorm(input_channels=channels)
        layers["relu5"] = nn.ReLU()
        self.features = nn.Sequential(layers)
        # torchvision keeps PyTorch's default Linear weight init and zeroes the bias.
        self.classifier = nn.Dense(num_classes, kernel_initializer="torch_default",
                                   input_dim=channels)

    def forward(self, x):
        x = F.global_avg_pool(self.features(x))  # (N, 1024)
        return self.classifier(x)


@register("densenet121")
def densenet121(num_classes: int = 1000) -> DenseNet:
    """DenseNet-121: k = 32, blocks (6, 12, 24, 16), 64 stem channels (torchvision's
    densenet121; 7,978,856 parameters at 1000 classes). Input (N, 224, 224, 3); any size of
    at least 29x29 works (global pooling)."""
    model = DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes)
    model.default_input_shape = (224, 224, 3)
    return model
