"""DenseNet-121: channel concatenation in dense blocks, transitions, torchvision's layout."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn as tnn
from torch.nn import functional as tF

from striate import models, no_grad
from striate.models.densenet import DenseBlock, DenseNet, densenet121
from tests.models.test_mobilenet import (
    assert_every_parameter_gets_a_gradient,
    assert_matches_torchvision,
    compare_with_torch_module,
    seed_weights,
)

# torchvision's DenseNet restated in PyTorch (torchvision is not a test dependency).


class TorchDenseLayer(tnn.Module):
    def __init__(self, c_in, growth_rate, bn_size):
        super().__init__()
        self.norm1 = tnn.BatchNorm2d(c_in)
        self.relu1 = tnn.ReLU()
        self.conv1 = tnn.Conv2d(c_in, bn_size * growth_rate, 1, bias=False)
        self.norm2 = tnn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = tnn.ReLU()
        self.conv2 = tnn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x):
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class TorchDenseBlock(tnn.ModuleDict):
    def __init__(self, num_layers, c_in, growth_rate, bn_size):
        super().__init__({
            f"denselayer{i + 1}": TorchDenseLayer(c_in + i * growth_rate, growth_rate, bn_size)
            for i in range(num_layers)
        })

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class TorchDenseNet(tnn.Module):
    def __init__(self, growth_rate, block_config, num_init_features, bn_size, num_classes):
        super().__init__()
        layers = OrderedDict([
            ("conv0", tnn.Conv2d(3, num_init_features, 7, 2, 3, bias=False)),
            ("norm0", tnn.BatchNorm2d(num_init_features)),
            ("relu0", tnn.ReLU()),
            ("pool0", tnn.MaxPool2d(3, 2, 1)),
        ])
        c = num_init_features
        for i, n in enumerate(block_config, 1):
            layers[f"denseblock{i}"] = TorchDenseBlock(n, c, growth_rate, bn_size)
            c += n * growth_rate
            if i != len(block_config):
                layers[f"transition{i}"] = tnn.Sequential(OrderedDict([
                    ("norm", tnn.BatchNorm2d(c)), ("relu", tnn.ReLU()),
                    ("conv", tnn.Conv2d(c, c // 2, 1, bias=False)), ("pool", tnn.AvgPool2d(2, 2)),
                ]))
                c //= 2
        layers["norm5"] = tnn.BatchNorm2d(c)
        self.features = tnn.Sequential(layers)
        self.classifier = tnn.Linear(c, num_classes)

    def forward(self, x):
        x = tF.adaptive_avg_pool2d(tF.relu(self.features(x)), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def test_parameter_count():
    assert densenet121().num_parameters() == 7_978_856


def test_state_dict_matches_torchvision():
    assert_matches_torchvision(
        densenet121(),
        "222a58d1fd8d2818a1232c61bc9be0db758dbed076bb4497a7dbeda2b98190be",
        606,
        [
            ("features.conv0.weight", (64, 3, 7, 7)),
            ("features.norm0.running_var", (64,)),
            ("features.denseblock1.denselayer1.norm1.weight", (64,)),
            ("features.denseblock1.denselayer1.conv1.weight", (128, 64, 1, 1)),
            ("features.denseblock1.denselayer6.conv2.weight", (32, 128, 3, 3)),
            ("features.transition1.conv.weight", (128, 256, 1, 1)),
            ("features.denseblock3.denselayer24.norm1.running_mean", (992,)),
            ("features.transition3.conv.weight", (512, 1024, 1, 1)),
            ("features.denseblock4.denselayer16.conv2.weight", (32, 128, 3, 3)),
            ("features.norm5.bias", (1024,)),
            ("classifier.weight", (1000, 1024)),
            ("classifier.bias", (1000,)),
        ],
    )


def test_output_shape_at_native_size(rng):
    model = models.create("densenet121").eval()
    assert model.default_input_shape == (224, 224, 3)
    with no_grad():
        y = model(rng.standard_normal((1, 224, 224, 3)).astype(np.float32))
    assert y.shape == (1, 1000)


def test_small_densenet_matches_torch(rng):
    config = (4, (2, 3), 8, 2, 5)  # growth, blocks, stem width, bottleneck factor, classes
    compare_with_torch_module(DenseNet(*config), TorchDenseNet(*config),
                              rng.standard_normal((2, 20, 20, 3)), rng)


def test_dense_block_concatenates_along_channels(rng):
    block = DenseBlock(3, 6, growth_rate=4, bn_size=2)
    x = rng.standard_normal((2, 5, 5, 6)).astype(np.float32)
    y = block(x)
    assert y.shape == (2, 5, 5, 6 + 3 * 4)
    np.testing.assert_array_equal(y.data[..., :6], x)  # the input passes through unchanged
    assert [layer.conv1.weight.shape[2] for layer in block.children()] == [6, 10, 14]


def test_every_parameter_gets_a_gradient(rng):
    seed_weights(rng)
    model = DenseNet(4, (2, 2), 8, 2, num_classes=5)
    assert_every_parameter_gets_a_gradient(model, rng.standard_normal((2, 32, 32, 3)), rng)


def test_registry_records_config():
    model = models.create("densenet121", num_classes=4)
    assert model.config == {"name": "densenet121", "num_classes": 4}
    assert model.classifier.weight.shape == (1024, 4)
