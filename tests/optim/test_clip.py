"""Gradient clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_, and errors."""

import itertools
import math

import numpy as np
import pytest
import torch

from striate import Tensor
from striate.optim import clip_grad_norm, clip_grad_value
from tests.optim.reference import tolerances

SHAPES = [(3, 3, 2, 4), (7,), (5, 6), (2, 2)]


def _pair(rng, dtype, scale=1.0, none_at=(3,)):
    """Our parameters and torch's with the same gradients; the ones in `none_at` have none."""
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES):
        o, t = Tensor(np.zeros(shape, dtype)), torch.tensor(np.zeros(shape, dtype))
        if i not in none_at:
            g = (scale * rng.standard_normal(shape)).astype(dtype)
            o.grad, t.grad = g.copy(), torch.tensor(g)
        ours.append(o)
        theirs.append(t)
    return ours, theirs


def _assert_grads_equal(ours, theirs, dtype):
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        if t.grad is None:
            assert o.grad is None, f"param {i} gained a gradient"
            continue
        assert o.grad.dtype == dtype
        np.testing.assert_allclose(o.grad, t.grad.numpy(), **tolerances(dtype), equal_nan=True,
                                   err_msg=f"grad {i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "norm_type, max_norm", list(itertools.product([2.0, 1, 3.5, math.inf, "inf"], [0.1, 1.0, 1e3]))
)
def test_norm_matches_torch(norm_type, max_norm, dtype, rng):
    ours, theirs = _pair(rng, dtype)
    total = clip_grad_norm(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, expected.item(), **tolerances(dtype))
    _assert_grads_equal(ours, theirs, dtype)


def test_norm_by_hand():
    """Gradients (3, 4) and (12,): total 2-norm 13; clipped to 6.5 they halve (up to 1e-6)."""
    a, b = Tensor(np.zeros(2)), Tensor(np.zeros(1))
    a.grad, b.grad = np.array([3.0, 4.0]), np.array([12.0])
    assert clip_grad_norm([a, b], 6.5) == 13.0
    np.testing.assert_allclose(a.grad, [1.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad, [6.0], rtol=1e-6)
    a.grad, b.grad = np.array([3.0, -4.0]), np.array([1.0])
    assert clip_grad_norm([a, b], 2.0, norm_type="inf") == 4.0
    np.testing.assert_allclose(a.grad, [1.5, -2.0], rtol=1e-6)


def test_below_max_norm_leaves_grads_alone(rng):
    ours, _ = _pair(rng, np.float32)
    before = [None if p.grad is None else p.grad.copy() for p in ours]
    clip_grad_norm(ours, 1e6)
    for p, g in zip(ours, before, strict=True):
        if g is not None:
            np.testing.assert_array_equal(p.grad, g)


def test_single_tensor_and_non_contiguous_grad(rng):
    g = rng.standard_normal((4, 6)).T  # a transposed view
    w, t = Tensor(np.zeros((6, 4))), torch.zeros((6, 4), dtype=torch.float64)
    w.grad, t.grad = g.copy(order="K"), torch.tensor(g)
    assert not w.grad.flags.c_contiguous
    total = clip_grad_norm(w, 0.5)
    np.testing.assert_allclose(total, torch.nn.utils.clip_grad_norm_(t, 0.5).item(), rtol=1e-12)
    np.testing.assert_allclose(w.grad, t.grad.numpy(), rtol=1e-12)


def test_non_finite_gradients_match_torch(rng):
    """inf gives a total of inf and a scale of 0 (inf * 0 = nan); nan spreads to every grad."""
    for bad in (np.inf, np.nan):
        ours, theirs = _pair(rng, np.float64)
        ours[0].grad[0, 0, 0, 0] = bad
        theirs[0].grad[0, 0, 0, 0] = bad
        total = clip_grad_norm(ours, 1.0)
        expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
        np.testing.assert_equal(total, expected.item())
        _assert_grads_equal(ours, theirs, np.float64)


def test_no_gradients():
    w = Tensor(np.zeros(3))
    assert clip_grad_norm([w], 1.0) == 0.0
    assert clip_grad_norm([], 1.0) == 0.0
    assert w.grad is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("clip_value", [0.0, 0.3, 1.5, 10.0])
def test_value_matches_torch(clip_value, dtype, rng):
    ours, theirs = _pair(rng, dtype, scale=2.0)
    assert clip_grad_value(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _assert_grads_equal(ours, theirs, dtype)
    assert all(p.grad is None or np.abs(p.grad).max() <= clip_value for p in ours)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda w: clip_grad_norm([w], -1.0), ValueError,
         r"clip_grad_norm: max_norm must be >= 0, got -1.0"),
        (lambda w: clip_grad_norm([w], 1.0, norm_type=0), ValueError,
         r"clip_grad_norm: norm_type must be > 0 or 'inf', got 0"),
        (lambda w: clip_grad_norm([w], 1.0, norm_type="max"), ValueError,
         r"clip_grad_norm: norm_type must be > 0 or 'inf', got 'max'"),
        (lambda w: clip_grad_norm([w], "1"), TypeError,
         r"clip_grad_norm: max_norm must be a number, got '1'"),
        (lambda w: clip_grad_norm([w, np.zeros(2)], 1.0), TypeError,
         r"clip_grad_norm: params must be striate Tensors, got ndarray at position 1"),
        (lambda w: clip_grad_value([w], -0.5), ValueError,
         r"clip_grad_value: clip_value must be >= 0, got -0.5"),
        (lambda w: clip_grad_value([w.grad], 0.5), TypeError,
         r"clip_grad_value: params must be striate Tensors, got ndarray at position 0"),
    ],
)
def test_errors(call, error, match):
    w = Tensor(np.zeros(2))
    w.grad = np.ones(2)
    with pytest.raises(error, match=match):
        call(w)
