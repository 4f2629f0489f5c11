"""RegNetX/Y-400MF: the width quantisation, the residual bottleneck block, torchvision's layout."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from torch import nn as tnn

from striate import models, no_grad
from striate.models.regnet import (
    RegNet,
    ResBottleneckBlock,
    regnet_stages,
    regnet_x_400mf,
    regnet_y_400mf,
)
from tests.models.test_efficientnet import TorchSqueezeExcitation, _torch_cna
from tests.models.test_mobilenet import (
    assert_every_parameter_gets_a_gradient,
    assert_matches_torchvision,
    compare_with_torch_module,
    seed_weights,
)


class TorchResBottleneckBlock(tnn.Module):
    """torchvision's ResBottleneckBlock (BottleneckTransform a, b[, se], c) in PyTorch."""

    def __init__(self, c_in, c_out, stride, group_width, se_ratio=None):
        super().__init__()
        self.proj = None
        if c_in != c_out or stride != 1:
            self.proj = _torch_cna(c_in, c_out, 1, stride, activation=None)
        layers = {
            "a": _torch_cna(c_in, c_out, 1, activation=tnn.ReLU),
            "b": _torch_cna(c_out, c_out, 3, stride, c_out // group_width, activation=tnn.ReLU),
        }
        if se_ratio:
            layers["se"] = TorchSqueezeExcitation(c_out, int(round(se_ratio * c_in)))
        layers["c"] = _torch_cna(c_out, c_out, 1, activation=None)
        self.f = tnn.Sequential(OrderedDict(layers))
        self.activation = tnn.ReLU()

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.f(x))


def test_parameter_counts():
    assert regnet_x_400mf().num_parameters() == 5_495_976
    assert regnet_y_400mf().num_parameters() == 4_344_144


# (depth, w_0, w_a, w_m, group width) of torchvision's RegNets and the (depths, widths,
# group widths) that torchvision's BlockParams.from_init_params derives from them.
TORCHVISION_STAGES = [
    ((16, 48, 27.89, 2.09, 8), ([1, 3, 6, 6], [48, 104, 208, 440], [8] * 4)),  # y_400mf
    ((14, 56, 38.84, 2.4, 16), ([1, 3, 8, 2], [64, 144, 320, 784], [16] * 4)),  # y_800mf
    ((27, 48, 20.71, 2.65, 24), ([2, 6, 17, 2], [48, 120, 336, 888], [24] * 4)),  # y_1_6gf
    ((21, 80, 42.63, 2.66, 24), ([2, 5, 13, 1], [72, 216, 576, 1512], [24] * 4)),  # y_3_2gf
    ((17, 192, 76.82, 2.19, 56), ([2, 4, 10, 1], [224, 448, 896, 2016], [56] * 4)),  # y_8gf
    ((27, 456, 160.83, 2.52, 264),
     ([2, 7, 17, 1], [528, 1056, 2904, 7392], [264] * 4)),  # y_128gf
    ((22, 24, 24.48, 2.54, 16), ([1, 2, 7, 12], [32, 64, 160, 400], [16] * 4)),  # x_400mf
    ((16, 56, 35.73, 2.28, 16), ([1, 3, 7, 5], [64, 128, 288, 672], [16] * 4)),  # x_800mf
    ((23, 80, 49.56, 2.88, 120),
     ([2, 5, 15, 1], [80, 240, 720, 1920], [80, 120, 120, 120])),  # x_8gf: group capped
    ((23, 320, 69.86, 2.0, 168), ([2, 7, 13, 1], [336, 672, 1344, 2520], [168] * 4)),  # x_32gf
]


@pytest.mark.parametrize("params, expected", TORCHVISION_STAGES)
def test_stages_match_torchvision(params, expected):
    assert regnet_stages(*params) == expected


@pytest.mark.parametrize("params", [
    (16, 48, -1.0, 2.0, 8), (16, 0, 27.89, 2.09, 8), (16, 48, 27.89, 1.0, 8),
    (16, 44, 27.89, 2.09, 8),
])
def test_stages_reject_bad_settings(params):
    with pytest.raises(ValueError, match=r"regnet_stages: need w_a >= 0, w_0 > 0"):
        regnet_stages(*params)


def test_x_400mf_state_dict_matches_torchvision():
    assert_matches_torchvision(
        regnet_x_400mf(),
        "4d12f1772d20ece8c9e82652dc6ff5cd2ed2ad8f3d7d64a530876e0524da90c9",
        357,
        [
            ("stem.0.weight", (32, 3, 3, 3)),
            ("stem.1.running_mean", (32,)),
            ("trunk_output.block1.block1-0.proj.0.weight", (32, 32, 1, 1)),
            ("trunk_output.block1.block1-0.f.a.0.weight", (32, 32, 1, 1)),
            ("trunk_output.block1.block1-0.f.b.0.weight", (32, 16, 3, 3)),  # groups 32 / 16
            ("trunk_output.block1.block1-0.f.c.1.weight", (32,)),
            ("trunk_output.block2.block2-1.f.b.0.weight", (64, 16, 3, 3)),
            ("trunk_output.block4.block4-11.f.c.0.weight", (400, 400, 1, 1)),
            ("fc.weight", (1000, 400)),
        ],
    )


def test_y_400mf_state_dict_matches_torchvision():
    assert_matches_torchvision(
        regnet_y_400mf(),
        "cb7f2c2686cdf2949299fc22dc577eca3084691d875925443d212af150482ee7",
        331,
        [
            ("trunk_output.block1.block1-0.f.se.fc1.weight", (8, 48, 1, 1)),  # 0.25 * 32
            ("trunk_output.block1.block1-0.f.se.fc2.bias", (48,)),
            ("trunk_output.block3.block3-5.f.se.fc1.weight", (52, 208, 1, 1)),
            ("trunk_output.block4.block4-0.proj.0.weight", (440, 208, 1, 1)),
            ("trunk_output.block4.block4-5.f.b.0.weight", (440, 8, 3, 3)),
            ("fc.bias", (1000,)),
        ],
    )


@pytest.mark.parametrize("name", ["regnet_x_400mf", "regnet_y_400mf"])
def test_output_shape_at_native_size(rng, name):
    model = models.create(name).eval()
    assert model.default_input_shape == (224, 224, 3)
    with no_grad():
        y = model(rng.standard_normal((1, 224, 224, 3)).astype(np.float32))
    assert y.shape == (1, 1000)


@pytest.mark.parametrize("c_in, c_out, stride, group_width, se_ratio", [
    (16, 16, 1, 8, None),    # identity shortcut
    (8, 16, 2, 8, None),     # projection shortcut
    (16, 16, 1, 4, 0.25),    # Y: squeeze-excitation
    (8, 24, 2, 8, 0.25),     # Y, projection
])
def test_block_matches_torch(rng, c_in, c_out, stride, group_width, se_ratio):
    ours = ResBottleneckBlock(c_in, c_out, stride, group_width, 1.0, se_ratio)
    assert (ours.proj is None) == (c_in == c_out and stride == 1)
    theirs = TorchResBottleneckBlock(c_in, c_out, stride, group_width, se_ratio)
    compare_with_torch_module(ours, theirs, rng.standard_normal((2, 8, 8, c_in)), rng)


@pytest.mark.parametrize("se_ratio", [None, 0.25])
def test_every_parameter_gets_a_gradient(rng, se_ratio):
    # d=4, w_0=16, w_a=16, w_m=2 gives three stages of widths 16, 32, 64.
    seed_weights(rng)
    model = RegNet(4, 16, 16.0, 2.0, 8, se_ratio=se_ratio, num_classes=5, stem_width=16)
    assert len(model.trunk_output) == 3
    assert_every_parameter_gets_a_gradient(model, rng.standard_normal((2, 32, 32, 3)), rng)
