"""Merge layers: Add, Multiply, Concatenate."""

import numpy as np
import pytest

from striate import Tensor, nn


def test_add_and_multiply_values_and_gradients(rng):
    a, b, c = (Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True) for _ in range(3))
    y = nn.Add()(a, b, c)
    np.testing.assert_allclose(y.data, a.data + b.data + c.data, rtol=1e-15)
    y.backward(np.ones(y.shape))
    assert all(np.array_equal(t.grad, np.ones((2, 3, 4))) for t in (a, b, c))
    a2, b2 = Tensor(a.data, requires_grad=True), Tensor(b.data, requires_grad=True)
    z = nn.Multiply()([a2, b2])
    np.testing.assert_array_equal(z.data, a.data * b.data)
    dy = rng.standard_normal(z.shape)
    z.backward(dy)
    np.testing.assert_allclose(a2.grad, dy * b.data, rtol=1e-15)
    np.testing.assert_allclose(b2.grad, dy * a.data, rtol=1e-15)


def test_concatenate(rng):
    a = Tensor(rng.standard_normal((2, 4, 4, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((2, 4, 4, 5)), requires_grad=True)
    y = nn.Concatenate()([a, b])
    assert y.shape == (2, 4, 4, 8)
    np.testing.assert_array_equal(y.data, np.concatenate([a.data, b.data], axis=-1))
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    np.testing.assert_array_equal(a.grad, dy[..., :3])
    np.testing.assert_array_equal(b.grad, dy[..., 3:])
    assert nn.Concatenate(axis=1)(np.ones((2, 3)), np.ones((2, 4))).shape == (2, 7)
    assert repr(nn.Concatenate()) == "Concatenate()"
    assert repr(nn.Concatenate(axis=1)) == "Concatenate(axis=1)"


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"Add 'add': inputs must have the same shape, got "
                                         r"\(2, 3\), \(2, 4\)"):
        nn.Add()(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"Multiply 'gate': needs at least 2 inputs, got 1"):
        nn.Multiply(name="gate")([np.ones(3)])
    with pytest.raises(ValueError, match=r"Concatenate 'concatenate': inputs must have the same "
                                         r"shape except along axis -1, got \(2, 3, 1\), "
                                         r"\(2, 4, 1\)"):
        nn.Concatenate()(np.ones((2, 3, 1)), np.ones((2, 4, 1)))
    with pytest.raises(ValueError, match=r"Concatenate 'concatenate': axis 3 is out of range"):
        nn.Concatenate(axis=3)(np.ones((2, 3)), np.ones((2, 3)))
