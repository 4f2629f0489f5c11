"""SqueezeExcitation: the formula, torchvision's module (keys, forward, every gradient), errors."""

import numpy as np
import pytest
import torch
from torch import nn as tnn

from striate import Tensor, interop, nn
from tests.helpers import check_gradients


class TorchSqueezeExcitation(tnn.Module):
    """torchvision.ops.misc.SqueezeExcitation, written out (torchvision is not installed)."""

    def __init__(self, channels, squeeze, activation=tnn.ReLU, scale_activation=tnn.Sigmoid):
        super().__init__()
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.fc1 = tnn.Conv2d(channels, squeeze, 1)
        self.fc2 = tnn.Conv2d(squeeze, channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x):
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


def test_formula(rng):
    se = nn.SqueezeExcitation(32, 2)
    se.astype(np.float64)
    x = rng.standard_normal((2, 5, 4, 32))
    w1, b1, w2, b2 = (p.data for p in se.parameters())
    assert (w1.shape, b1.shape, w2.shape, b2.shape) == ((1, 1, 32, 2), (2,), (1, 1, 2, 32), (32,))
    s = np.maximum(x.mean(axis=(1, 2)) @ w1[0, 0] + b1, 0) @ w2[0, 0] + b2
    expected = x * (1 / (1 + np.exp(-s)))[:, None, None, :]
    np.testing.assert_allclose(se(x).data, expected, rtol=1e-12)


CONFIGS = [
    # (channels, squeeze, activation, scale activation, input shape)
    (12, 3, (nn.ReLU, tnn.ReLU), (nn.Sigmoid, tnn.Sigmoid), (3, 5, 4)),
    (16, 4, (nn.SiLU, tnn.SiLU), (nn.Sigmoid, tnn.Sigmoid), (2, 3, 3)),  # EfficientNet
    (8, 8, (nn.GELU, tnn.GELU), (nn.Tanh, tnn.Tanh), (2, 6, 1)),
    (5, 1, (nn.Tanh, tnn.Tanh), (nn.Sigmoid, tnn.Sigmoid), (1, 1, 1)),  # batch of 1, 1x1 map
    (6, 2, (nn.ReLU, tnn.ReLU), (nn.Sigmoid, tnn.Sigmoid), (2, 7, 5)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("channels, squeeze, act, scale_act, shape", CONFIGS)
def test_matches_torchvision(channels, squeeze, act, scale_act, shape, dtype, rng):
    theirs = TorchSqueezeExcitation(channels, squeeze, act[1], scale_act[1])
    if dtype == np.float64:
        theirs.double()
    ours = nn.SqueezeExcitation(channels, squeeze, act[0], scale_act[0])
    ours.astype(dtype)
    interop.load_torch_state_dict(ours, theirs.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict()) == \
        ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    x = rng.standard_normal((shape[0], shape[1], shape[2], channels)).astype(dtype)
    x_ours = Tensor(x, requires_grad=True)
    x_torch = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    y, y_torch = ours(x_ours), theirs(x_torch)
    rtol, atol = (1e-9, 1e-10) if dtype == np.float64 else (1e-4, 1e-5)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, y_torch.detach().numpy().transpose(0, 2, 3, 1),
                               rtol=rtol, atol=atol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(dy)
    y_torch.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(x_ours.grad, x_torch.grad.numpy().transpose(0, 2, 3, 1),
                               rtol=rtol, atol=atol)
    torch_grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        expected = torch_grads[name].grad.numpy()
        if expected.ndim == 4:
            expected = expected.transpose(2, 3, 1, 0)  # (O, I, 1, 1) -> (1, 1, I, O)
        np.testing.assert_allclose(p.grad, expected, rtol=rtol, atol=atol, err_msg=name)


def test_gradients(rng):
    se = nn.SqueezeExcitation(4, 2)
    se.astype(np.float64)
    x = rng.standard_normal((2, 3, 2, 4))
    check_gradients(se, [x], rng)  # through both the gate and the product
    # Every parameter, along a random direction v: (L(p + eps v) - L(p - eps v)) / 2 eps.
    dy = rng.standard_normal(x.shape)
    se.zero_grad()
    se(x).backward(dy)
    eps = 1e-6
    for name, p in se.named_parameters():
        v = rng.standard_normal(p.shape)
        base = p.data.copy()
        losses = []
        for sign in (1, -1):
            p.data[...] = base + sign * eps * v
            losses.append(float(np.sum(se(x).data * dy)))
        p.data[...] = base
        assert np.isclose(np.sum(p.grad * v), (losses[0] - losses[1]) / (2 * eps),
                          rtol=1e-5, atol=1e-8), name


def test_initializer_repr_and_parameter_count():
    se = nn.SqueezeExcitation(64, 4, nn.SiLU, kernel_initializer=nn.init.he_normal_fan_out)
    assert se.num_parameters() == 2 * 64 * 4 + 4 + 64
    assert repr(se).splitlines()[:3] == [
        "SqueezeExcitation(64, 4",
        "  (avgpool): GlobalAveragePooling(keepdims=True)",
        "  (fc1): Conv2D(4, 1, kernel_initializer=he_normal_fan_out)",
    ]


def test_errors():
    with pytest.raises(ValueError, match=r"SqueezeExcitation: squeeze_channels must be >= 1, "
                                         r"got 0"):
        nn.SqueezeExcitation(8, 0)
    with pytest.raises(ValueError, match=r"SqueezeExcitation 'se': expected a 4-D input "
                                         r"\(N, H, W, C\), got shape \(2, 8\)"):
        nn.SqueezeExcitation(8, 2, name="se")(np.zeros((2, 8)))
