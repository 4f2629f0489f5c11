"""ResNet (He et al. 2016) and SE-ResNet (Hu et al. 2018), laid out as torchvision builds them.

ResNet: a 7x7/2 stem and a 3x3/2 max pool, four stages of residual blocks (64, 128, 256, 512
channels; the first block of stages 2-4 halves the resolution), global average pooling and one
dense layer. Blocks compute y = relu(f(x) + shortcut(x)); the shortcut is the identity, or a
1x1 convolution + batch norm where the shape changes. Each convolution, its batch norm and the
ReLU (and, ending a block, the add of the shortcut) run as one fused op
(`striate.fused.conv_bn_relu`, `conv_bn_add_relu`), saving passes over the activations: in
training the add and the ReLU run inside the batch norm's pass, in evaluation the batch norm
too runs inside the convolution's, on each piece of its output. ResNet-18/34
stack BasicBlocks (two 3x3 convolutions), ResNet-50/101/152 Bottlenecks (1x1 reduce, 3x3, 1x1
expand by 4) with the stride on the 3x3 ("ResNet v1.5", as torchvision).
https://arxiv.org/abs/1512.03385

    stage   output (224 input)   BasicBlock              Bottleneck
    conv1   112x112x64           7x7, 64, stride 2
    maxpool 56x56x64             3x3, stride 2
    layer1  56x56                [3x3 64, 3x3 64]        [1x1 64, 3x3 64, 1x1 256]
    layer2  28x28                [3x3 128, 3x3 128]      [1x1 128, 3x3 128, 1x1 512]
    layer3  14x14                [3x3 256, 3x3 256]      [1x1 256, 3x3 256, 1x1 1024]
    layer4  7x7                  [3x3 512, 3x3 512]      [1x1 512, 3x3 512, 1x1 2048]
    avgpool, fc                  1x1 -> num_classes

    depths: resnet18 (2, 2, 2, 2), resnet34 / resnet50 (3, 4, 6, 3), resnet101 (3, 4, 23, 3),
    resnet152 (3, 8, 36, 3).

State-dict keys equal torchvision's (conv1.weight, bn1.running_mean, layer1.0.conv1.weight,
layer2.0.downsample.0.weight, fc.weight, ...); only the layouts differ (channels-last kernels).

SE-ResNet-50 inserts a squeeze-and-excitation block on each bottleneck's residual branch before
the add: s = sigmoid(W2 relu(W1 mean_HW(f(x)))), f(x) * s channel-wise, W1: C -> C/16,
W2: C/16 -> C (with biases). https://arxiv.org/abs/1709.01507 W1 and W2 are the 1x1
convolutions of `nn.SqueezeExcitation` (torchvision's SqueezeExcitation): keys
layer1.0.se.fc1.weight (1, 1, C, C/16), .fc1.bias (C/16,), .fc2.weight (1, 1, C/16, C),
.fc2.bias (C,).

>>> from striate import models
>>> models.create("resnet18").num_parameters()
11689512
"""

from __future__ import annotations

from .. import fused, nn
from .registry import register


def conv3x3(in_channels: int, filters: int, stride: int = 1) -> nn.Conv2D:
    """3x3 convolution, padding 1, no bias (a batch norm follows), He-initialised."""
    return nn.Conv2D(filters, 3, strides=stride, padding=1, use_bias=False,
                     kernel_initializer="he_normal", input_channels=in_channels)


def conv1x1(in_channels: int, filters: int, stride: int = 1) -> nn.Conv2D:
    """1x1 convolution, no bias (a batch norm follows), He-initialised."""
    return nn.Conv2D(filters, 1, strides=stride, use_bias=False,
                     kernel_initializer="he_normal", input_channels=in_channels)


def batch_norm(channels: int) -> nn.BatchNorm:
    """Batch norm with gamma 1, beta 0, PyTorch's momentum 0.1 and eps 1e-5."""
    return nn.BatchNorm(input_channels=channels)


def shortcut(block: nn.Module, x):
    """The block's shortcut: x itself, or its `downsample` (1x1 convolution, batch norm)."""
    if block.downsample is None:
        return x
    return fused.conv_bn(block.downsample[0], block.downsample[1], x)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): two 3x3 convolutions."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = batch_norm(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = batch_norm(channels)
        self.downsample = downsample

    def forward(self, x):
        out = fused.conv_bn_relu(self.conv1, self.bn1, x)  # relu(bn1(conv1(x)))
        # relu(bn2(conv2(out)) + shortcut(x))
        return fused.conv_bn_add_relu(self.conv2, self.bn2, out, shortcut(self, x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand to 4x channels, plus the shortcut.

    With `se_reduction`, an `nn.SqueezeExcitation` (attribute `se`, squeezing to C / se_reduction
    channels) rescales the branch between bn3 and the add (SE-ResNet), which then take passes
    of their own.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample=None,
                 se_reduction: int | None = None):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = conv1x1(in_channels, channels)
        self.bn1 = batch_norm(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = batch_norm(channels)
        self.conv3 = conv1x1(channels, out_channels)
        self.bn3 = batch_norm(out_channels)
        self.downsample = downsample
        self.se = self.relu = None
        if se_reduction is not None:
            self.se = nn.SqueezeExcitation(out_channels, out_channels // se_reduction)
            self.relu = nn.ReLU()

    def forward(self, x):
        out = fused.conv_bn_relu(self.conv1, self.bn1, x)  # relu(bn1(conv1(x)))
        out = fused.conv_bn_relu(self.conv2, self.bn2, out)  # relu(bn2(conv2(out)))
        if self.se is None:  # relu(bn3(conv3(out)) + shortcut(x))
            return fused.conv_bn_add_relu(self.conv3, self.bn3, out, shortcut(self, x))
        return self.relu(self.se(fused.conv_bn(self.conv3, self.bn3, out)) + shortcut(self, x))


class ResNet(nn.Module):
    """The ResNet trunk: stem, layer1..layer4 of `block`s with `depths`, pooling, classifier.

    Input (N, H, W, 3), any H, W >= 32 (adaptive average pooling); output (N, num_classes).
    """

    def __init__(self, block, depths, num_classes: int = 1000, in_channels: int = 3,
                 se_reduction: int | None = None):
        super().__init__()
        self.conv1 = nn.Conv2D(64, 7, strides=2, padding=3, use_bias=False,
                               kernel_initializer="he_normal", input_channels=in_channels)
        self.bn1 = batch_norm(64)
        self.maxpool = nn.MaxPool2D(3, strides=2, padding=1)
        channels_in = 64
        for index, (channels, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            stride = 1 if index == 0 else 2
            out_channels = channels * block.expansion
            downsample = None
            if stride != 1 or channels_in != out_channels:
                downsample = nn.Sequential(conv1x1(channels_in, out_channels, stride),
                                           batch_norm(out_channels))
            extra = {} if se_reduction is None else {"se_reduction": se_reduction}
            blocks = [block(channels_in, channels, stride, downsample, **extra)]
            blocks += [block(out_channels, channels, **extra) for _ in range(depth - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            channels_in = out_channels
        self.avgpool = nn.AdaptiveAvgPool2D((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Dense(num_classes, input_dim=channels_in, kernel_initializer="torch_default")
        self.default_input_shape = (224, 224, in_channels)

    def forward(self, x):
        x = self.maxpool(fused.conv_bn_relu(self.conv1, self.bn1, x))  # relu(bn1(conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


@register("resnet18")
def resnet18(num_classes: int = 1000, **config) -> ResNet:
    """ResNet-18: BasicBlocks (2, 2, 2, 2); 11,689,512 parameters."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, **config)


@register("resnet34")
def resnet34(num_classes: int = 1000, **config) -> ResNet:
    """ResNet-34: BasicBlocks (3, 4, 6, 3); 21,797,672 parameters."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, **config)


@register("resnet50")
def resnet50(num_classes: int = 1000, **config) -> ResNet:
    """ResNet-50: Bottlenecks (3, 4, 6, 3); 25,557,032 parameters."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, **config)


@register("resnet101")
def resnet101(num_classes: int = 1000, **config) -> ResNet:
    """ResNet-101: Bottlenecks (3, 4, 23, 3); 44,549,160 parameters."""
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes, **config)


@register("resnet152")
def resnet152(num_classes: int = 1000, **config) -> ResNet:
    """ResNet-152: Bottlenecks (3, 8, 36, 3); 60,192,808 parameters."""
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes, **config)


@register("se_resnet50")
def se_resnet50(num_classes: int = 1000, reduction: int = 16, **config) -> ResNet:
    """SE-ResNet-50: ResNet-50 with squeeze-and-excitation (reduction 16) in every bottleneck.

    28,088,024 parameters: ResNet-50's 25,557,032 plus 2,530,992 in the SE blocks (the paper's
    Table 1 reports 28.1M).
    """
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, se_reduction=reduction, **config)
