"""Dense, Embedding and the shape layers (Flatten, Reshape, Identity, ZeroPadding2D)."""

import numpy as np
import pytest
import torch

from striate import Tensor, arith, nn
from striate import functional as F
from striate.optim import SGD


@pytest.mark.parametrize("shape, units, use_bias, activation", [
    ((4, 7), 3, True, None),
    ((2, 5, 6), 4, False, "tanh"),
    ((1, 3), 1, True, "relu"),
])
def test_dense_equals_functional(shape, units, use_bias, activation, rng):
    layer = nn.Dense(units, activation=activation, use_bias=use_bias).astype(np.float64)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    y = layer(x)
    assert y.shape == (*shape[:-1], units)
    assert layer.weight.shape == (shape[-1], units)
    assert layer.num_parameters() == arith.dense_params(shape[-1], units, use_bias)
    x2 = Tensor(x.data, requires_grad=True)
    w = Tensor(layer.weight.data, requires_grad=True)
    b = Tensor(layer.bias.data, requires_grad=True) if use_bias else None
    expected = F.dense(x2, w, b)
    if activation:
        expected = getattr(F, activation)(expected)
    np.testing.assert_array_equal(y.data, expected.data)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    expected.backward(dy)
    np.testing.assert_array_equal(layer.weight.grad, w.grad)
    np.testing.assert_array_equal(x.grad, x2.grad)
    if use_bias:
        np.testing.assert_array_equal(layer.bias.grad, b.grad)


def test_dense_matches_torch_linear(rng):
    layer = nn.Dense(5, input_dim=8)
    t = torch.nn.Linear(8, 5)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(layer.weight.data.T.copy()))
        t.bias.zero_()
    x = rng.standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_allclose(layer(x).data, t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_dense_lazy_and_eager_and_errors():
    lazy, eager = nn.Dense(4), nn.Dense(4, input_dim=6)
    lazy(np.zeros((2, 6), dtype=np.float32))
    assert lazy.weight.shape == eager.weight.shape == (6, 4)
    with pytest.raises(ValueError, match=r"Dense 'fc': input has 7 features but the weight "
                                         r"expects 6 \(input shape \(2, 7\)\); flatten"):
        nn.Dense(4, input_dim=6, name="fc")(np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"Dense: units must be a positive int, got 0"):
        nn.Dense(0)
    with pytest.raises(ValueError, match=r"Dense: activation: unknown activation 'relu9'"):
        nn.Dense(3, activation="relu9")
    with pytest.raises(ValueError, match=r"Dense: kernel_initializer: unknown initializer"):
        nn.Dense(3, kernel_initializer="kaiming")
    assert repr(nn.Dense(10)) == "Dense(10)"
    assert repr(nn.Dense(10, activation="softmax", use_bias=False)) == \
        "Dense(10, activation='softmax', use_bias=False)"


def test_embedding(rng):
    layer = nn.Embedding(10, 4).astype(np.float64)
    ids = np.array([[1, 3, 3], [0, 9, 1]])
    y = layer(ids)
    assert y.shape == (2, 3, 4) and layer.num_parameters() == 40
    np.testing.assert_array_equal(y.data, layer.weight.data[ids])
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(layer.weight.grad[3], 2.0)
    np.testing.assert_array_equal(layer.weight.grad[2], 0.0)
    assert np.abs(layer.weight.data).max() <= 0.05
    # A zero batch from build (floats) works; fractional ids do not.
    assert nn.Sequential(nn.Embedding(5, 2)).build((3,))[0].weight.shape == (5, 2)
    with pytest.raises(ValueError, match=r"Embedding 'embedding': ids must be whole numbers"):
        layer(np.array([[0.5]]))
    assert repr(layer) == "Embedding(10, 4)"


def test_frozen_embedding_is_saved_but_not_trained(rng):
    frozen = nn.Embedding(10, 4, trainable=False, name="static")
    model = nn.Sequential({"static": frozen, "head": nn.Dense(2, input_dim=4)})
    assert frozen.trainable is False
    assert isinstance(frozen.weight, np.ndarray) and frozen.table is frozen.weight
    assert frozen.weight.shape == (10, 4) and frozen.weight.dtype == np.float32
    assert frozen.num_parameters() == 0
    assert [name for name, _ in model.named_parameters()] == ["head.weight", "head.bias"]
    assert not any(p is frozen.weight for p in model.parameters())
    state = model.state_dict()
    np.testing.assert_array_equal(state["static.weight"], frozen.weight)
    # Loading writes into the frozen table; astype converts it.
    table = rng.standard_normal((10, 4)).astype(np.float32)
    model.load_state_dict({**state, "static.weight": table})
    np.testing.assert_array_equal(frozen.weight, table)
    ids = np.array([[1, 3, 3], [0, 9, 1]])
    y = frozen(ids)
    np.testing.assert_array_equal(y.data, table[ids])
    assert not y.requires_grad  # nothing to differentiate: the lookup records no graph
    before = frozen.weight.copy()
    optimizer = SGD(model.parameters(), lr=0.5)
    head = model.head.weight.data.copy()
    for _ in range(2):
        optimizer.zero_grad()
        F.cross_entropy(model(ids).mean(axis=1), np.array([0, 1])).backward()
        optimizer.step()
    np.testing.assert_array_equal(frozen.weight, before)
    assert not np.array_equal(model.head.weight.data, head)  # the rest does train
    model.astype(np.float64)
    assert frozen.weight.dtype == np.float64 and frozen.table.dtype == np.float64
    assert repr(frozen) == "Embedding(10, 4, trainable=False)"
    assert repr(nn.Embedding(10, 4, trainable=True)) == "Embedding(10, 4)"
    trainable = nn.Embedding(5, 2)
    assert trainable.table is trainable.weight.data
    with pytest.raises(TypeError, match=r"Embedding: trainable must be a bool, got 'no'"):
        nn.Embedding(5, 2, trainable="no")


def test_flatten_is_channels_last_order(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    xt = Tensor(x, requires_grad=True)
    y = nn.Flatten()(xt)
    np.testing.assert_array_equal(y.data, x.reshape(2, 60))
    y.backward(np.arange(120.0).reshape(2, 60))
    np.testing.assert_array_equal(xt.grad, np.arange(120.0).reshape(x.shape))
    assert nn.Flatten()(np.zeros((1, 7))).shape == (1, 7)
    assert repr(nn.Flatten()) == "Flatten()"


def test_reshape_and_identity(rng):
    x = rng.standard_normal((2, 12))
    assert nn.Reshape((3, 4))(x).shape == (2, 3, 4)
    assert nn.Reshape((2, -1, 1))(x).shape == (2, 2, 6, 1)
    with pytest.raises(ValueError, match=r"Reshape 'reshape': cannot reshape samples of shape "
                                         r"\(12,\) \(12 values\) to \(5,\)"):
        nn.Reshape((5,))(x)
    with pytest.raises(ValueError, match=r"Reshape: shape must be positive ints"):
        nn.Reshape((-1, -1))
    assert repr(nn.Reshape((7, 7, 64))) == "Reshape((7, 7, 64))"
    xt = Tensor(x)
    assert nn.Identity()(xt) is xt


def test_zero_padding_2d(rng):
    x = rng.standard_normal((2, 3, 4, 2))
    xt = Tensor(x, requires_grad=True)
    layer = nn.ZeroPadding2D(((1, 2), (0, 3)))
    y = layer(xt)
    assert y.shape == (2, 6, 7, 2)
    np.testing.assert_array_equal(y.data, np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0))))
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    np.testing.assert_array_equal(xt.grad, dy[:, 1:4, 0:4])
    assert nn.ZeroPadding2D()(x).shape == (2, 5, 6, 2)
    assert nn.ZeroPadding2D((2, 1))(x).shape == (2, 7, 6, 2)
    assert repr(nn.ZeroPadding2D()) == "ZeroPadding2D(1)"
    assert repr(nn.ZeroPadding2D((2, 1))) == "ZeroPadding2D((2, 1))"
    assert repr(layer) == "ZeroPadding2D(((1, 2), (0, 3)))"
    with pytest.raises(ValueError, match=r"ZeroPadding2D: padding must be a non-negative int"):
        nn.ZeroPadding2D(-1)
    with pytest.raises(ValueError, match=r"ZeroPadding2D 'zeropadding2d': expected a 4-D input"):
        nn.ZeroPadding2D()(np.zeros((3, 4, 2)))
