"""Normalisation layers: train/eval behaviour, running statistics, equality with torch."""

import numpy as np
import pytest
import torch

from striate import Tensor, nn
from striate import functional as F


def _to_nchw(a):
    return torch.from_numpy(np.moveaxis(a, -1, 1).copy())


def test_batch_norm_matches_torch_in_train_then_eval(rng):
    layer = nn.BatchNorm(momentum=0.2).astype(np.float64)
    t = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    for _ in range(3):
        x = rng.standard_normal((4, 5, 5, 3)) * 2 + 1
        xt = Tensor(x, requires_grad=True)
        y = layer(xt)
        tx = _to_nchw(x).requires_grad_()
        ty = t(tx)
        np.testing.assert_allclose(y.data, np.moveaxis(ty.detach().numpy(), 1, -1), rtol=1e-9,
                                   atol=1e-10)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    ty.backward(_to_nchw(dy))
    np.testing.assert_allclose(xt.grad, np.moveaxis(tx.grad.numpy(), 1, -1), rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(layer.weight.grad, t.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(layer.bias.grad, t.bias.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(layer.running_mean, t.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, t.running_var.numpy(), rtol=1e-12)
    layer.eval(), t.eval()
    x = rng.standard_normal((2, 5, 5, 3))
    mean_before = layer.running_mean.copy()
    np.testing.assert_allclose(layer(x).data, np.moveaxis(t(_to_nchw(x)).detach().numpy(), 1, -1),
                               rtol=1e-9, atol=1e-10)
    np.testing.assert_array_equal(layer.running_mean, mean_before)  # eval leaves them alone


def test_batch_norm_parameters_buffers_and_state_dict():
    layer = nn.BatchNorm(input_channels=4)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in layer.named_buffers()] == ["running_mean", "running_var"]
    assert layer.num_parameters() == 8
    np.testing.assert_array_equal(layer.weight.data, 1)
    np.testing.assert_array_equal(layer.running_var, 1)
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    bare = nn.BatchNorm(center=False, scale=False, input_channels=4)
    assert bare.num_parameters() == 0 and len(list(bare.buffers())) == 2
    y = bare(np.random.default_rng(0).standard_normal((8, 4)))
    np.testing.assert_allclose(y.data.mean(axis=0), 0, atol=1e-6)


def test_batch_norm_equals_functional_on_1d_and_3d(rng):
    for shape in [(6, 4), (3, 5, 4), (2, 3, 3, 3, 4)]:
        layer = nn.BatchNorm().astype(np.float64)
        x = rng.standard_normal(shape)
        y = layer(x)
        expected = F.batch_norm(x, np.ones(4), np.zeros(4), np.zeros(4), np.ones(4))
        np.testing.assert_array_equal(y.data, expected.data)


def test_batch_norm_errors_and_repr():
    with pytest.raises(ValueError, match=r"BatchNorm: momentum must be a number in \[0, 1\], "
                                         r"got 0.99\d*|got 1.5"):
        nn.BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match=r"BatchNorm: eps must be a number >= 0, got -1"):
        nn.BatchNorm(eps=-1)
    layer = nn.BatchNorm(input_channels=3, name="bn1")
    with pytest.raises(ValueError, match=r"BatchNorm 'bn1': input has 4 channels but the layer "
                                         r"was built for 3 \(input shape \(2, 4\)\)"):
        layer(np.zeros((2, 4)))
    assert repr(nn.BatchNorm()) == "BatchNorm()"
    assert repr(nn.BatchNorm(momentum=0.01, center=False)) == \
        "BatchNorm(momentum=0.01, center=False)"


def test_layer_norm_and_group_norm_match_torch(rng):
    x = rng.standard_normal((2, 4, 4, 6))
    with pytest.raises(AttributeError, match=r"LayerNorm has no attribute 'weight'; this layer "
                                             r"creates its weights on its first call"):
        _ = nn.LayerNorm().weight
    layer = nn.LayerNorm(input_channels=6).astype(np.float64)
    layer.weight.data[:] = rng.standard_normal(6)
    t = torch.nn.LayerNorm(6).double()
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(layer.weight.data))
    np.testing.assert_allclose(layer(x).data, t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-10)
    group = nn.GroupNorm(3).astype(np.float64)
    tg = torch.nn.GroupNorm(3, 6).double()
    np.testing.assert_allclose(group(x).data, np.moveaxis(tg(_to_nchw(x)).detach().numpy(), 1, -1),
                               rtol=1e-9, atol=1e-10)
    assert repr(nn.GroupNorm(3, eps=1e-3)) == "GroupNorm(3, eps=0.001)"
    with pytest.raises(ValueError, match=r"GroupNorm 'groupnorm': groups=4 must divide the "
                                         r"input's 6 channels"):
        nn.GroupNorm(4)(x)
    with pytest.raises(ValueError, match=r"GroupNorm: groups must divide input_channels; "
                                         r"Received: groups=4, input_channels=6"):
        nn.GroupNorm(4, input_channels=6)


def test_local_response_norm(rng):
    x = rng.standard_normal((2, 3, 3, 8))
    layer = nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    expected = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(_to_nchw(x))
    np.testing.assert_allclose(layer(x).data, np.moveaxis(expected.numpy(), 1, -1), rtol=1e-10)
    assert layer.num_parameters() == 0
    assert repr(layer) == "LocalResponseNorm(alpha=0.0005, k=2.0)"
    with pytest.raises(ValueError, match=r"LocalResponseNorm: size must be a positive int"):
        nn.LocalResponseNorm(0)


def test_every_parameter_gets_a_gradient(rng):
    for layer in (nn.BatchNorm(), nn.LayerNorm(), nn.GroupNorm(2)):
        y = layer(rng.standard_normal((3, 4, 4)).astype(np.float32))
        y.backward(rng.standard_normal(y.shape).astype(np.float32))
        assert all(p.grad is not None for p in layer.parameters())
