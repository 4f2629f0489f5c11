"""Convolution layers: shapes, parameter counts, gradients, equality with the functional ops,
lazy vs eager build, repr, and error messages."""

import numpy as np
import pytest
import torch

from striate import Tensor, arith, nn
from striate import functional as F

CONV_CONFIGS = [
    # (class, input shape, kwargs)
    (nn.Conv1D, (2, 11, 3), dict(filters=4, kernel_size=3)),
    (nn.Conv1D, (1, 10, 4), dict(filters=6, kernel_size=2, strides=2, padding="same", groups=2)),
    (nn.Conv2D, (2, 9, 8, 3), dict(filters=5, kernel_size=3, padding="same")),
    (nn.Conv2D, (1, 9, 9, 4), dict(filters=4, kernel_size=(3, 2), strides=(2, 1),
                                   dilation_rate=2, groups=4, use_bias=False)),
    (nn.Conv2D, (2, 7, 7, 2), dict(filters=3, kernel_size=3, padding=((1, 0), (0, 2)),
                                   flip=True)),
    (nn.Conv2D, (3, 6, 6, 2), dict(filters=2, kernel_size=1, padding="full",
                                   activation="relu")),
    (nn.Conv3D, (1, 5, 6, 5, 2), dict(filters=3, kernel_size=3, padding=1, strides=(1, 2, 1))),
]


def _grads_all(layer, x):
    out = layer(x)
    out.backward(np.ones(out.shape, dtype=out.dtype))
    return out


@pytest.mark.parametrize("cls, shape, kwargs", CONV_CONFIGS)
def test_conv_layer_equals_functional_op(cls, shape, kwargs, rng):
    layer = cls(**kwargs).astype(np.float64)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    y = layer(x)
    rank = len(shape) - 2
    kernel = arith.ntuple(kwargs["kernel_size"], rank, "k", "test")
    groups = kwargs.get("groups", 1)
    assert layer.weight.shape == (*kernel, shape[-1] // groups, kwargs["filters"])
    assert layer.num_parameters() == arith.conv_params(
        kernel, shape[-1], kwargs["filters"], groups, kwargs.get("use_bias", True)
    )
    if layer.bias is not None:
        layer.bias.data[:] = rng.standard_normal(layer.bias.shape)
    y = layer(x)
    function = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    w = Tensor(layer.weight.data, requires_grad=True)
    b = None if layer.bias is None else Tensor(layer.bias.data, requires_grad=True)
    x2 = Tensor(x.data, requires_grad=True)
    expected = function(x2, w, b, stride=kwargs.get("strides", 1),
                        padding=kwargs.get("padding", "valid"),
                        dilation=kwargs.get("dilation_rate", 1), groups=groups,
                        flip=kwargs.get("flip", False))
    if kwargs.get("activation") == "relu":
        expected = F.relu(expected)
        assert y.op.relu  # taken inside the convolution, not by an op of its own
    np.testing.assert_array_equal(y.data, expected.data)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    expected.backward(dy)
    np.testing.assert_array_equal(layer.weight.grad, w.grad)
    np.testing.assert_array_equal(x.grad, x2.grad)
    if b is not None:
        np.testing.assert_array_equal(layer.bias.grad, b.grad)


def test_conv2d_matches_torch_conv2d(rng):
    layer = nn.Conv2D(6, 5, strides=2, padding=2, input_channels=3)
    t = torch.nn.Conv2d(3, 6, 5, stride=2, padding=2)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(layer.weight.data.transpose(3, 2, 0, 1).copy()))
        t.bias.copy_(torch.from_numpy(rng.standard_normal(6).astype(np.float32)))
    layer.bias.data[:] = t.bias.detach().numpy()
    x = rng.standard_normal((2, 11, 11, 3)).astype(np.float32)
    expected = t(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).detach().numpy()
    np.testing.assert_allclose(layer(x).data, expected.transpose(0, 2, 3, 1), rtol=1e-4,
                               atol=1e-5)


def test_lecture_parameter_count():
    # 5x5 filters, 10 of them, on a 32x32x3 volume: (5*5*3 + 1) * 10 = 760 parameters.
    layer = nn.Conv2D(10, 5, input_channels=3)
    assert layer.num_parameters() == 760
    assert layer(np.zeros((1, 32, 32, 3))).shape == (1, 28, 28, 10)


def test_every_parameter_gets_a_gradient(rng):
    layers = [
        nn.Conv2D(4, 3, input_channels=2), nn.Conv2DTranspose(3, 3, strides=2),
        nn.DepthwiseConv2D(3, depth_multiplier=2), nn.SeparableConv2D(5, 3),
        nn.LocallyConnected2D(3, 2), nn.Conv1DTranspose(2, 3), nn.LocallyConnected1D(2, 3),
    ]
    for layer in layers:
        x = rng.standard_normal((2, 6, 6, 2) if "1D" not in type(layer).__name__ else (2, 6, 2))
        _grads_all(layer, x.astype(np.float32))
        for name, p in layer.named_parameters():
            assert p.grad is not None and p.grad.shape == p.shape, (type(layer).__name__, name)


def test_lazy_then_eager_build_give_same_shapes():
    pairs = [
        (nn.Conv2D(8, 3, groups=2), nn.Conv2D(8, 3, groups=2, input_channels=4)),
        (nn.Conv2DTranspose(8, 3), nn.Conv2DTranspose(8, 3, input_channels=4)),
        (nn.DepthwiseConv2D(3, depth_multiplier=3),
         nn.DepthwiseConv2D(3, depth_multiplier=3, input_channels=4)),
        (nn.SeparableConv2D(6, 3), nn.SeparableConv2D(6, 3, input_channels=4)),
    ]
    for lazy, eager in pairs:
        assert not lazy.built and eager.built
        lazy(np.zeros((1, 7, 7, 4), dtype=np.float32))
        assert lazy.built
        assert [(n, p.shape) for n, p in lazy.named_parameters()] == \
            [(n, p.shape) for n, p in eager.named_parameters()]


def test_conv_transpose_layer(rng):
    layer = nn.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1).astype("f8")
    x = rng.standard_normal((2, 4, 5, 6))
    y = layer(x)
    assert layer.weight.shape == (3, 3, 3, 6) and layer.bias.shape == (3,)
    expected = F.conv_transpose2d(x, layer.weight.data, layer.bias.data, stride=2,
                                  padding="same", output_padding=1)
    np.testing.assert_array_equal(y.data, expected.data)
    # It maps Conv2D's output shape back to its input shape.
    assert nn.Conv2DTranspose(3, 3, strides=2, padding="same")(np.zeros((1, 4, 4, 8))).shape \
        == (1, 8, 8, 3)
    assert nn.Conv3DTranspose(2, 2, strides=2)(np.zeros((1, 2, 3, 2, 4))).shape == (1, 4, 6, 4, 2)


def test_depthwise_and_separable(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    depthwise = nn.DepthwiseConv2D(3, depth_multiplier=2, padding="same").astype("f8")
    y = depthwise(x)
    assert y.shape == (2, 6, 6, 6) and depthwise.weight.shape == (3, 3, 1, 6)
    assert depthwise.num_parameters() == 3 * 3 * 6 + 6
    np.testing.assert_array_equal(
        y.data, F.conv2d(x, depthwise.weight.data, depthwise.bias.data, padding="same",
                         groups=3).data
    )
    separable = nn.SeparableConv2D(4, 3, depth_multiplier=2).astype("f8")
    y = separable(x)
    assert y.shape == (2, 4, 4, 4)
    assert separable.depthwise_weight.shape == (3, 3, 1, 6)
    assert separable.pointwise_weight.shape == (1, 1, 6, 4)
    assert separable.num_parameters() == 3 * 3 * 6 + 6 * 4 + 4
    middle = F.conv2d(x, separable.depthwise_weight.data, groups=3)
    expected = F.conv2d(middle, separable.pointwise_weight.data, separable.bias.data)
    np.testing.assert_allclose(y.data, expected.data, rtol=1e-12)


def test_locally_connected(rng):
    layer = nn.LocallyConnected2D(5, 3, strides=2, padding="same").astype("f8")
    x = rng.standard_normal((2, 7, 7, 3))
    y = layer(x)
    assert y.shape == (2, 4, 4, 5)
    assert layer.weight.shape == (4, 4, 3, 3, 3, 5) and layer.bias.shape == (4, 4, 5)
    expected = F.locally_connected2d(x, layer.weight.data, layer.bias.data, stride=2,
                                     padding="same")
    np.testing.assert_array_equal(y.data, expected.data)
    with pytest.raises(ValueError, match=r"LocallyConnected2D 'locallyconnected2d': built for "
                                         r"inputs of spatial size \(7, 7\)"):
        layer(np.zeros((1, 8, 8, 3)))


def test_repr_shows_only_non_default_arguments():
    assert repr(nn.Conv2D(16, 3, padding="same")) == "Conv2D(16, 3, padding='same')"
    assert repr(nn.Conv2D(16, (3, 1), strides=2, groups=4, use_bias=False, activation="relu")) \
        == "Conv2D(16, (3, 1), strides=2, groups=4, use_bias=False, activation='relu')"
    assert repr(nn.Conv1D(4, 5, padding="SAME", dilation_rate=2)) == \
        "Conv1D(4, 5, padding='same', dilation_rate=2)"
    assert repr(nn.Conv2DTranspose(3, 4, strides=2, output_padding=1)) == \
        "Conv2DTranspose(3, 4, strides=2, output_padding=1)"
    assert repr(nn.DepthwiseConv2D(3, depth_multiplier=2)) == \
        "DepthwiseConv2D(3, depth_multiplier=2)"
    assert repr(nn.SeparableConv2D(8, 3)) == "SeparableConv2D(8, 3)"
    assert repr(nn.Conv2D(8, 3, kernel_initializer="he_normal", flip=True)) == \
        "Conv2D(8, 3, kernel_initializer='he_normal', flip=True)"
    assert repr(nn.LocallyConnected2D(5, 3)) == "LocallyConnected2D(5, 3)"


def test_channel_mismatch_names_the_layer():
    model = nn.Sequential({"conv1": nn.Conv2D(4, 3), "conv2": nn.Conv2D(8, 3)})
    model(np.zeros((1, 8, 8, 1), dtype=np.float32))
    with pytest.raises(ValueError, match=r"^Conv2D 'conv2': input has 3 channels but the kernel "
                                         r"expects 4 \(input shape \(8, 28, 28, 3\)\)$"):
        model.conv2(np.zeros((8, 28, 28, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Conv2D 'conv1': expected a 4-D input \(N, H, W, C\), "
                                         r"got shape \(28, 28, 1\)"):
        model(np.zeros((28, 28, 1), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d': groups=2 must divide the input's 3 "
                                         r"channels"):
        nn.Conv2D(4, 3, groups=2)(np.zeros((1, 5, 5, 3)))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2D(8, 3, groups=3), r"Conv2D: groups must divide filters; Received: "
                                        r"groups=3, filters=8"),
    (lambda: nn.Conv2D(-1, 3), r"Conv2D: filters must be a positive int, got -1"),
    (lambda: nn.Conv1D(2.5, 3), r"Conv1D: filters must be a positive int, got 2.5"),
    (lambda: nn.Conv2D(4, 0), r"Conv2D: kernel_size must be >= 1, got 0"),
    (lambda: nn.Conv2D(4, (3, 3, 3)), r"Conv2D: kernel_size must be an int or 2 ints"),
    (lambda: nn.Conv2D(4, 3, padding="half"), r"Conv2D: unknown padding 'half'"),
    (lambda: nn.Conv2D(4, 3, padding=-1), r"Conv2D: padding must be >= 0"),
    (lambda: nn.Conv2D(4, 3, activation="relu7"), r"Conv2D: activation: unknown activation "
                                                  r"'relu7'; use a callable or one of elu"),
    (lambda: nn.Conv2D(4, 3, kernel_initializer="he"), r"Conv2D: kernel_initializer: unknown "
                                                       r"initializer 'he'"),
    (lambda: nn.Conv2DTranspose(4, 3, strides=2, output_padding=2),
     r"Conv2DTranspose: output_padding \(2, 2\) must be smaller than the strides \(2, 2\)"),
    (lambda: nn.DepthwiseConv2D(3, depth_multiplier=0),
     r"DepthwiseConv2D: depth_multiplier must be a positive int, got 0"),
    (lambda: nn.Conv2D(4, 3, input_channels=0), r"Conv2D: input_channels must be a positive int"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_custom_activation_and_initializer(rng):
    layer = nn.Conv2D(2, 1, activation=lambda t: t * 2, kernel_initializer="ones",
                      bias_initializer=nn.init.constant(0.5), input_channels=1)
    y = layer(np.full((1, 2, 2, 1), 3.0, dtype=np.float32))
    np.testing.assert_array_equal(y.data, np.full((1, 2, 2, 2), 7.0, dtype=np.float32))
    assert y.dtype == np.float32


def test_float32_by_default_and_follows_astype():
    layer = nn.Conv2D(2, 3, input_channels=1)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer(np.zeros((1, 4, 4, 1), dtype=np.float32)).dtype == np.float32
    layer.astype(np.float64)
    assert layer(np.zeros((1, 4, 4, 1))).dtype == np.float64


def test_non_contiguous_input_and_batch_of_one(rng):
    layer = nn.Conv2D(3, 3, padding="same").astype("f8")
    x = rng.standard_normal((1, 6, 8, 4))[:, :, ::2, :]  # (1, 6, 4, 4), strided view
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(layer(x).data, layer(np.ascontiguousarray(x)).data, rtol=1e-14)
