"""Fused operations (`striate.fused`): each equal to the composition it names, forward and
gradients, against striate's own layers and against PyTorch."""

import numpy as np
import pytest
import torch

from striate import Tensor, fused, nn, no_grad
from striate import functional as F


def test_functional_fused_ops_equal_their_compositions(rng):
    x = rng.standard_normal((3, 6, 5, 4))
    w, b = rng.standard_normal((3, 3, 4, 5)), rng.standard_normal(5)
    s, r = rng.standard_normal(5), rng.standard_normal((3, 4, 3, 5))
    conv = F.conv2d(x, w, padding=((0, 0), (0, 0)))
    np.testing.assert_allclose(fused.conv_relu(x, w, b).data, np.maximum(conv.data + b, 0),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.conv_affine(x, w, s, b, r, relu=True).data,
                               np.maximum(conv.data * s + b + r, 0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.conv_affine(x, w, s).data, conv.data * s, rtol=1e-12,
                               atol=1e-12)
    z = rng.standard_normal((8, 4, 4, 3))
    g, be, res = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(z.shape)
    np.testing.assert_allclose(fused.batch_norm_relu(z, g, be).data,
                               np.maximum(F.batch_norm(z, g, be).data, 0), rtol=1e-12)
    np.testing.assert_allclose(fused.batch_norm_add_relu(z, res, g, be).data,
                               np.maximum(F.batch_norm(z, g, be).data + res, 0), rtol=1e-12)
    with pytest.raises(ValueError, match=r"batch_norm_add_relu: residual has shape \(8, 4\) "
                                         r"but x has \(8, 4, 4, 3\)"):
        fused.batch_norm_add_relu(z, np.zeros((8, 4)))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_bn_relu_is_relu_of_batch_norm(training, rng):
    """fused.bn_relu(layer, x) gives relu(batch norm) and its gradients, in one op."""
    one, plain = nn.BatchNorm(), nn.BatchNorm()
    for layer in (one, plain):
        layer.astype(np.float64).train(training)
        layer.build((3,))
    x = rng.standard_normal((4, 5, 5, 3))
    dy = rng.standard_normal(x.shape)
    xs = [Tensor(x, requires_grad=True) for _ in range(2)]
    y_fused, y_plain = fused.bn_relu(one, xs[0]), F.relu(plain(xs[1]))
    assert y_fused.op is not None and type(y_fused.op).__name__ == "BatchNorm"
    np.testing.assert_array_equal(y_fused.data, y_plain.data)
    y_fused.backward(dy)
    y_plain.backward(dy)
    np.testing.assert_allclose(xs[0].grad, xs[1].grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(one.weight.grad, plain.weight.grad, rtol=1e-12)
    np.testing.assert_allclose(one.bias.grad, plain.bias.grad, rtol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_bn_relu_with_residual_is_relu_of_the_sum(training, rng):
    """fused.bn_relu(layer, x, residual) gives relu(batch norm(x) + residual) in one op, and the
    gradients of the three separate ops."""
    one, plain = nn.BatchNorm(), nn.BatchNorm()
    for layer in (one, plain):
        layer.astype(np.float64).train(training)
        layer.build((3,))
    x, residual = rng.standard_normal((4, 5, 5, 3)), rng.standard_normal((4, 5, 5, 3))
    dy = rng.standard_normal(x.shape)
    xs = [Tensor(x, requires_grad=True) for _ in range(2)]
    rs = [Tensor(residual, requires_grad=True) for _ in range(2)]
    y_fused, y_plain = fused.bn_relu(one, xs[0], rs[0]), F.relu(plain(xs[1]) + rs[1])
    assert type(y_fused.op).__name__ == "BatchNorm"
    np.testing.assert_allclose(y_fused.data, y_plain.data, rtol=1e-15, atol=1e-15)
    y_fused.backward(dy)
    y_plain.backward(dy)
    for ours, theirs in ((xs[0].grad, xs[1].grad), (rs[0].grad, rs[1].grad),
                         (one.weight.grad, plain.weight.grad),
                         (one.bias.grad, plain.bias.grad)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


# ===== a convolution layer and the batch norm layer after it ====================================
def _conv_norm_pair(rng, bias: bool, training: bool):
    """A Conv2D and a BatchNorm with random weights and running statistics, and the same two
    layers in torch (float64)."""
    conv = nn.Conv2D(5, 3, strides=(2, 1), padding=1, use_bias=bias, input_channels=4)
    norm = nn.BatchNorm(input_channels=5)
    for layer in (conv, norm):
        layer.astype(np.float64).train(training)
    norm.weight.data[:] = rng.standard_normal(5)
    norm.bias.data[:] = rng.standard_normal(5)
    norm.running_mean[:] = rng.standard_normal(5)
    norm.running_var[:] = rng.uniform(0.5, 2, 5)
    if bias:
        conv.bias.data[:] = rng.standard_normal(5)
    t_conv = torch.nn.Conv2d(4, 5, 3, stride=(2, 1), padding=1, bias=bias).double()
    t_norm = torch.nn.BatchNorm2d(5).double().train(training)
    with torch.no_grad():
        t_conv.weight.copy_(torch.from_numpy(conv.weight.data.transpose(3, 2, 0, 1)))
        if bias:
            t_conv.bias.copy_(torch.from_numpy(conv.bias.data))
        t_norm.weight.copy_(torch.from_numpy(norm.weight.data))
        t_norm.bias.copy_(torch.from_numpy(norm.bias.data))
        t_norm.running_mean.copy_(torch.from_numpy(norm.running_mean))
        t_norm.running_var.copy_(torch.from_numpy(norm.running_var))
    return conv, norm, t_conv, t_norm


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("bias, relu, with_residual", [
    (False, True, True), (False, True, False), (True, False, True), (True, True, False),
    (False, False, False)])
def test_conv_bn_matches_torch(training, bias, relu, with_residual, rng):
    """fused.conv_bn(conv, norm, x, residual, relu) = relu(norm(conv(x)) + residual), forward
    and the gradients of x, the residual and every parameter, against torch, in evaluation (the
    norm inside the convolution) and in training (the add and the ReLU inside the norm)."""
    conv, norm, t_conv, t_norm = _conv_norm_pair(rng, bias, training)
    x = Tensor(rng.standard_normal((2, 8, 7, 4)), requires_grad=True)
    residual = Tensor(rng.standard_normal((2, 4, 7, 5)), requires_grad=True)
    y = fused.conv_bn(conv, norm, x, residual if with_residual else None, relu=relu)
    assert type(y.op).__name__ == ("BatchNorm" if training else "ConvAffine")  # one op
    xt = torch.tensor(x.data.transpose(0, 3, 1, 2), requires_grad=True)
    rt = torch.tensor(residual.data.transpose(0, 3, 1, 2), requires_grad=True)
    yt = t_norm(t_conv(xt)) + (rt if with_residual else 0)
    yt = torch.relu(yt) if relu else yt
    np.testing.assert_allclose(y.data, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12,
                               atol=1e-12)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    yt.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2)))
    pairs = [(x.grad, xt.grad.numpy().transpose(0, 2, 3, 1)),
             (conv.weight.grad, t_conv.weight.grad.numpy().transpose(2, 3, 1, 0)),
             (norm.weight.grad, t_norm.weight.grad.numpy()),
             (norm.bias.grad, t_norm.bias.grad.numpy())]
    if bias:
        pairs.append((conv.bias.grad, t_conv.bias.grad.numpy()))
    if with_residual:
        pairs.append((residual.grad, rt.grad.numpy().transpose(0, 2, 3, 1)))
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(norm.running_mean, t_norm.running_mean.numpy(), rtol=1e-12)


def test_conv_bn_runs_both_layers_where_a_hook_watches(rng):
    """A forward hook on either layer sees what that layer alone makes: then the two run as
    two layers, also in evaluation; so does a convolution with its own activation. A norm not
    built yet is built for the convolution's filters."""
    conv, norm, _, _ = _conv_norm_pair(rng, False, False)
    x = rng.standard_normal((1, 6, 5, 4))
    expected = np.maximum(norm(conv(x)).data, 0)
    seen = {}
    for layer in (conv, norm):
        with layer.register_forward_hook(lambda m, inputs, out: seen.update({m: out.data})):
            y = fused.conv_bn_relu(conv, norm, x)
        assert type(y.op).__name__ == "ReLU"
        np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    np.testing.assert_array_equal(seen[conv], conv(x).data)  # before the norm
    np.testing.assert_array_equal(seen[norm], norm(conv(x)).data)
    fresh = nn.BatchNorm().astype(np.float64).eval()
    assert type(fused.conv_bn_relu(conv, fresh, x).op).__name__ == "ConvAffine"
    assert fresh.input_channels == 5
    activated = nn.Conv2D(5, 3, activation="tanh", input_channels=4).astype(np.float64)
    assert type(fused.conv_bn_relu(activated, norm, x).op).__name__ == "ReLU"


def test_fuse_folds_the_norm_into_the_convolution(rng):
    """nn.fuse(model): a Sequential's convolution, BatchNorm and ReLU become one convolution
    (the norm folded into its weights, the ReLU its activation) in a copy of the model, with the
    model's outputs in evaluation; the model itself keeps its layers."""
    conv, norm, _, _ = _conv_norm_pair(rng, True, False)
    model = nn.Sequential(conv, norm, nn.ReLU(), nn.Flatten())
    x = rng.standard_normal((2, 6, 5, 4))
    expected = model(x).data
    folded = nn.fuse(model)
    assert [type(layer).__name__ for layer in folded.children()] == [
        "Conv2D", "Identity", "Identity", "Flatten"]
    assert [type(layer).__name__ for layer in model.children()] == [
        "Conv2D", "BatchNorm", "ReLU", "Flatten"]
    y = folded(x)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)
    assert type(y.parents[0].op).__name__ == "ConvAffine"  # Flatten <- conv, bias and ReLU
    assert not folded.training


def test_conv_bn_under_no_grad(rng):
    """Where no gradient is recorded, the norm's map is made of plain arrays; the result is
    that of the two layers all the same."""
    conv, norm, _, _ = _conv_norm_pair(rng, True, False)
    x, residual = rng.standard_normal((2, 8, 7, 4)), rng.standard_normal((2, 4, 7, 5))
    expected = np.maximum(norm(conv(x)).data + residual, 0)
    scale, shift = norm.evaluation_map()
    with no_grad():
        y = fused.conv_bn_add_relu(conv, norm, x, residual)
        plain = norm.evaluation_map()
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)
    assert all(type(a) is np.ndarray for a in plain)
    np.testing.assert_array_equal(plain[0], scale.data)
    np.testing.assert_array_equal(plain[1], shift.data)
