import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from striate import Tensor
from striate import functional as F
from tests.helpers import check_gradients, compare_with_torch

# name -> (ours, torch's, the points where the function has a kink).
ELEMENTWISE = {
    "relu": (F.relu, torch.relu, (0.0,)),
    "leaky_relu": (F.leaky_relu, tF.leaky_relu, (0.0,)),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda x: tF.leaky_relu(x, 0.2), (0.0,)),
    "elu": (F.elu, tF.elu, (0.0,)),
    "elu_0.3": (lambda x: F.elu(x, 0.3), lambda x: tF.elu(x, 0.3), (0.0,)),
    "relu6": (F.relu6, tF.relu6, (0.0, 6.0)),
    "sigmoid": (F.sigmoid, torch.sigmoid, ()),
    "tanh": (F.tanh, torch.tanh, ()),
    "silu": (F.silu, tF.silu, ()),
    "softplus": (F.softplus, tF.softplus, ()),
    "softplus_beta": (
        lambda x: F.softplus(x, beta=2.0, threshold=5.0),
        lambda x: tF.softplus(x, beta=2.0, threshold=5.0),
        (2.5,),  # the switch to the identity at beta * x = threshold
    ),
    "gelu": (F.gelu, tF.gelu, ()),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: tF.gelu(x, approximate="tanh"),
        (),
    ),
    "hardsigmoid": (F.hardsigmoid, tF.hardsigmoid, (-3.0, 3.0)),
    "hardswish": (F.hardswish, tF.hardswish, (-3.0, 3.0)),
}
SHAPES = [(7,), (3, 5), (2, 4, 4, 3), (1, 3, 2, 2, 5)]


def away_from(x: np.ndarray, kinks, margin: float = 0.05) -> np.ndarray:
    """x with every value within `margin` of a kink moved to margin away from it."""
    for k in kinks:
        near = np.abs(x - k) < margin
        x = np.where(near, k + np.where(x >= k, margin, -margin), x)
    return x


def sample(rng, shape, kinks, dtype=np.float64, scale=4.0):
    return away_from(rng.standard_normal(shape) * scale, kinks).astype(dtype)


# ----- the lecture's definitions (000: ReLU, Leaky ReLU, ELU) ----------------------------------
def test_lecture_relu_family_formulas():
    z = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0])
    # g(z) = max(0, z)
    np.testing.assert_array_equal(F.relu(z).data, [0, 0, 0, 0, 0.5, 2.0])
    # g(z) = max(eps z, z), eps << 1
    np.testing.assert_allclose(F.leaky_relu(z, 0.01).data, [-0.03, -0.01, -0.0025, 0, 0.5, 2.0])
    np.testing.assert_allclose(F.leaky_relu(z, 0.01).data, np.maximum(0.01 * z, z))
    # g(z) = max(alpha (e^z - 1), z), alpha << 1
    alpha = 0.1
    np.testing.assert_allclose(F.elu(z, alpha).data, np.maximum(alpha * np.expm1(z), z))
    np.testing.assert_allclose(F.elu(np.array([-1.0]), alpha).data, [0.1 * (np.exp(-1) - 1)])


def test_known_values():
    x = np.array([-4.0, -1.0, 0.0, 1.0, 8.0])
    np.testing.assert_allclose(F.relu6(x).data, [0, 0, 0, 1, 6])
    np.testing.assert_allclose(F.hardsigmoid(x).data, [0, 1 / 3, 0.5, 2 / 3, 1])
    np.testing.assert_allclose(F.hardswish(x).data, [0, -1 / 3, 0, 2 / 3, 8])
    np.testing.assert_allclose(F.sigmoid(np.array([0.0])).data, [0.5])
    np.testing.assert_allclose(F.softplus(np.array([0.0])).data, [np.log(2)])
    # GELU(1) = Phi(1) = 0.841344746068543 (the standard normal CDF at 1).
    np.testing.assert_allclose(F.gelu(np.array([1.0])).data, [0.841344746068543], rtol=1e-14)
    np.testing.assert_allclose(F.silu(np.array([1.0])).data, [1 / (1 + np.exp(-1))])


# ----- against PyTorch ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_elementwise_matches_torch(name, shape, dtype, rng):
    ours, theirs, kinks = ELEMENTWISE[name]
    x = sample(rng, shape, kinks, dtype)
    tolerances = {}
    if name == "hardsigmoid" and dtype == np.float64:
        # PyTorch's CPU kernel multiplies by 1/6 rounded to float32 even in float64; ours is exact.
        tolerances = dict(rtol=1e-7, atol=1e-9)
    compare_with_torch(ours, theirs, [x], rng, **tolerances)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_keeps_float32(name, rng):
    x = Tensor(sample(rng, (3, 4), ELEMENTWISE[name][2], np.float32), requires_grad=True)
    y = ELEMENTWISE[name][0](x)
    y.backward(np.ones((3, 4), np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_gradients(name, rng):
    ours, _, kinks = ELEMENTWISE[name]
    check_gradients(ours, [sample(rng, (4, 6), kinks, scale=3.0)], rng)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_non_contiguous(name, rng):
    ours, theirs, kinks = ELEMENTWISE[name]
    x = sample(rng, (6, 5, 4), kinks)[:, ::2].transpose(2, 0, 1)
    assert not x.flags.c_contiguous
    compare_with_torch(ours, theirs, [x], rng, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_of_large_inputs_matches_torch_across_chunks_and_threads(dtype, rng):
    # More elements than one chunk of `rectify` and than one thread's block, a ragged tail, and
    # the values the maximum must keep: NaN stays NaN, -inf becomes 0, +inf stays.
    x = rng.standard_normal((3, 65536 + 77)).astype(dtype)
    x[0, :3] = [np.nan, -np.inf, np.inf]
    x[2, -1] = np.nan
    y = F.relu(x).data
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, torch.relu(torch.from_numpy(x)).numpy())
    strided = x[:, ::3]  # not contiguous
    np.testing.assert_array_equal(F.relu(strided).data, torch.relu(torch.from_numpy(strided)))


def test_kink_derivatives_follow_torch():
    # At the kinks PyTorch picks one side: ReLU 0 at 0, ReLU6 0 at both ends, hardswish's
    # slope x/3 + 1/2 at both ends, hardsigmoid 0 at both ends, ELU alpha at 0.
    points = np.array([-3.0, 0.0, 3.0, 6.0])
    for ours, theirs in [
        (F.relu, torch.relu),
        (F.leaky_relu, tF.leaky_relu),
        (F.relu6, tF.relu6),
        (F.hardswish, tF.hardswish),
        (F.hardsigmoid, tF.hardsigmoid),
        (lambda x: F.elu(x, 0.5), lambda x: tF.elu(x, 0.5)),
    ]:
        x = Tensor(points, requires_grad=True)
        ours(x).sum().backward()
        t = torch.tensor(points, requires_grad=True)
        theirs(t).sum().backward()
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-7)


def test_saturating_functions_are_stable():
    x = np.array([-1e4, -800.0, -50.0, 50.0, 800.0, 1e4])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = F.sigmoid(x).data
        sp = F.softplus(x).data
        si = F.silu(x).data
    np.testing.assert_allclose(s, torch.sigmoid(torch.tensor(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(sp, tF.softplus(torch.tensor(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(si, tF.silu(torch.tensor(x)).numpy(), rtol=1e-12)
    assert np.all(np.isfinite(F.gelu(x).data)) and np.all(np.isfinite(F.elu(x).data))


def test_gelu_erf_is_accurate_everywhere():
    x = np.linspace(-12, 12, 24001)
    np.testing.assert_allclose(
        F.gelu(x).data, tF.gelu(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-15
    )


# ----- softmax family -------------------------------------------------------------------------
SOFTMAX_CASES = [((5,), 0), ((3, 7), -1), ((3, 7), 0), ((2, 3, 4), 1), ((2, 4, 4, 10), -1),
                 ((1, 1), -1), ((2, 3, 5), -2)]


@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_matches_torch(shape, axis, dtype, log, rng):
    ours = F.log_softmax if log else F.softmax
    theirs = torch.log_softmax if log else torch.softmax
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    compare_with_torch(lambda t: ours(t, axis=axis), lambda t: theirs(t, dim=axis), [x], rng)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_gradients(log, axis, rng):
    op = F.log_softmax if log else F.softmax
    check_gradients(lambda t: op(t, axis=axis), [rng.standard_normal((3, 4, 5))], rng)


def test_softmax_rows_sum_to_one_and_huge_logits_are_finite(rng):
    x = rng.standard_normal((4, 6)) * 1e4
    p = F.softmax(x).data
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    log_p = F.log_softmax(x).data
    assert np.all(np.isfinite(p)) and np.all(log_p[np.isfinite(log_p)] <= 0)
    np.testing.assert_allclose(log_p, torch.log_softmax(torch.tensor(x), -1).numpy(), rtol=1e-12)
    # Shifting every logit by a constant changes nothing.
    np.testing.assert_allclose(F.softmax(x[:, :3] / 1e4 + 1e5).data,
                               F.softmax(x[:, :3] / 1e4).data, rtol=1e-6)


def test_softmax_of_float32_stays_float32(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    assert F.softmax(x).dtype == np.float32
    assert F.log_softmax(x, axis=0).dtype == np.float32


def test_integer_input_becomes_float32():
    assert F.relu(np.array([-1, 2])).dtype == np.float32


def test_no_graph_without_requires_grad(rng):
    y = F.relu(Tensor(rng.standard_normal(3)))
    assert not y.requires_grad


# ----- errors ---------------------------------------------------------------------------------
def test_softmax_axis_out_of_range():
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range .* 2 dimensions"):
        F.softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(ValueError, match=r"log_softmax: axis -3 is out of range"):
        F.log_softmax(np.zeros((2, 3)), axis=-3)
    with pytest.raises(TypeError, match=r"softmax: axis must be an int, got 1.0"):
        F.softmax(np.zeros((2, 3)), axis=1.0)


def test_bad_hyper_parameters():
    with pytest.raises(TypeError, match=r"leaky_relu: negative_slope must be a real number, got"):
        F.leaky_relu(np.zeros(2), "0.1")
    with pytest.raises(TypeError, match=r"elu: alpha must be a real number, got None"):
        F.elu(np.zeros(2), None)
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(np.zeros(2), approximate="erf")
    with pytest.raises(TypeError, match=r"softplus: beta must be a real number"):
        F.softplus(np.zeros(2), beta=[1])
