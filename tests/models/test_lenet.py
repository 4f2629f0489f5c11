import numpy as np
import pytest
import torch

from striate import Tensor, models
from striate import functional as F
from striate.models.lenet import C3_CONNECTIONS, ConnectionTableConv2D, Subsampling
from striate.nn import init
from striate.optim import SGD, Adam

# LeCun et al. 1998, section II.B: trainable parameters of each layer of LeNet-5.
PAPER_COUNTS = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164,
                "output": 850}

# Table I of the paper, read by rows: the C3 maps that each S2 map feeds.
TABLE_I_ROWS = (
    (0, 4, 5, 6, 9, 10, 11, 12, 14, 15),
    (0, 1, 5, 6, 7, 10, 11, 12, 13, 15),
    (0, 1, 2, 6, 7, 8, 11, 13, 14, 15),
    (1, 2, 3, 6, 7, 8, 9, 12, 14, 15),
    (2, 3, 4, 7, 8, 9, 10, 12, 13, 15),
    (3, 4, 5, 8, 9, 10, 11, 13, 14, 15),
)


def _count(module) -> int:
    return sum(p.size for p in module.parameters())


def test_lenet5_parameter_counts_equal_the_paper():
    model = models.create("lenet5")
    for name, expected in PAPER_COUNTS.items():
        assert _count(getattr(model, name)) == expected, name
    assert model.num_parameters() == 60850


def test_lenet5_modern_parameter_count():
    # conv 6*25+6, conv 16*150+16, dense 400*120+120, 120*84+84, 84*10+10
    assert models.create("lenet5_modern").num_parameters() == 156 + 2416 + 48120 + 10164 + 850


def test_c3_connection_table_equals_table_i():
    rows = tuple(tuple(f for f, column in enumerate(C3_CONNECTIONS) if c in column)
                 for c in range(6))
    assert rows == TABLE_I_ROWS
    assert sum(len(column) for column in C3_CONNECTIONS) == 60


@pytest.mark.parametrize("input_size", [28, 32])
@pytest.mark.parametrize("batch", [1, 3])
def test_lenet5_output_shape(rng, input_size, batch):
    model = models.create("lenet5", num_classes=10, input_size=input_size)
    assert model.default_input_shape == (input_size, input_size, 1)
    assert model.c1(rng.standard_normal((batch, input_size, input_size, 1))).shape == (
        batch, 28, 28, 6)
    x = rng.standard_normal((batch, input_size, input_size, 1)).astype(np.float32)
    y = model(x)
    assert y.shape == (batch, 10)
    assert y.dtype == np.float32


def test_lenet5_on_28x28_equals_the_32x32_network_on_the_zero_padded_image(rng):
    small = models.create("lenet5", input_size=28).astype(np.float64)
    large = models.create("lenet5").astype(np.float64).load_state_dict(small.state_dict())
    x = rng.standard_normal((2, 28, 28, 1))
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    np.testing.assert_allclose(small(x).data, large(padded).data, rtol=1e-12, atol=1e-12)


def test_lenet5_rejects_other_input_sizes():
    with pytest.raises(ValueError, match="lenet5: input_size must be 28 or 32, got 30"):
        models.create("lenet5", input_size=30)
    with pytest.raises(ValueError, match=r"LeNet5: expected images \(N, 32, 32, 1\), got shape "
                                         r"\(2, 28, 28, 1\); create the model with input_size=28"):
        models.create("lenet5")(np.zeros((2, 28, 28, 1), dtype=np.float32))


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_every_parameter_receives_a_gradient(rng, name):
    model = models.create(name, num_classes=10)
    x = rng.standard_normal((2, *model.default_input_shape)).astype(np.float32)
    F.cross_entropy(model(x), np.array([3, 7])).backward()
    for path, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, path
        assert np.any(p.grad != 0), path


def _torch_table_conv(x, packed, bias):
    """Reference: scatter the packed weights into a full kernel with an explicit loop, then a
    dense PyTorch convolution (NCHW)."""
    k = int(round(packed.shape[0] ** 0.5))
    full = torch.zeros((k, k, 6, 16), dtype=packed.dtype)
    i = 0
    for f, column in enumerate(C3_CONNECTIONS):
        for c in column:
            full[:, :, c, f] = packed[:, i].reshape(k, k)
            i += 1
    y = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), full.permute(3, 2, 0, 1), bias)
    return y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_connection_table_conv_matches_torch_masked_conv(rng, dtype, tol):
    layer = ConnectionTableConv2D(5, C3_CONNECTIONS).astype(dtype)
    layer.bias.data[...] = rng.standard_normal(16)
    x = Tensor(rng.standard_normal((2, 14, 14, 6)).astype(dtype), requires_grad=True)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(dy)
    xt = torch.tensor(x.data, requires_grad=True)
    wt = torch.tensor(layer.weight.data, requires_grad=True)
    bt = torch.tensor(layer.bias.data, requires_grad=True)
    yt = _torch_table_conv(xt, wt, bt)
    yt.backward(torch.tensor(dy))
    for ours, theirs in ((y.data, yt), (x.grad, xt.grad), (layer.weight.grad, wt.grad),
                         (layer.bias.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=tol, atol=tol)


def test_connection_table_conv_gradient_numerically(rng):
    layer = ConnectionTableConv2D(3, C3_CONNECTIONS).astype(np.float64)
    x = rng.standard_normal((1, 5, 5, 6))
    dy = rng.standard_normal((1, 3, 3, 16))
    layer(x).backward(dy)
    eps = 1e-6
    for _ in range(3):
        v = rng.standard_normal(layer.weight.shape)
        base = layer.weight.data.copy()
        layer.weight.data = base + eps * v
        plus = np.sum(layer(x).data * dy)
        layer.weight.data = base - eps * v
        minus = np.sum(layer(x).data * dy)
        layer.weight.data = base
        assert np.isclose(np.sum(layer.weight.grad * v), (plus - minus) / (2 * eps), rtol=1e-6)


def test_c3_unconnected_kernel_entries_stay_zero_through_training(rng):
    model = models.create("lenet5", input_size=28)
    unconnected = np.array([[c not in column for column in C3_CONNECTIONS] for c in range(6)])
    assert np.all(model.c3.kernel().data[:, :, unconnected] == 0)
    assert np.all(model.c3.kernel().data[:, :, ~unconnected] != 0)
    before = model.c3.weight.data.copy()
    optimizer = SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        x = rng.standard_normal((4, 28, 28, 1)).astype(np.float32)
        F.cross_entropy(model(x), rng.integers(0, 10, 4)).backward()
        optimizer.step()
    assert np.all(model.c3.weight.data != before)
    assert np.all(model.c3.kernel().data[:, :, unconnected] == 0)


def test_subsampling_is_average_times_coefficient_plus_bias(rng):
    layer = Subsampling(3).astype(np.float64)
    layer.weight.data[...] = [0.5, -1.0, 2.0]
    layer.bias.data[...] = [0.1, 0.0, -0.2]
    x = rng.standard_normal((2, 4, 6, 3))
    windows = x.reshape(2, 2, 2, 3, 2, 3).mean(axis=(2, 4))
    expected = np.tanh(windows * layer.weight.data + layer.bias.data)
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-12)


def test_subsampling_rejects_wrong_channels():
    with pytest.raises(ValueError, match="Subsampling 's2': input has 4 channels but the layer "
                                         "has 6 coefficients"):
        models.create("lenet5").s2(np.zeros((1, 28, 28, 4)))


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_lenet_overfits_32_samples(rng, name):
    init.set_seed(0)
    model = models.create(name, input_size=28) if name == "lenet5" else models.create(name)
    x = rng.standard_normal((32, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 32)
    optimizer = Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
    assert np.mean(np.argmax(model(x).data, axis=1) == labels) == 1.0
