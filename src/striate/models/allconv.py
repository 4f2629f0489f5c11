"""The all-convolutional net (Springenberg, Dosovitskiy, Brox and Riedmiller 2015, All-CNN-C).

Every pooling layer is replaced by a 3x3 convolution at stride 2, the classifier is a 1x1
convolution to one map per class, and global average pooling turns those maps into scores: no
dense layer, so the network takes inputs of any size (Goodfellow et al., ch. 9: pooling makes
variable-size inputs possible).

    layer                                       output at 32x32x3 input
    dropout 0.2 (input)
    conv 96@3x3 pad 1, ReLU                     32x32x96
    conv 96@3x3 pad 1, ReLU                     32x32x96
    conv 96@3x3/2 pad 1, ReLU, dropout 0.5      16x16x96   (replaces max pooling)
    conv 192@3x3 pad 1, ReLU                    16x16x192
    conv 192@3x3 pad 1, ReLU                    16x16x192
    conv 192@3x3/2 pad 1, ReLU, dropout 0.5     8x8x192    (replaces max pooling)
    conv 192@3x3 valid, ReLU                    6x6x192
    conv 192@1x1, ReLU                          6x6x192
    conv num_classes@1x1                        6x6x10
    global average pooling                      10

The paper also puts a ReLU after the class maps; here they stay linear so that the averaged
scores can be negative logits for softmax cross-entropy.
"""

from __future__ import annotations

import numpy as np  # noqa: F401 (doctests)

from striate.models.registry import register
from striate.nn import Conv2D, Dropout, GlobalAveragePooling, Module, Sequential

__all__ = ["AllConvNet"]


def _conv(filters: int, kernel_size: int, c_in: int, strides: int = 1, padding=1,
          activation="relu") -> Conv2D:
    return Conv2D(filters, kernel_size, strides=strides, padding=padding, activation=activation,
                  kernel_initializer="he_normal", input_channels=c_in)


class AllConvNet(Module):
    """All-CNN-C: see the module docstring for the layer table.

    width: channels of the first block (96 in the paper); the second block has 2*width.
    dropout: after each strided convolution; input_dropout: on the input image.
    in_channels: channels of the input image. Input (N, H, W, in_channels) with H, W >= 9;
    output (N, num_classes) logits.
    """

    def __init__(self, num_classes: int = 10, width: int = 96, dropout: float = 0.5,
                 input_dropout: float = 0.2, in_channels: int = 3):
        super().__init__()
        w1, w2 = width, 2 * width
        self.features = Sequential({
            "drop0": Dropout(input_dropout),
            "conv1": _conv(w1, 3, in_channels),
            "conv2": _conv(w1, 3, w1),
            "conv3": _conv(w1, 3, w1, strides=2),
            "drop3": Dropout(dropout),
            "conv4": _conv(w2, 3, w1),
            "conv5": _conv(w2, 3, w2),
            "conv6": _conv(w2, 3, w2, strides=2),
            "drop6": Dropout(dropout),
            "conv7": _conv(w2, 3, w2, padding="valid"),
            "conv8": _conv(w2, 1, w2, padding="valid"),
            "conv9": _conv(num_classes, 1, w2, padding="valid", activation=None),
        })
        self.pool = GlobalAveragePooling()
        self.default_input_shape = (32, 32, in_channels)

    def forward(self, x):
        return self.pool(self.features(x))  # (N, H', W', num_classes) -> (N, num_classes)


@register("allconv")
def allconv(num_classes: int = 10, width: int = 96, dropout: float = 0.5,
            input_dropout: float = 0.2, in_channels: int = 3) -> AllConvNet:
    """All-CNN-C (Springenberg et al. 2015) for 32x32 images; takes any input of 9x9 or more.

    >>> model = allconv(width=8).eval()
    >>> model(np.zeros((2, 32, 32, 3))).shape, model(np.zeros((2, 48, 40, 3))).shape
    ((2, 10), (2, 10))
    """
    return AllConvNet(num_classes, width, dropout, input_dropout, in_channels)
