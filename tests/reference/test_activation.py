"""striate.reference.activation against PyTorch (float64, forward and gradient), central
differences, and the fast striate.functional ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import striate.functional as F
from striate import reference as R

from .oracle import assert_close, fast_run, numeric_check, torch_run

TF = torch.nn.functional

# name, keyword arguments, torch's function, the kinks to keep gradient checks away from
ACTIVATIONS = [
    ("relu", {}, TF.relu, (0,)),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: TF.leaky_relu(x, 0.2), (0,)),
    ("elu", {"alpha": 0.7}, lambda x: TF.elu(x, 0.7), (0,)),
    ("relu6", {}, TF.relu6, (0, 6)),
    ("sigmoid", {}, torch.sigmoid, ()),
    ("tanh", {}, torch.tanh, ()),
    ("silu", {}, TF.silu, ()),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, lambda x: TF.softplus(x, 2.0, 5.0), (2.5,)),
    ("gelu", {}, TF.gelu, ()),
    ("gelu", {"approximate": "tanh"}, lambda x: TF.gelu(x, approximate="tanh"), ()),
    ("hardsigmoid", {}, TF.hardsigmoid, (-3, 3)),
    ("hardswish", {}, TF.hardswish, (-3, 3)),
]
IDS = [f"{name}{kwargs or ''}" for name, kwargs, *_ in ACTIVATIONS]


def _away_from(x: np.ndarray, kinks) -> np.ndarray:
    """x with every value within 0.05 of a kink moved 0.1 past it (gradient checks)."""
    for kink in kinks:
        near = np.abs(x - kink) < 0.05
        x = np.where(near, kink + 0.1 * np.sign(x - kink + 1e-12), x)
    return x


@pytest.mark.parametrize("name, kwargs, torch_fn, kinks", ACTIVATIONS, ids=IDS)
def test_activation_against_torch_and_numerically(name, kwargs, torch_fn, kinks, rng):
    x = _away_from(rng.uniform(-8, 8, size=(3, 4, 5)), kinks)
    forward, backward = getattr(R, name), getattr(R, f"{name}_dx")
    y = forward(x, **kwargs)
    dy = rng.standard_normal(x.shape)
    y_t, (dx_t,) = torch_run(torch_fn, (x,), dy)
    dx = backward(dy, x, **kwargs)
    # NOTE: torch's hardsigmoid backward multiplies by 1/6 rounded to float32, even in float64
    rtol = 1e-7 if name == "hardsigmoid" else 1e-9
    assert_close(y, y_t, "y", atol=1e-12)
    assert_close(dx, dx_t, "dx", rtol=rtol, atol=1e-12)
    numeric_check(lambda x: forward(x, **kwargs), [x], [dx], dy, rng)


@pytest.mark.parametrize("name, kwargs, torch_fn, kinks", ACTIVATIONS, ids=IDS)
def test_activation_equals_functional(name, kwargs, torch_fn, kinks, rng):
    """Everywhere, the kinks included (where the gradient is a convention)."""
    x = np.concatenate([rng.uniform(-8, 8, size=20), np.array(kinks, float),
                        np.array([-30.0, 30.0, 0.0])])
    dy = rng.standard_normal(x.shape)
    y_f, (dx_f,) = fast_run(lambda x: getattr(F, name)(x, **kwargs), (x,), dy)
    assert_close(getattr(R, name)(x, **kwargs), y_f, "y", atol=1e-12)
    assert_close(getattr(R, f"{name}_dx")(dy, x, **kwargs), dx_f, "dx", atol=1e-12)


def test_gradients_at_the_kinks_are_pytorchs():
    zero = np.zeros(1)
    one = np.ones(1)
    assert R.relu_dx(one, zero) == 0
    assert R.leaky_relu_dx(one, zero, 0.1) == 0.1
    assert R.elu_dx(one, zero, 0.5) == 0.5
    assert R.relu6_dx(one, zero) == 0 and R.relu6_dx(one, np.full(1, 6.0)) == 0
    assert R.hardsigmoid_dx(one, np.full(1, 3.0)) == 0


def test_sigmoid_does_not_overflow():
    x = np.array([-1000.0, 0.0, 1000.0])
    with np.errstate(over="raise"):
        np.testing.assert_array_equal(R.sigmoid(x), [0.0, 0.5, 1.0])


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_and_log_softmax(axis, rng):
    x = rng.standard_normal((3, 4, 5)) * 3
    dy = rng.standard_normal(x.shape)
    for name, torch_fn, op in (("softmax", torch.softmax, F.softmax),
                               ("log_softmax", torch.log_softmax, F.log_softmax)):
        forward, backward = getattr(R, name), getattr(R, f"{name}_dx")
        y_t, (dx_t,) = torch_run(lambda x, fn=torch_fn: fn(x, axis), (x,), dy)
        y_f, (dx_f,) = fast_run(lambda x, op=op: op(x, axis=axis), (x,), dy)
        dx = backward(dy, x, axis)
        for what, theirs in (("torch", (y_t, dx_t)), ("functional", (y_f, dx_f))):
            assert_close(forward(x, axis), theirs[0], f"{name} y vs {what}", atol=1e-12)
            assert_close(dx, theirs[1], f"{name} dx vs {what}", atol=1e-12)
        numeric_check(lambda x, fn=forward: fn(x, axis), [x], [dx], dy, rng)
    np.testing.assert_allclose(R.softmax(x, axis).sum(axis=axis), 1.0)
    big = np.array([[1000.0, 1001.0, 1002.0]])
    np.testing.assert_allclose(R.softmax(big), R.softmax(big - 1000.0))
