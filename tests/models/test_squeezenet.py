"""SqueezeNet 1.0 and 1.1: Fire modules, ceil-mode max pooling, torchvision's layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn as tnn

from striate import models, no_grad
from striate.models.squeezenet import SqueezeNet, squeezenet1_0, squeezenet1_1
from tests.models.test_mobilenet import (
    assert_every_parameter_gets_a_gradient,
    assert_matches_torchvision,
    compare_with_torch_module,
    seed_weights,
)

# torchvision's SqueezeNet restated in PyTorch (torchvision is not a test dependency).


class TorchFire(tnn.Module):
    def __init__(self, c_in, squeeze, e1, e3):
        super().__init__()
        self.squeeze = tnn.Conv2d(c_in, squeeze, 1)
        self.squeeze_activation = tnn.ReLU()
        self.expand1x1 = tnn.Conv2d(squeeze, e1, 1)
        self.expand1x1_activation = tnn.ReLU()
        self.expand3x3 = tnn.Conv2d(squeeze, e3, 3, padding=1)
        self.expand3x3_activation = tnn.ReLU()

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


def _pool():
    return tnn.MaxPool2d(3, 2, ceil_mode=True)


class TorchSqueezeNet(tnn.Module):
    def __init__(self, version, num_classes):
        super().__init__()
        if version == "1_0":
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 96, 7, 2), tnn.ReLU(), _pool(),
                TorchFire(96, 16, 64, 64), TorchFire(128, 16, 64, 64),
                TorchFire(128, 32, 128, 128), _pool(),
                TorchFire(256, 32, 128, 128), TorchFire(256, 48, 192, 192),
                TorchFire(384, 48, 192, 192), TorchFire(384, 64, 256, 256), _pool(),
                TorchFire(512, 64, 256, 256),
            )
        else:
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 64, 3, 2), tnn.ReLU(), _pool(),
                TorchFire(64, 16, 64, 64), TorchFire(128, 16, 64, 64), _pool(),
                TorchFire(128, 32, 128, 128), TorchFire(256, 32, 128, 128), _pool(),
                TorchFire(256, 48, 192, 192), TorchFire(384, 48, 192, 192),
                TorchFire(384, 64, 256, 256), TorchFire(512, 64, 256, 256),
            )
        self.classifier = tnn.Sequential(
            tnn.Dropout(0.0), tnn.Conv2d(512, num_classes, 1), tnn.ReLU(),
            tnn.AdaptiveAvgPool2d((1, 1)),
        )

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


def test_parameter_counts():
    assert squeezenet1_0().num_parameters() == 1_248_424
    assert squeezenet1_1().num_parameters() == 1_235_496


def test_1_0_state_dict_matches_torchvision():
    assert_matches_torchvision(
        squeezenet1_0(),
        "142983e4c19c76ad42af4358558f0d6974b53d4f100968f0d866c885c8dc5018",
        52,
        [
            ("features.0.weight", (96, 3, 7, 7)),
            ("features.3.squeeze.weight", (16, 96, 1, 1)),
            ("features.3.expand1x1.weight", (64, 16, 1, 1)),
            ("features.3.expand3x3.weight", (64, 16, 3, 3)),
            ("features.7.squeeze.bias", (32,)),  # index 6 is the second max pool
            ("features.12.expand3x3.weight", (256, 64, 3, 3)),
            ("classifier.1.weight", (1000, 512, 1, 1)),
            ("classifier.1.bias", (1000,)),
        ],
    )


def test_1_1_state_dict_keys_equal_torchvision():
    # torchvision's squeezenet1_1 keys, in full: Fire modules at features 3, 4, 6, 7, 9-12.
    expected = ["features.0.weight", "features.0.bias"] + [
        f"features.{i}.{conv}.{kind}"
        for i in (3, 4, 6, 7, 9, 10, 11, 12)
        for conv in ("squeeze", "expand1x1", "expand3x3")
        for kind in ("weight", "bias")
    ] + ["classifier.1.weight", "classifier.1.bias"]
    model = squeezenet1_1()
    assert list(model.state_dict()) == expected
    assert_matches_torchvision(
        model,
        "3fbd2a746421cada0f54c8e59ea6b1b6e563ad4cc1db312b5017c6d8fed0ee08",
        52,
        [("features.0.weight", (64, 3, 3, 3)), ("features.12.squeeze.weight", (64, 512, 1, 1))],
    )


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_output_shape_at_native_size(rng, name):
    model = models.create(name).eval()
    assert model.default_input_shape == (224, 224, 3)
    with no_grad():
        y = model(rng.standard_normal((1, 224, 224, 3)).astype(np.float32))
    assert y.shape == (1, 1000)


@pytest.mark.parametrize("version, size", [("1_0", 39), ("1_1", 35), ("1_1", 17)])
def test_matches_torch(rng, version, size):
    compare_with_torch_module(SqueezeNet(version, num_classes=5, dropout=0.0),
                              TorchSqueezeNet(version, num_classes=5),
                              rng.standard_normal((2, size, size, 3)), rng)


def test_every_parameter_gets_a_gradient(rng):
    seed_weights(rng)
    model = squeezenet1_1(num_classes=5, dropout=0.0)
    assert_every_parameter_gets_a_gradient(model, rng.standard_normal((2, 32, 32, 3)), rng)


def test_unknown_version():
    with pytest.raises(ValueError, match=r"SqueezeNet: version must be '1_0' or '1_1', got '2'"):
        SqueezeNet("2")


def test_registry_records_config():
    model = models.create("squeezenet1_0", num_classes=10, dropout=0.3)
    assert model.config == {"name": "squeezenet1_0", "num_classes": 10, "dropout": 0.3}
    assert model.classifier[0].rate == 0.3
    assert model.classifier[1].weight.shape == (1, 1, 512, 10)
