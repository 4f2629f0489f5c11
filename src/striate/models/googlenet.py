"""GoogLeNet / Inception v1 (Szegedy et al. 2014), https://arxiv.org/abs/1409.4842

Two builders share the Inception module (four parallel branches concatenated on channels):

- `googlenet`: torchvision's model, key for key: every convolution is a BasicConv2d
  (conv without bias, batch norm with eps 0.001, ReLU), the "5x5" branch uses a 3x3 kernel as
  torchvision does (pytorch/vision#906), max pools use PyTorch's ceil_mode, global average
  pooling, dropout 0.2. With `aux_logits=True` the two auxiliary classifiers aux1 (after 4a)
  and aux2 (after 4d) exist, and a training forward returns GoogLeNetOutputs(logits,
  aux_logits2, aux_logits1) as torchvision does; eval returns the logits.
- `inception_v1`: the paper's Table 1 (and the lectures' table): ReLU convolutions with biases,
  no batch norm, true 5x5 branches, local response normalisation after the first max pool and
  after the 3x3 convolution, 'same' padding, 7x7 average pooling, dropout 0.4.

    type            patch/stride  output      #1x1 #3x3r #3x3 #5x5r #5x5 pool  params (x1024)
    convolution     7x7/2         112x112x64                                    9.2K
    max pool        3x3/2         56x56x64
    convolution     3x3/1         56x56x192         64   192                   112K
    max pool        3x3/2         28x28x192
    inception (3a)                28x28x256   64   96   128  16    32   32     159K
    inception (3b)                28x28x480   128  128  192  32    96   64     380K
    max pool        3x3/2         14x14x480
    inception (4a)                14x14x512   192  96   208  16    48   64     364K
    inception (4b)                14x14x512   160  112  224  24    64   64     437K
    inception (4c)                14x14x512   128  128  256  24    64   64     463K
    inception (4d)                14x14x528   112  144  288  32    64   64     580K
    inception (4e)                14x14x832   256  160  320  32    128  128    840K
    max pool        3x3/2         7x7x832
    inception (5a)                7x7x832     256  160  320  32    128  128    1072K
    inception (5b)                7x7x1024    384  192  384  48    128  128    1388K
    avg pool        7x7/1         1x1x1024
    dropout (40%)                 1x1x1024
    linear                        1x1x1000                                      1000K

(The paper prints 2.7K for the first convolution; 7*7*3*64 weights are 9.2K.)

>>> from striate import models
>>> models.create("googlenet").num_parameters()
6624904
"""

from __future__ import annotations

from collections import namedtuple

from .. import functional as F
from .. import fused, nn
from .registry import register

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """relu(bn(conv(x))): convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int, strides: int = 1,
                 padding=0):
        super().__init__()
        self.conv = nn.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                              use_bias=False, kernel_initializer="he_normal",
                              input_channels=in_channels)
        self.bn = nn.BatchNorm(eps=0.001, input_channels=filters)

    def forward(self, x):
        return fused.conv_bn_relu(self.conv, self.bn, x)  # relu(bn(conv(x)))


def conv_relu(in_channels: int, filters: int, kernel_size: int, strides: int = 1, padding=0):
    """The paper's convolution: bias and ReLU, no batch norm."""
    return nn.Conv2D(filters, kernel_size, strides=strides, padding=padding, activation="relu",
                     kernel_initializer="he_normal", input_channels=in_channels)


class Inception(nn.Module):
    """Four branches concatenated on channels: 1x1 | 1x1 -> 3x3 | 1x1 -> kxk | pool -> 1x1.

    `large_kernel` is the "5x5" branch's kernel: 5 in the paper, 3 in torchvision. Every
    branch keeps H x W; the output has ch1x1 + ch3x3 + ch5x5 + pool_proj channels.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, conv_block=BasicConv2d, large_kernel: int = 3):
        super().__init__()
        self.branch1 = conv_block(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(
            conv_block(in_channels, ch3x3red, 1),
            conv_block(ch3x3red, ch3x3, 3, padding=1),
        )
        self.branch3 = nn.Sequential(
            conv_block(in_channels, ch5x5red, 1),
            conv_block(ch5x5red, ch5x5, large_kernel, padding=large_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2D(3, strides=1, padding=1, ceil_mode=True),
            conv_block(in_channels, pool_proj, 1),
        )

    def forward(self, x):
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return F.concatenate([branch(x) for branch in branches], axis=-1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: adaptive avg pool to 4x4, 1x1 conv 128, fc 1024, dropout 0.7, fc."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Dense(1024, input_dim=2048, kernel_initializer="torch_default")
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Dense(num_classes, input_dim=1024, kernel_initializer="torch_default")

    def forward(self, x):
        x = self.flatten(self.conv(F.adaptive_avg_pool2d(x, (4, 4))))  # (N, 4*4*128)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet (see the module docstring); input (N, H, W, 3), H, W >= 15."""

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False):
        super().__init__()
        self.aux_logits = aux_logits
        self.conv1 = BasicConv2d(3, 64, 7, strides=2, padding=3)
        self.maxpool1 = nn.MaxPool2D(3, strides=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2D(3, strides=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2D(3, strides=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2D(2, strides=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2D((1, 1))
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Dense(num_classes, input_dim=1024, kernel_initializer="torch_default")
        self.default_input_shape = (224, 224, 3)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))                      # (N, 56, 56, 64)
        x = self.maxpool2(self.conv3(self.conv2(x)))          # (N, 28, 28, 192)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (N, 14, 14, 480)
        x = self.inception4a(x)                               # (N, 14, 14, 512)
        with_aux = self.training and self.aux_logits
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # (N, 14, 14, 528)
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))                # (N, 7, 7, 832)
        x = self.inception5b(self.inception5a(x))             # (N, 7, 7, 1024)
        logits = self.fc(self.dropout(self.flatten(self.avgpool(x))))
        return GoogLeNetOutputs(logits, aux2, aux1) if with_aux else logits


@register("googlenet")
def googlenet(num_classes: int = 1000, aux_logits: bool = False) -> GoogLeNet:
    """torchvision's GoogLeNet: 6,624,904 parameters (13,004,888 with the auxiliary heads)."""
    return GoogLeNet(num_classes, aux_logits)


def _inception(in_channels: int, *widths: int) -> Inception:
    return Inception(in_channels, *widths, conv_block=conv_relu, large_kernel=5)


@register("inception_v1")
def inception_v1(num_classes: int = 1000) -> nn.Sequential:
    """Inception v1 exactly as the paper's Table 1: 6,998,552 parameters with 1000 classes.

    One child per row of the table; input (N, 224, 224, 3).
    """
    model = nn.Sequential({
        "conv1": conv_relu(3, 64, 7, strides=2, padding="same"),   # 112x112x64
        "maxpool1": nn.MaxPool2D(3, strides=2, padding="same"),    # 56x56x64
        "lrn1": nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
        "conv2": conv_relu(64, 64, 1),                             # 56x56x64 (3x3 reduce)
        "conv3": conv_relu(64, 192, 3, padding="same"),            # 56x56x192
        "lrn2": nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
        "maxpool2": nn.MaxPool2D(3, strides=2, padding="same"),    # 28x28x192
        "inception3a": _inception(192, 64, 96, 128, 16, 32, 32),   # 28x28x256
        "inception3b": _inception(256, 128, 128, 192, 32, 96, 64),  # 28x28x480
        "maxpool3": nn.MaxPool2D(3, strides=2, padding="same"),    # 14x14x480
        "inception4a": _inception(480, 192, 96, 208, 16, 48, 64),  # 14x14x512
        "inception4b": _inception(512, 160, 112, 224, 24, 64, 64),  # 14x14x512
        "inception4c": _inception(512, 128, 128, 256, 24, 64, 64),  # 14x14x512
        "inception4d": _inception(512, 112, 144, 288, 32, 64, 64),  # 14x14x528
        "inception4e": _inception(528, 256, 160, 320, 32, 128, 128),  # 14x14x832
        "maxpool4": nn.MaxPool2D(3, strides=2, padding="same"),    # 7x7x832
        "inception5a": _inception(832, 256, 160, 320, 32, 128, 128),  # 7x7x832
        "inception5b": _inception(832, 384, 192, 384, 48, 128, 128),  # 7x7x1024
        "avgpool": nn.AvgPool2D(7, strides=1),                     # 1x1x1024
        "dropout": nn.Dropout(0.4),
        "flatten": nn.Flatten(),
        "fc": nn.Dense(num_classes, input_dim=1024, kernel_initializer="torch_default"),
    })
    model.default_input_shape = (224, 224, 3)
    return model
