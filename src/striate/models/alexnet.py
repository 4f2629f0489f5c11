"""AlexNet (Krizhevsky, Sutskever and Hinton 2012) in two forms, and ZFNet (Zeiler and Fergus
2013).

`alexnet` is torchvision's single-tower layout ("One weird trick", 2014: 64/192/384/256/256
filters, no LRN, adaptive average pooling to 6x6); its state_dict keys and parameter count
(61,100,840 at 1000 classes) equal torchvision's. `alexnet_paper` is the two-GPU network of the
2012 paper, the GPUs' split written as groups=2; `zfnet` is AlexNet revised after visualising
its filters.
"""

from __future__ import annotations

import numpy as np  # noqa: F401 (doctests)

from striate.models.registry import register
from striate.nn import (
    AdaptiveAvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LocalResponseNorm,
    MaxPool2D,
    Module,
    ReLU,
    Sequential,
)

__all__ = ["AlexNet", "AlexNetPaper", "ZFNet"]

# The paper's LRN: b = a / (k + alpha * sum a^2)^beta over n=5 neighbouring maps, k=2,
# alpha=1e-4, beta=0.75. PyTorch's (and striate's) definition divides alpha by the window size,
# so the same layer takes alpha = 5 * 1e-4.
_PAPER_LRN = {"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}


def _classifier(in_features: int, num_classes: int, dropout: float) -> Sequential:
    """The 4096-4096-classes head: dropout, dense, ReLU, dropout, dense, ReLU, dense
    (torchvision's AlexNet indices 0..6)."""
    return Sequential(
        Dropout(dropout),
        Dense(4096, kernel_initializer="torch_default", bias_initializer="torch_default",
              input_dim=in_features),
        ReLU(),
        Dropout(dropout),
        Dense(4096, kernel_initializer="torch_default", bias_initializer="torch_default",
              input_dim=4096),
        ReLU(),
        Dense(num_classes, kernel_initializer="torch_default", bias_initializer="torch_default",
              input_dim=4096),
    )


def _conv(filters, kernel_size, c_in, **kwargs) -> Conv2D:
    """A convolution initialised as PyTorch's default (torchvision's AlexNet keeps it)."""
    return Conv2D(filters, kernel_size, kernel_initializer="torch_default",
                  bias_initializer="torch_default", input_channels=c_in, **kwargs)


class AlexNet(Module):
    """torchvision's AlexNet: five convolutions, three max pools, adaptive average pooling to
    6x6, and three dense layers.

        features.0   conv 64@11x11/4 pad 2, ReLU     55x55x64   (224x224x3 input)
        features.2   max pool 3/2                    27x27x64
        features.3   conv 192@5x5 pad 2, ReLU        27x27x192
        features.5   max pool 3/2                    13x13x192
        features.6   conv 384@3x3 pad 1, ReLU        13x13x384
        features.8   conv 256@3x3 pad 1, ReLU        13x13x256
        features.10  conv 256@3x3 pad 1, ReLU        13x13x256
        features.12  max pool 3/2                    6x6x256
        avgpool      adaptive average pool to 6x6    6x6x256
        classifier   dropout, 4096, ReLU, dropout, 4096, ReLU, num_classes

    Input (N, H, W, 3) with H, W >= 63; output (N, num_classes) logits.

    >>> AlexNet(num_classes=10).eval()(np.zeros((1, 64, 64, 3))).shape
    (1, 10)
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = Sequential(
            _conv(64, 11, 3, strides=4, padding=2),
            ReLU(),
            MaxPool2D(3, strides=2),
            _conv(192, 5, 64, padding=2),
            ReLU(),
            MaxPool2D(3, strides=2),
            _conv(384, 3, 192, padding=1),
            ReLU(),
            _conv(256, 3, 384, padding=1),
            ReLU(),
            _conv(256, 3, 256, padding=1),
            ReLU(),
            MaxPool2D(3, strides=2),
        )
        self.avgpool = AdaptiveAvgPool2D(6)
        self.flatten = Flatten()
        self.classifier = _classifier(6 * 6 * 256, num_classes, dropout)
        self.default_input_shape = (224, 224, 3)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(self.flatten(x))


class AlexNetPaper(Module):
    """The 2012 paper's AlexNet (Fig. 2), the two GPUs' halves written as groups=2.

    The paper normalises (LRN) after the first two convolutions' ReLU, then max-pools with
    overlapping 3x3 windows at stride 2. Conv2, conv4 and conv5 connect only to the maps on
    their own GPU (groups=2); conv3 and the dense layers connect across both.

        conv1  96@11x11/4, ReLU, LRN         55x55x96    (227x227x3 input)
        pool1  max 3/2                       27x27x96
        conv2  256@5x5 pad 2 groups 2, ReLU  27x27x256
        norm2, pool2                         13x13x256
        conv3  384@3x3 pad 1, ReLU           13x13x384
        conv4  384@3x3 pad 1 groups 2, ReLU  13x13x384
        conv5  256@3x3 pad 1 groups 2, ReLU  13x13x256
        pool5  max 3/2                       6x6x256
        fc6, fc7: 4096 ReLU with dropout; fc8: num_classes

    Input (N, 227, 227, 3); output (N, num_classes) logits. 60,965,224 parameters at 1000
    classes. Initialisation is He's, not the paper's N(0, 0.01).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = Sequential({
            "conv1": Conv2D(96, 11, strides=4, activation="relu", kernel_initializer="he_normal",
                            input_channels=3),
            "norm1": LocalResponseNorm(**_PAPER_LRN),
            "pool1": MaxPool2D(3, strides=2),
            "conv2": Conv2D(256, 5, padding=2, groups=2, activation="relu",
                            kernel_initializer="he_normal", input_channels=96),
            "norm2": LocalResponseNorm(**_PAPER_LRN),
            "pool2": MaxPool2D(3, strides=2),
            "conv3": Conv2D(384, 3, padding=1, activation="relu", kernel_initializer="he_normal",
                            input_channels=256),
            "conv4": Conv2D(384, 3, padding=1, groups=2, activation="relu",
                            kernel_initializer="he_normal", input_channels=384),
            "conv5": Conv2D(256, 3, padding=1, groups=2, activation="relu",
                            kernel_initializer="he_normal", input_channels=384),
            "pool5": MaxPool2D(3, strides=2),
        })
        self.flatten = Flatten()
        self.classifier = _dense_head(6 * 6 * 256, num_classes, dropout)
        self.default_input_shape = (227, 227, 3)

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


class ZFNet(Module):
    """ZFNet (Zeiler and Fergus 2013, Fig. 3): AlexNet with a 7x7 stride-2 first layer and a
    stride-2 second layer, on one GPU.

    Each of the first two layers is convolution, ReLU, 3x3 max pooling at stride 2 and contrast
    normalisation across feature maps (written as AlexNet's LRN). The pools use 'same' padding
    and conv1 pads 1 so that the volumes are the paper's:

        conv1  96@7x7/2 pad 1, ReLU          110x110x96  (224x224x3 input)
        pool1  max 3/2 'same', LRN           55x55x96
        conv2  256@5x5/2, ReLU               26x26x256
        pool2  max 3/2 'same', LRN           13x13x256
        conv3  384@3x3 pad 1, ReLU           13x13x384
        conv4  384@3x3 pad 1, ReLU           13x13x384
        conv5  256@3x3 pad 1, ReLU           13x13x256
        pool5  max 3/2                       6x6x256
        fc6, fc7: 4096 ReLU with dropout; fc8: num_classes

    Input (N, 224, 224, 3); output (N, num_classes) logits.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = Sequential({
            "conv1": Conv2D(96, 7, strides=2, padding=1, activation="relu",
                            kernel_initializer="he_normal", input_channels=3),
            "pool1": MaxPool2D(3, strides=2, padding="same"),
            "norm1": LocalResponseNorm(**_PAPER_LRN),
            "conv2": Conv2D(256, 5, strides=2, activation="relu", kernel_initializer="he_normal",
                            input_channels=96),
            "pool2": MaxPool2D(3, strides=2, padding="same"),
            "norm2": LocalResponseNorm(**_PAPER_LRN),
            "conv3": Conv2D(384, 3, padding=1, activation="relu", kernel_initializer="he_normal",
                            input_channels=256),
            "conv4": Conv2D(384, 3, padding=1, activation="relu", kernel_initializer="he_normal",
                            input_channels=384),
            "conv5": Conv2D(256, 3, padding=1, activation="relu", kernel_initializer="he_normal",
                            input_channels=384),
            "pool5": MaxPool2D(3, strides=2),
        })
        self.flatten = Flatten()
        self.classifier = _dense_head(6 * 6 * 256, num_classes, dropout)
        self.default_input_shape = (224, 224, 3)

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def _dense_head(in_features: int, num_classes: int, dropout: float) -> Sequential:
    """fc6 and fc7 (4096, ReLU, their outputs dropped out as in the paper) and fc8,
    He-initialised."""
    return Sequential({
        "fc6": Dense(4096, activation="relu", kernel_initializer="he_normal",
                     input_dim=in_features),
        "drop6": Dropout(dropout),
        "fc7": Dense(4096, activation="relu", kernel_initializer="he_normal", input_dim=4096),
        "drop7": Dropout(dropout),
        "fc8": Dense(num_classes, input_dim=4096),
    })


@register("alexnet")
def alexnet(num_classes: int = 1000, dropout: float = 0.5) -> AlexNet:
    """torchvision's AlexNet: 61,100,840 parameters at 1000 classes, 224x224x3 input."""
    return AlexNet(num_classes, dropout)


@register("alexnet_paper")
def alexnet_paper(num_classes: int = 1000, dropout: float = 0.5) -> AlexNetPaper:
    """The 2012 two-GPU AlexNet (groups=2, LRN): 60,965,224 parameters, 227x227x3 input."""
    return AlexNetPaper(num_classes, dropout)


@register("zfnet")
def zfnet(num_classes: int = 1000, dropout: float = 0.5) -> ZFNet:
    """ZFNet (Zeiler and Fergus 2013): 224x224x3 input."""
    return ZFNet(num_classes, dropout)
