"""EfficientNet-B0: MBConv with squeeze-and-excitation, stochastic depth, torchvision's layout."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn as tnn

from striate import models, no_grad
from striate.models.efficientnet import EfficientNet, MBConv, efficientnet_b0
from striate.models.mobilenet import make_divisible
from tests.models.test_mobilenet import (
    assert_every_parameter_gets_a_gradient,
    assert_matches_torchvision,
    compare_with_torch_module,
    seed_weights,
)

# torchvision's MBConv restated in PyTorch (torchvision is not a test dependency).


def _torch_cna(c_in, c_out, k, stride=1, groups=1, activation=tnn.SiLU):
    """torchvision's Conv2dNormActivation: Sequential(conv, BN[, activation])."""
    layers = [tnn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
              tnn.BatchNorm2d(c_out)]
    if activation is not None:
        layers.append(activation())
    return tnn.Sequential(*layers)


class TorchSqueezeExcitation(tnn.Module):
    def __init__(self, channels, squeeze, activation=tnn.ReLU):
        super().__init__()
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.fc1 = tnn.Conv2d(channels, squeeze, 1)
        self.fc2 = tnn.Conv2d(squeeze, channels, 1)
        self.activation = activation()
        self.scale_activation = tnn.Sigmoid()

    def forward(self, x):
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class TorchMBConv(tnn.Module):
    """torchvision's MBConv without stochastic depth (rate 0)."""

    def __init__(self, c_in, c_out, k, stride, expand_ratio):
        super().__init__()
        self.use_res_connect = stride == 1 and c_in == c_out
        expanded = make_divisible(c_in * expand_ratio)
        layers = []
        if expanded != c_in:
            layers.append(_torch_cna(c_in, expanded, 1))
        layers += [
            _torch_cna(expanded, expanded, k, stride, groups=expanded),
            TorchSqueezeExcitation(expanded, max(1, c_in // 4), tnn.SiLU),
            _torch_cna(expanded, c_out, 1, activation=None),
        ]
        self.block = tnn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res_connect else y


def test_parameter_count():
    assert efficientnet_b0().num_parameters() == 5_288_548


def test_state_dict_matches_torchvision():
    assert_matches_torchvision(
        efficientnet_b0(),
        "b5ec7b4b5e4fedbbd48b51d43dc122db27444f16b649650b63dc39902d2b3c23",
        311,
        [
            ("features.0.0.weight", (32, 3, 3, 3)),
            ("features.1.0.block.0.0.weight", (32, 1, 3, 3)),  # expand ratio 1: depthwise first
            ("features.1.0.block.1.fc1.weight", (8, 32, 1, 1)),
            ("features.1.0.block.1.fc2.bias", (32,)),
            ("features.1.0.block.2.0.weight", (16, 32, 1, 1)),
            ("features.2.0.block.0.0.weight", (96, 16, 1, 1)),
            ("features.2.0.block.1.0.weight", (96, 1, 3, 3)),
            ("features.2.0.block.2.fc1.weight", (4, 96, 1, 1)),  # squeeze = input width / 4
            ("features.2.0.block.3.1.running_var", (24,)),
            ("features.6.3.block.1.0.weight", (1152, 1, 5, 5)),
            ("features.7.0.block.3.0.weight", (320, 1152, 1, 1)),
            ("features.8.0.weight", (1280, 320, 1, 1)),
            ("features.8.1.bias", (1280,)),
            ("classifier.1.weight", (1000, 1280)),
        ],
    )


def test_output_shape_at_native_size(rng):
    model = models.create("efficientnet_b0").eval()
    assert model.default_input_shape == (224, 224, 3)
    with no_grad():
        y = model(rng.standard_normal((1, 224, 224, 3)).astype(np.float32))
    assert y.shape == (1, 1000)


@pytest.mark.parametrize("c_in, c_out, k, stride, t", [
    (16, 16, 3, 1, 6),   # residual
    (16, 24, 5, 2, 6),   # strided 5x5
    (32, 16, 3, 1, 1),   # no expansion
    (12, 12, 5, 1, 4),   # residual, 5x5
])
def test_mbconv_matches_torch(rng, c_in, c_out, k, stride, t):
    ours = MBConv(c_in, c_out, k, stride, t, drop_rate=0.0)
    compare_with_torch_module(ours, TorchMBConv(c_in, c_out, k, stride, t),
                              rng.standard_normal((2, 9, 9, c_in)), rng)


def test_drop_path_is_identity_in_eval(rng):
    block = MBConv(8, 8, 3, 1, 6, drop_rate=0.5).eval()
    x = rng.standard_normal((16, 6, 6, 8)).astype(np.float32)
    with no_grad():
        np.testing.assert_array_equal(block(x).data, (block.block(x) + x).data)


def test_drop_path_drops_whole_samples_in_training(rng):
    block = MBConv(8, 8, 3, 1, 6, drop_rate=0.5).train()
    x = rng.standard_normal((64, 5, 5, 8)).astype(np.float32)
    with no_grad():
        branch = block.block(x).data  # batch statistics: the same in both calls
        y = block(x).data
    kept = np.array([not np.allclose(y[n], x[n]) for n in range(len(x))])
    assert 0 < kept.sum() < len(x)
    np.testing.assert_allclose(y[kept], x[kept] + branch[kept] / 0.5, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y[~kept], x[~kept])


def test_stochastic_depth_grows_linearly():
    model = efficientnet_b0()
    rates = [block.stochastic_depth.rate for stage in model.features[1:8] for block in stage]
    assert len(rates) == 16
    np.testing.assert_allclose(rates, [0.2 * i / 16 for i in range(16)])


def test_every_parameter_gets_a_gradient(rng):
    seed_weights(rng)
    model = EfficientNet(num_classes=5, width_mult=0.25, depth_mult=0.25, dropout=0.0,
                         stochastic_depth=0.0)
    assert_every_parameter_gets_a_gradient(model, rng.standard_normal((2, 32, 32, 3)), rng)


def test_registry_records_config():
    model = models.create("efficientnet_b0", num_classes=3, stochastic_depth=0.1)
    assert model.config == {"name": "efficientnet_b0", "num_classes": 3, "stochastic_depth": 0.1}
    assert model.features[7][0].stochastic_depth.rate == pytest.approx(0.1 * 15 / 16)
    assert model.classifier[1].weight.shape == (1280, 3)
