"""VGG (Simonyan and Zisserman 2014): stacks of 3x3 convolutions between 2x2 max pools.

Configurations A, B, D and E of the paper's Table 1 give VGG-11, -13, -16 and -19; the `_bn`
variants add batch normalisation after every convolution. The layout, state_dict keys
(`features.0.weight`, `classifier.6.bias`, ...) and parameter counts equal torchvision's
(vgg16: 138,357,544 at 1000 classes). The adaptive average pool to 7x7 lets the network take
any input of at least 32x32.
"""

from __future__ import annotations

from striate.models.registry import register
from striate.nn import (
    AdaptiveAvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    Module,
    ReLU,
    Sequential,
    init,
)

__all__ = ["CONFIGS", "VGG", "make_layers"]

# Table 1 of the paper: output channels of each 3x3 convolution, "M" a 2x2 max pool at stride 2.
CONFIGS: dict[str, tuple] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
          "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512,
          512, 512, "M"),
}


_CLASSIFIER_INIT = init.normal(0.01)  # torchvision draws VGG's dense weights from N(0, 0.01^2)


def make_layers(config, batch_norm: bool = False, in_channels: int = 3) -> Sequential:
    """The convolutional part: for each number a 3x3 convolution (padding 1), batch norm if
    asked, ReLU; for each "M" a 2x2 max pool. Indices follow torchvision's `make_layers`.

    >>> make_layers(CONFIGS["A"])(np.zeros((1, 64, 64, 3))).shape
    (1, 2, 2, 512)
    """
    layers = []
    for v in config:
        if v == "M":
            layers.append(MaxPool2D(2, strides=2))
            continue
        layers.append(Conv2D(v, 3, padding=1, kernel_initializer=init.he_normal_fan_out,
                             input_channels=in_channels))
        if batch_norm:
            layers.append(BatchNorm(input_channels=v))
        layers.append(ReLU())
        in_channels = v
    return Sequential(*layers)


class VGG(Module):
    """VGG: `features` (the configuration's convolutions and pools), adaptive average pooling to
    7x7, then dense 4096, ReLU, dropout, dense 4096, ReLU, dropout, dense num_classes.

    Input (N, H, W, 3), H and W >= 32 (224 native); output (N, num_classes) logits.
    """

    def __init__(self, features: Sequential, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = AdaptiveAvgPool2D(7)
        self.flatten = Flatten()
        self.classifier = Sequential(
            Dense(4096, kernel_initializer=_CLASSIFIER_INIT, input_dim=512 * 7 * 7),
            ReLU(),
            Dropout(dropout),
            Dense(4096, kernel_initializer=_CLASSIFIER_INIT, input_dim=4096),
            ReLU(),
            Dropout(dropout),
            Dense(num_classes, kernel_initializer=_CLASSIFIER_INIT, input_dim=4096),
        )
        self.default_input_shape = (224, 224, 3)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(self.flatten(x))


def _vgg(config: str, batch_norm: bool, num_classes: int, dropout: float) -> VGG:
    return VGG(make_layers(CONFIGS[config], batch_norm), num_classes, dropout)


@register("vgg11")
def vgg11(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A): 132,863,336 parameters at 1000 classes."""
    return _vgg("A", False, num_classes, dropout)


@register("vgg13")
def vgg13(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-13 (configuration B): 133,047,848 parameters at 1000 classes."""
    return _vgg("B", False, num_classes, dropout)


@register("vgg16")
def vgg16(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D): 138,357,544 parameters at 1000 classes."""
    return _vgg("D", False, num_classes, dropout)


@register("vgg19")
def vgg19(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-19 (configuration E): 143,667,240 parameters at 1000 classes."""
    return _vgg("E", False, num_classes, dropout)


@register("vgg11_bn")
def vgg11_bn(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-11 with batch normalisation: 132,868,840 parameters at 1000 classes."""
    return _vgg("A", True, num_classes, dropout)


@register("vgg13_bn")
def vgg13_bn(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-13 with batch normalisation: 133,053,736 parameters at 1000 classes."""
    return _vgg("B", True, num_classes, dropout)


@register("vgg16_bn")
def vgg16_bn(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 with batch normalisation: 138,365,992 parameters at 1000 classes."""
    return _vgg("D", True, num_classes, dropout)


@register("vgg19_bn")
def vgg19_bn(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-19 with batch normalisation: 143,678,248 parameters at 1000 classes."""
    return _vgg("E", True, num_classes, dropout)
