"""Activation layers and the activation table."""

import numpy as np
import pytest
import torch

from striate import Tensor, nn
from striate import functional as F

LAYERS = [
    (nn.ReLU(), torch.relu),
    (nn.ReLU6(), torch.nn.functional.relu6),
    (nn.LeakyReLU(0.2), lambda t: torch.nn.functional.leaky_relu(t, 0.2)),
    (nn.ELU(0.5), lambda t: torch.nn.functional.elu(t, 0.5)),
    (nn.Sigmoid(), torch.sigmoid),
    (nn.Tanh(), torch.tanh),
    (nn.GELU(), torch.nn.functional.gelu),
    (nn.GELU("tanh"), lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
    (nn.SiLU(), torch.nn.functional.silu),
    (nn.Softplus(), torch.nn.functional.softplus),
    (nn.Hardswish(), torch.nn.functional.hardswish),
    (nn.Hardsigmoid(), torch.nn.functional.hardsigmoid),
    (nn.Softmax(), lambda t: torch.softmax(t, -1)),
    (nn.Softmax(axis=1), lambda t: torch.softmax(t, 1)),
    (nn.LogSoftmax(), lambda t: torch.log_softmax(t, -1)),
    (nn.Activation("relu"), torch.relu),
    (nn.Activation("swish"), torch.nn.functional.silu),
    (nn.Activation(F.tanh), torch.tanh),
]


def _case_id(value) -> str:
    """Test ids without memory addresses, which change between runs (and workers)."""
    return getattr(value, "__name__", None) or repr(value)[:30]


@pytest.mark.parametrize("layer, reference", LAYERS, ids=_case_id)
def test_activation_layer_matches_torch(layer, reference, rng):
    x = rng.standard_normal((3, 4, 5)) * 3
    x[np.abs(x) < 1e-3] = 0.5  # away from kinks
    xt = Tensor(x, requires_grad=True)
    y = layer(xt)
    tx = torch.from_numpy(x).requires_grad_()
    ty = reference(tx)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-7, atol=1e-9)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-7, atol=1e-9)
    assert layer.num_parameters() == 0


def test_float32_stays_float32():
    for layer, _ in LAYERS:
        assert layer(np.ones((2, 3), dtype=np.float32)).dtype == np.float32


def test_table_and_errors():
    assert nn.get_activation("ReLU") is F.relu
    assert nn.get_activation(None) is None
    assert nn.get_activation(np.tanh) is np.tanh
    assert set(nn.ACTIVATIONS) >= {"relu", "sigmoid", "tanh", "softmax", "linear", "gelu"}
    with pytest.raises(ValueError, match=r"Activation: unknown activation 'rectify'; use a "
                                         r"callable or one of elu, gelu"):
        nn.Activation("rectify")
    with pytest.raises(ValueError, match=r"GELU: approximate must be 'none' or 'tanh'"):
        nn.GELU("erf")
    with pytest.raises(TypeError, match=r"LeakyReLU: negative_slope must be a real number"):
        nn.LeakyReLU("0.1")
    with pytest.raises(TypeError, match=r"Softmax: axis must be an int"):
        nn.Softmax(axis=1.0)


def test_repr():
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.LeakyReLU()) == "LeakyReLU()"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.ELU(0.5)) == "ELU(alpha=0.5)"
    assert repr(nn.Softmax(axis=1)) == "Softmax(axis=1)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Activation("relu")) == "Activation('relu')"
    assert repr(nn.Activation(F.tanh)) == "Activation(tanh)"
