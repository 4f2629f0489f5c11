"""SqueezeNet 1.0 and 1.1 (Iandola et al., 2016, https://arxiv.org/abs/1602.07360).

AlexNet-level accuracy with 50x fewer parameters: Fire modules squeeze the channels with 1x1
convolutions, then expand them with 1x1 and 3x3 convolutions side by side (concatenated along
channels, the last axis). There is no fully connected layer: a 1x1 convolution to the classes
followed by global average pooling classifies. Version 1.1 (from the authors' repository) has a
3x3 stem and pools earlier: 2.4x less computation, slightly fewer parameters. Layout and
state_dict keys are torchvision's (`features.0.weight`, `features.3.squeeze.weight`,
`features.3.expand3x3.bias`, `classifier.1.weight`).

The max pools use PyTorch's ceil_mode=True: a last, partial window is kept. That is a max pool
whose input is padded at the end (padding never wins a max).

Paper Table 1, SqueezeNet 1.0 (input 224x224x3):

    layer        output      squeeze 1x1  expand 1x1  expand 3x3
    conv1        111x111x96  (7x7 / 2)
    maxpool1     55x55x96    (3x3 / 2)
    fire2        55x55x128   16           64          64
    fire3        55x55x128   16           64          64
    fire4        55x55x256   32           128         128
    maxpool4     27x27x256
    fire5        27x27x256   32           128         128
    fire6        27x27x384   48           192         192
    fire7        27x27x384   48           192         192
    fire8        27x27x512   64           256         256
    maxpool8     13x13x512
    fire9        13x13x512   64           256         256
    conv10       13x13x1000  (1x1 / 1)
    avgpool10    1x1x1000    (13x13 / 1)

>>> squeezenet1_0().num_parameters(), squeezenet1_1().num_parameters()
(1248424, 1235496)
"""

from __future__ import annotations

from striate import nn
from striate.functional import concatenate
from striate.models.registry import register


def _conv(filters: int, kernel_size: int, in_channels: int, **kwargs) -> nn.Conv2D:
    """Convolution with torchvision's SqueezeNet init: kaiming_uniform_ weights, zero bias."""
    return nn.Conv2D(filters, kernel_size, kernel_initializer="he_uniform",
                     input_channels=in_channels, **kwargs)


class Fire(nn.Module):
    """squeeze 1x1 + ReLU, then [expand 1x1 + ReLU, expand 3x3 + ReLU] concatenated."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        self.squeeze = _conv(squeeze, 1, in_channels)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = _conv(expand1x1, 1, squeeze)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = _conv(expand3x3, 3, squeeze, padding=1)
        self.expand3x3_activation = nn.ReLU()

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return concatenate(
            [self.expand1x1_activation(self.expand1x1(x)),
             self.expand3x3_activation(self.expand3x3(x))],
            axis=-1,
        )  # (N, H, W, expand1x1 + expand3x3)


class SqueezeNet(nn.Module):
    """features (stem, Fire modules, ceil-mode max pools), classifier (Dropout, 1x1 conv to
    the classes, ReLU, global average pool)."""

    def __init__(self, version: str = "1_0", num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        if version == "1_0":
            layers = [
                _conv(96, 7, 3, strides=2), nn.ReLU(), nn.MaxPool2D(3, strides=2, ceil_mode=True),
                Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128),
                nn.MaxPool2D(3, strides=2, ceil_mode=True),
                Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
                Fire(384, 64, 256, 256),
                nn.MaxPool2D(3, strides=2, ceil_mode=True),
                Fire(512, 64, 256, 256),
            ]
        elif version == "1_1":
            layers = [
                _conv(64, 3, 3, strides=2), nn.ReLU(), nn.MaxPool2D(3, strides=2, ceil_mode=True),
                Fire(64, 16, 64, 64), Fire(128, 16, 64, 64),
                nn.MaxPool2D(3, strides=2, ceil_mode=True),
                Fire(128, 32, 128, 128), Fire(256, 32, 128, 128),
                nn.MaxPool2D(3, strides=2, ceil_mode=True),
                Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
                Fire(512, 64, 256, 256),
            ]
        else:
            raise ValueError(f"SqueezeNet: version must be '1_0' or '1_1', got {version!r}")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            # The final convolution starts small (torchvision: N(0, 0.01^2)).
            nn.Conv2D(num_classes, 1, kernel_initializer=nn.init.normal(0.01), input_channels=512),
            nn.ReLU(),
            nn.GlobalAveragePooling(),
        )

    def forward(self, x):
        return self.classifier(self.features(x))  # (N, num_classes)


@register("squeezenet1_0")
def squeezenet1_0(num_classes: int = 1000, dropout: float = 0.5) -> SqueezeNet:
    """SqueezeNet 1.0 (torchvision's squeezenet1_0; 1,248,424 parameters at 1000 classes).
    Input (N, 224, 224, 3); any size from 21x21 works."""
    model = SqueezeNet("1_0", num_classes, dropout)
    model.default_input_shape = (224, 224, 3)
    return model


@register("squeezenet1_1")
def squeezenet1_1(num_classes: int = 1000, dropout: float = 0.5) -> SqueezeNet:
    """SqueezeNet 1.1 (torchvision's squeezenet1_1; 1,235,496 parameters at 1000 classes).
    Input (N, 224, 224, 3); any size from 17x17 works."""
    model = SqueezeNet("1_1", num_classes, dropout)
    model.default_input_shape = (224, 224, 3)
    return model
