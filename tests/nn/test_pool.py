"""Pooling layers: each equals its functional op, shapes, repr, errors."""

import numpy as np
import pytest
import torch

from striate import Tensor, nn
from striate import functional as F

CASES = [
    # (layer, input shape, the same computation through the functional op)
    (nn.MaxPool1D(3, strides=2), (2, 9, 3), lambda x: F.max_pool1d(x, 3, 2)),
    (nn.MaxPool2D(2), (2, 8, 6, 3), lambda x: F.max_pool2d(x, 2)),
    (nn.MaxPool2D(3, strides=2, padding="same"), (1, 7, 7, 2),
     lambda x: F.max_pool2d(x, 3, 2, "same")),
    (nn.MaxPool3D((2, 1, 2)), (1, 4, 3, 4, 2), lambda x: F.max_pool3d(x, (2, 1, 2))),
    (nn.AvgPool1D(2), (2, 8, 3), lambda x: F.avg_pool1d(x, 2)),
    (nn.AvgPool2D(3, strides=1, padding=1, count_include_pad=True), (2, 5, 5, 2),
     lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=True)),
    (nn.AvgPool3D(2), (1, 4, 4, 4, 2), lambda x: F.avg_pool3d(x, 2)),
    (nn.LPPool1D(2, 3), (2, 9, 2), lambda x: F.lp_pool1d(x, 2, 3)),
    (nn.LPPool2D(3.0, 2, strides=1), (1, 5, 5, 2), lambda x: F.lp_pool2d(x, 3.0, 2, 1)),
    (nn.LPPool3D(2, 2), (1, 4, 4, 4, 1), lambda x: F.lp_pool3d(x, 2, 2)),
    (nn.GaussianPool2D(3, strides=2, padding="same", sigma=0.7), (2, 6, 6, 3),
     lambda x: F.gaussian_pool2d(x, 3, 2, "same", 0.7)),
    (nn.GlobalAveragePooling(), (2, 5, 4, 3), F.global_avg_pool),
    (nn.GlobalMaxPooling(), (2, 7, 3), F.global_max_pool),
    (nn.GlobalAveragePooling(keepdims=True), (2, 5, 4, 3),
     lambda x: F.global_avg_pool(x).reshape(2, 1, 1, 3)),
    (nn.AdaptiveAvgPool1D(4), (2, 10, 3), lambda x: F.adaptive_avg_pool1d(x, 4)),
    (nn.AdaptiveAvgPool2D((3, 2)), (2, 7, 5, 3), lambda x: F.adaptive_avg_pool2d(x, (3, 2))),
    (nn.AdaptiveAvgPool2D((None, 2)), (1, 7, 5, 3), lambda x: F.adaptive_avg_pool2d(x, (7, 2))),
    (nn.AdaptiveAvgPool3D(2), (1, 4, 5, 3, 2), lambda x: F.adaptive_avg_pool3d(x, 2)),
    (nn.AdaptiveMaxPool1D(3), (2, 7, 2), lambda x: F.adaptive_max_pool1d(x, 3)),
    (nn.AdaptiveMaxPool2D(3), (2, 7, 7, 2), lambda x: F.adaptive_max_pool2d(x, 3)),
    (nn.AdaptiveMaxPool3D(2), (1, 4, 4, 4, 2), lambda x: F.adaptive_max_pool3d(x, 2)),
    (nn.Maxout(3), (2, 4, 4, 6), lambda x: F.maxout(x, 3)),
]


@pytest.mark.parametrize("layer, shape, reference", CASES, ids=lambda v: repr(v)[:40])
def test_pool_layer_equals_functional(layer, shape, reference, rng):
    x = rng.standard_normal(shape)
    if isinstance(layer, nn.LPPool1D | nn.LPPool2D | nn.LPPool3D):
        x = np.abs(x) + 0.1
    xa, xb = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    y, expected = layer(xa), reference(xb)
    np.testing.assert_array_equal(y.data, expected.data)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    expected.backward(dy)
    np.testing.assert_array_equal(xa.grad, xb.grad)
    assert layer.num_parameters() == 0


def test_max_pool_matches_torch(rng):
    x = rng.standard_normal((2, 9, 9, 3)).astype(np.float32)
    ours = nn.MaxPool2D(3, strides=2, padding=1)(x).data
    theirs = torch.nn.MaxPool2d(3, 2, padding=1)(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_array_equal(ours, theirs.numpy().transpose(0, 2, 3, 1))


def test_lecture_shapes():
    # AlexNet's overlapping pooling: 55x55x96 -> 27x27x96 with 3x3 windows at stride 2.
    assert nn.MaxPool2D(3, strides=2)(np.zeros((1, 55, 55, 96))).shape == (1, 27, 27, 96)
    assert nn.AvgPool2D(2)(np.zeros((1, 28, 28, 6))).shape == (1, 14, 14, 6)


def test_repr_shows_only_non_default_arguments():
    assert repr(nn.MaxPool2D(2)) == "MaxPool2D(2)"
    assert repr(nn.MaxPool2D(2, strides=2)) == "MaxPool2D(2)"
    assert repr(nn.MaxPool2D(3, strides=2, padding="same")) == \
        "MaxPool2D(3, strides=2, padding='same')"
    assert repr(nn.AvgPool1D(2, count_include_pad=True)) == "AvgPool1D(2, count_include_pad=True)"
    assert repr(nn.LPPool2D(2, 3)) == "LPPool2D(2.0, 3)"
    assert repr(nn.GaussianPool2D(3, sigma=2)) == "GaussianPool2D(3, sigma=2.0)"
    assert repr(nn.GlobalAveragePooling()) == "GlobalAveragePooling()"
    assert repr(nn.GlobalMaxPooling(keepdims=True)) == "GlobalMaxPooling(keepdims=True)"
    assert repr(nn.AdaptiveAvgPool2D((7, 7))) == "AdaptiveAvgPool2D(7)"
    assert repr(nn.Maxout(2)) == "Maxout(2)"


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.MaxPool2D(0), ValueError, r"MaxPool2D: pool_size must be >= 1, got 0"),
    (lambda: nn.AvgPool2D(2, strides=(1, 2, 3)), ValueError,
     r"AvgPool2D: strides must be an int or 2 ints"),
    (lambda: nn.MaxPool1D(2, padding="half"), ValueError, r"MaxPool1D: unknown padding 'half'"),
    (lambda: nn.AvgPool2D(2, count_include_pad=1), TypeError,
     r"AvgPool2D: count_include_pad must be True or False"),
    (lambda: nn.LPPool2D(0, 2), ValueError, r"LPPool2D: p must be a number > 0, got 0"),
    (lambda: nn.GaussianPool2D(3, sigma=-1), ValueError, r"GaussianPool2D: sigma must be"),
    (lambda: nn.AdaptiveAvgPool2D(0), ValueError, r"AdaptiveAvgPool2D: output_size must be >= 1"),
    (lambda: nn.Maxout(0), ValueError, r"Maxout: pieces must be >= 1"),
    (lambda: nn.GlobalMaxPooling(keepdims="yes"), TypeError,
     r"GlobalMaxPooling: keepdims must be True or False"),
])
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_input_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"MaxPool2D 'pool': expected a 4-D input "
                                         r"\(N, H, W, C\), got shape \(8, 8, 3\)"):
        nn.MaxPool2D(2, name="pool")(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"GlobalAveragePooling 'globalaveragepooling': expected "
                                         r"an input \(N, \*spatial, C\)"):
        nn.GlobalAveragePooling()(np.zeros((8, 3)))
    with pytest.raises(ValueError, match=r"Maxout 'maxout': the 5 channels of input shape "
                                         r"\(2, 5\) do not split into groups of pieces=2"):
        nn.Maxout(2)(np.zeros((2, 5)))
