"""MobileNetV2 and the blocks it shares with EfficientNet and RegNet (ConvNormActivation,
make_divisible). The helpers at the top are used by the other M3 family tests too."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from striate import Tensor, interop, models, nn, no_grad
from striate.models.mobilenet import (
    ConvNormActivation,
    InvertedResidual,
    MobileNetV2,
    make_divisible,
    mobilenet_v2,
)
from tests.models import torch_reference


def torch_layout(a: np.ndarray) -> np.ndarray:
    """Our kernel (kH, kW, C_in/g, C_out) / Dense (in, out) in torch's layout."""
    if a.ndim == 4:
        return a.transpose(3, 2, 0, 1)
    if a.ndim == 2:
        return a.T
    return a


def structure_digest(model) -> str:
    """sha256 of the sorted 'key (torch shape)' lines of the state_dict: two models with the
    same digest have the same keys with the same shapes."""
    lines = [f"{k} {torch_layout(v).shape}" for k, v in sorted(model.state_dict().items())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def assert_matches_torchvision(model, digest: str, count: int, spot_checks) -> None:
    """Keys and shapes equal torchvision's (num_batches_tracked left out): a few spelled out,
    then all of them through the digest of torchvision's state_dict structure."""
    state = model.state_dict()
    for key, shape in spot_checks:
        assert key in state, f"missing key {key}"
        assert torch_layout(state[key]).shape == shape, (
            f"{key}: ours {state[key].shape} is torch {torch_layout(state[key]).shape}, "
            f"torchvision has {shape}"
        )
    assert len(state) == count
    assert structure_digest(model) == digest


def seed_weights(rng) -> None:
    """Draw the next model's initial weights reproducibly from the test's generator (a ReLU
    that random weights happen to switch off would otherwise make a gradient test flaky)."""
    nn.init.set_seed(int(rng.integers(2**31)))


def assert_every_parameter_gets_a_gradient(model, x: np.ndarray, rng) -> None:
    """One forward and backward reaches every parameter with a non-zero gradient.

    Evaluation mode (running statistics): in training mode the gradient of a batch-norm bias
    whose output reaches the loss only through 1x1 convolutions and further batch norms is zero
    in exact arithmetic (batch norm removes a per-channel shift), only rounding noise."""
    model.eval()
    y = model(x)
    (y * rng.standard_normal(y.shape).astype(y.dtype)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient reached {missing}"


def compare_with_torch_module(ours, theirs, x: np.ndarray, rng, rtol=1e-7, atol=1e-9):
    """float64, training mode (batch statistics): copy torch's random weights into ours,
    compare the output, the input gradient and every parameter's gradient.

    x: (N, H, W, C) channels-last; torch receives it as (N, C, H, W)."""
    theirs = torch_reference.randomize(theirs, rng).double().train()
    ours.astype(np.float64)
    interop.load_torch_state_dict(ours, theirs.state_dict(), input_shape=x.shape[1:])
    ours.train()
    x_ours = Tensor(x, requires_grad=True)
    y = ours(x_ours)
    x_torch = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    y_torch = theirs(x_torch)
    y_torch_ours = y_torch.detach().numpy()
    if y_torch_ours.ndim == 4:
        y_torch_ours = y_torch_ours.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y.data, y_torch_ours, rtol=rtol, atol=atol, err_msg="output")
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    y_torch.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2) if dy.ndim == 4 else dy))
    np.testing.assert_allclose(x_ours.grad, x_torch.grad.numpy().transpose(0, 2, 3, 1),
                               rtol=rtol, atol=atol, err_msg="input gradient")
    torch_params = dict(theirs.named_parameters())
    names = [name for name, _ in ours.named_parameters()]
    assert sorted(names) == sorted(torch_params)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(torch_layout(p.grad), torch_params[name].grad.numpy(),
                                   rtol=rtol, atol=atol, err_msg=f"gradient of {name}")


# ---------------------------------------------------------------------------------------------


def test_parameter_count():
    assert mobilenet_v2().num_parameters() == 3_504_872


def test_state_dict_matches_torchvision():
    assert_matches_torchvision(
        mobilenet_v2(),
        "d613ea65450d53182cb0463e1d07b0654fa8762aa0f8b9f034d8ef0357f070e3",
        262,
        [
            ("features.0.0.weight", (32, 3, 3, 3)),
            ("features.0.1.running_mean", (32,)),
            ("features.1.conv.0.0.weight", (32, 1, 3, 3)),  # depthwise, t = 1: no expansion
            ("features.1.conv.1.weight", (16, 32, 1, 1)),
            ("features.1.conv.2.bias", (16,)),
            ("features.2.conv.0.0.weight", (96, 16, 1, 1)),
            ("features.2.conv.1.0.weight", (96, 1, 3, 3)),
            ("features.2.conv.2.weight", (24, 96, 1, 1)),
            ("features.2.conv.3.running_var", (24,)),
            ("features.17.conv.2.weight", (320, 960, 1, 1)),
            ("features.18.0.weight", (1280, 320, 1, 1)),
            ("features.18.1.weight", (1280,)),
            ("classifier.1.weight", (1000, 1280)),
            ("classifier.1.bias", (1000,)),
        ],
    )


def test_depthwise_kernel_layout():
    # torch's depthwise kernel (C, 1, 3, 3) is ours (3, 3, 1, C): groups = C.
    conv = mobilenet_v2().features[1].conv[0][0]
    assert conv.weight.shape == (3, 3, 1, 32)
    assert conv.groups == 32


def test_output_shape_at_native_size(rng):
    model = models.create("mobilenet_v2").eval()
    assert model.default_input_shape == (224, 224, 3)
    with no_grad():
        y = model(rng.standard_normal((1, 224, 224, 3)).astype(np.float32))
    assert y.shape == (1, 1000)
    assert y.dtype == np.float32


def test_matches_torch_reference_forward(rng):
    theirs = torch_reference.build("mobilenet_v2", num_classes=10)
    ours = mobilenet_v2(num_classes=10)
    interop.load_torch_state_dict(ours, theirs.state_dict(), input_shape=(32, 32, 3))
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    with no_grad():
        y = ours.eval()(x).data
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("in_channels, out_channels, strides, t", [
    (8, 8, 1, 6),    # residual
    (8, 8, 1, 1),    # residual, no expansion
    (8, 12, 2, 6),   # strided, no residual
    (6, 10, 1, 3),   # widths differ, no residual
])
def test_inverted_residual_matches_torch(rng, in_channels, out_channels, strides, t):
    theirs = torch_reference.InvertedResidual(in_channels, out_channels, strides, t)
    ours = InvertedResidual(in_channels, out_channels, strides, t)
    assert ours.use_residual == (strides == 1 and in_channels == out_channels)
    x = rng.standard_normal((2, 7, 7, in_channels))
    compare_with_torch_module(ours, theirs, x, rng)


def test_every_parameter_gets_a_gradient(rng):
    seed_weights(rng)
    model = MobileNetV2(num_classes=5, width_mult=0.25)
    assert_every_parameter_gets_a_gradient(model, rng.standard_normal((2, 32, 32, 3)), rng)


@pytest.mark.parametrize("value, divisor, expected", [
    (32, 8, 32), (32 * 0.75, 8, 24), (32 * 0.35, 8, 16), (16 * 0.5, 8, 8), (37.3, 8, 40),
    (1280 * 1.4, 8, 1792), (3, 8, 8), (100, 16, 96), (90, 16, 96), (200, 16, 208),
])
def test_make_divisible_matches_torchvision(value, divisor, expected):
    # Expected values from torchvision.models._utils._make_divisible.
    assert make_divisible(value, divisor) == expected


def test_width_multiplier_changes_widths():
    model = MobileNetV2(num_classes=10, width_mult=0.5)
    assert model.features[0][0].weight.shape == (3, 3, 3, 16)
    assert model.classifier[1].weight.shape == (1280, 10)  # the last width never shrinks


def test_conv_norm_activation_layout(rng):
    block = ConvNormActivation(3, 16, 3, strides=2, activation=None)
    assert len(block) == 2  # no activation child
    y = block(rng.standard_normal((1, 9, 9, 3)).astype(np.float32))
    assert y.shape == (1, 5, 5, 16)  # padding 1 at stride 2 rounds up like torchvision
    assert block[0].use_bias is False


def test_registry_records_config():
    model = models.create("mobilenet_v2", num_classes=7, dropout=0.1)
    assert model.config == {"name": "mobilenet_v2", "num_classes": 7, "dropout": 0.1}
    assert model.classifier[0].rate == 0.1
    assert model.classifier[1].weight.shape == (1280, 7)


def test_initialisation_follows_torchvision(rng):
    # kaiming_normal_(mode="fan_out"): std sqrt(2 / (kH * kW * C_out)); classifier N(0, 0.01^2).
    w = nn.init.he_normal_fan_out((3, 3, 64, 256), rng=rng)
    assert w.dtype == np.float32
    assert abs(w.std() / np.sqrt(2 / (9 * 256)) - 1) < 0.02
    assert abs(nn.init.normal(0.01)((512, 1000), rng=rng).std() / 0.01 - 1) < 0.02
    model = mobilenet_v2()
    bn = model.features[0][1]
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.bias.data, 0)
    np.testing.assert_array_equal(model.classifier[1].bias.data, 0)
