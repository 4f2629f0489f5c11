"""striate.reference.pool against PyTorch (float64, forward and gradient), central differences,
the lectures' worked numbers, and the fast striate.functional ops."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import striate.functional as F
from striate import reference as R

from .oracle import (
    assert_close,
    channels_first,
    channels_last,
    fast_run,
    numeric_check,
    resolve,
    torch_pad,
    torch_run,
)

TF = torch.nn.functional
MAX = {1: TF.max_pool1d, 2: TF.max_pool2d, 3: TF.max_pool3d}
AVG = {1: TF.avg_pool1d, 2: TF.avg_pool2d, 3: TF.avg_pool3d}
LP = {1: TF.lp_pool1d, 2: TF.lp_pool2d, 3: TF.lp_pool3d}
CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
ADAPTIVE_AVG = {1: TF.adaptive_avg_pool1d, 2: TF.adaptive_avg_pool2d, 3: TF.adaptive_avg_pool3d}
ADAPTIVE_MAX = {1: TF.adaptive_max_pool1d, 2: TF.adaptive_max_pool2d, 3: TF.adaptive_max_pool3d}

# (N, spatial, C, size, stride, padding); every window holds at least one input element
CONFIGS = [
    (2, (9,), 3, (3,), (2,), "valid"),
    (1, (8,), 2, (2,), (3,), "same"),
    (2, (7,), 2, (4,), (1,), ((2, 1),)),
    (2, (6, 7), 3, (2, 2), (2, 2), "valid"),
    (1, (7, 7), 2, (3, 3), (2, 2), "same"),  # 'same' at stride 2: (1, 1) padding
    (1, (6, 6), 2, (3, 3), (2, 2), "same"),  # odd pixel at the end: (0, 1)
    (2, (5, 6), 2, (3, 2), (1, 2), 1),
    (1, (8, 5), 3, (3, 3), (3, 1), ((2, 0), (1, 2))),
    (1, (7, 6), 2, (2, 3), (2, 3), (1, (0, 2))),
    (2, (4, 5, 4), 2, (2, 2, 2), (2, 2, 2), "valid"),
    (1, (5, 4, 5), 2, (3, 2, 3), (2, 1, 2), "same"),
]


def _case(config, rng, positive=False):
    n_batch, spatial, c, size, stride, padding = config
    x = rng.standard_normal((n_batch, *spatial, c))
    if positive:
        x = np.abs(x) + 0.1
    return x, size, stride, resolve(padding, spatial, size, stride, (1,) * len(size))


def _torch_pool(pool, x, size, stride, pads, value=0.0):
    return channels_last(pool(torch_pad(channels_first(x), pads, value), size, stride))


def _torch_avg_excluding_padding(x, size, stride, pads):
    """The window's sum over the number of its elements that are input (padding left out)."""
    n = x.ndim - 2
    total = AVG[n](torch_pad(channels_first(x), pads), size, stride) * math.prod(size)
    ones = torch.ones((1, 1, *x.shape[1:-1]), dtype=x.dtype)
    count = AVG[n](torch_pad(ones, pads), size, stride) * math.prod(size)
    return channels_last(total / count)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_max_pool_against_torch(config, rng):
    x, size, stride, pads = _case(config, rng)
    y = R.max_pool(x, size, stride, pads)
    dy = rng.standard_normal(y.shape)
    y_t, (dx_t,) = torch_run(
        lambda x: _torch_pool(MAX[x.ndim - 2], x, size, stride, pads, -math.inf), (x,), dy)
    assert_close(y, y_t, "y")
    assert_close(R.max_pool_dx(dy, x, size, stride, pads), dx_t, "dx")


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool_against_torch(config, count_include_pad, rng):
    x, size, stride, pads = _case(config, rng)
    y = R.avg_pool(x, size, stride, pads, count_include_pad)
    dy = rng.standard_normal(y.shape)
    if count_include_pad:
        def oracle(x):
            return _torch_pool(AVG[x.ndim - 2], x, size, stride, pads)
    else:
        def oracle(x):
            return _torch_avg_excluding_padding(x, size, stride, pads)
    y_t, (dx_t,) = torch_run(oracle, (x,), dy)
    assert_close(y, y_t, "y")
    assert_close(R.avg_pool_dx(dy, x.shape, size, stride, pads, count_include_pad), dx_t, "dx")


@pytest.mark.parametrize("config", CONFIGS[::2], ids=str)
@pytest.mark.parametrize("p", [2.0, 3.0])
def test_lp_pool_against_torch(config, p, rng):
    """torch's lp_pool sums x^p (no absolute value): positive inputs for odd p."""
    x, size, stride, pads = _case(config, rng, positive=p != 2)
    y = R.lp_pool(x, p, size, stride, pads)
    dy = rng.standard_normal(y.shape)
    n = len(size)
    k, s = (size[0], stride[0]) if n == 1 else (size, stride)  # lp_pool1d takes ints
    y_t, (dx_t,) = torch_run(
        lambda x: channels_last(LP[n](torch_pad(channels_first(x), pads), p, k, s)), (x,), dy)
    assert_close(y, y_t, "y")
    assert_close(R.lp_pool_dx(dy, x, p, size, stride, pads), dx_t, "dx")


@pytest.mark.parametrize("config", CONFIGS[1::3], ids=str)
def test_gaussian_pool_against_torch(config, rng):
    """Oracle: a depthwise convolution with the weights over the padded input, divided by the
    same convolution of an image of ones (the weight that falls on the input)."""
    x, size, stride, pads = _case(config, rng)
    n, channels, sigma = x.ndim - 2, x.shape[-1], 0.8
    axes = [np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * sigma**2)) for k in size]
    weights = torch.tensor(functools.reduce(np.multiply.outer, axes))  # (*size)

    def oracle(x):
        total = CONV[n](torch_pad(channels_first(x), pads),
                        weights.expand(channels, 1, *size), stride=stride, groups=channels)
        ones = torch.ones((1, 1, *x.shape[1:-1]), dtype=x.dtype)
        norm = CONV[n](torch_pad(ones, pads), weights[None, None], stride=stride)
        return channels_last(total / norm)

    y = R.gaussian_pool(x, size, stride, pads, sigma)
    dy = rng.standard_normal(y.shape)
    y_t, (dx_t,) = torch_run(oracle, (x,), dy)
    assert_close(y, y_t, "y")
    assert_close(R.gaussian_pool_dx(dy, x.shape, size, stride, pads, sigma), dx_t, "dx")
    np.testing.assert_allclose(R.gaussian_weights(size, sigma).sum(), 1.0)


ADAPTIVE = [((10,), (4,)), ((7,), (7,)), ((5,), (8,)), ((13, 9), (6, 4)), ((6, 6), (3, 3)),
            ((5, 7, 6), (2, 3, 4)), ((4, 4), (1, 1))]


@pytest.mark.parametrize("spatial, out", ADAPTIVE, ids=str)
def test_adaptive_pools_against_torch(spatial, out, rng):
    x = rng.standard_normal((2, *spatial, 3))
    n = len(spatial)
    y = R.adaptive_avg_pool(x, out)
    dy = rng.standard_normal(y.shape)
    y_t, (dx_t,) = torch_run(lambda x: channels_last(ADAPTIVE_AVG[n](channels_first(x), out)),
                             (x,), dy)
    assert_close(y, y_t, "avg y")
    assert_close(R.adaptive_avg_pool_dx(dy, x.shape), dx_t, "avg dx")
    y = R.adaptive_max_pool(x, out)
    y_t, (dx_t,) = torch_run(lambda x: channels_last(ADAPTIVE_MAX[n](channels_first(x), out)),
                             (x,), dy)
    assert_close(y, y_t, "max y")
    assert_close(R.adaptive_max_pool_dx(dy, x), dx_t, "max dx")


def test_adaptive_windows_are_pytorchs():
    assert R.adaptive_windows(10, 4) == [slice(0, 3), slice(2, 5), slice(5, 8), slice(7, 10)]
    assert R.adaptive_windows(5, 8)[:3] == [slice(0, 1), slice(0, 2), slice(1, 2)]


@pytest.mark.parametrize("shape", [(2, 5, 3), (1, 4, 3, 2), (2, 2, 3, 2, 4)], ids=str)
def test_global_pools_and_maxout_against_torch(shape, rng):
    x = rng.standard_normal(shape)
    dy = rng.standard_normal((shape[0], shape[-1]))
    y_t, (dx_t,) = torch_run(lambda x: x.mean(dim=tuple(range(1, x.ndim - 1))), (x,), dy)
    assert_close(R.global_avg_pool(x), y_t, "avg y")
    assert_close(R.global_avg_pool_dx(dy, x.shape), dx_t, "avg dx")
    y_t, (dx_t,) = torch_run(lambda x: x.flatten(1, -2).max(dim=1).values, (x,), dy)
    assert_close(R.global_max_pool(x), y_t, "max y")
    assert_close(R.global_max_pool_dx(dy, x), dx_t, "max dx")
    x = rng.standard_normal((*shape[:-1], 6))
    dy = rng.standard_normal((*shape[:-1], 2))
    y_t, (dx_t,) = torch_run(lambda x: x.unflatten(-1, (2, 3)).max(dim=-1).values, (x,), dy)
    assert_close(R.maxout(x, 3), y_t, "maxout y")
    assert_close(R.maxout_dx(dy, x, 3), dx_t, "maxout dx")


# ===== numerical gradients =====================================================================
@pytest.mark.parametrize("config", CONFIGS[::2], ids=str)
def test_pool_numerical_gradients(config, rng):
    x, size, stride, pads = _case(config, rng)
    dy = rng.standard_normal(R.max_pool(x, size, stride, pads).shape)
    numeric_check(lambda x: R.max_pool(x, size, stride, pads), [x],
                  [R.max_pool_dx(dy, x, size, stride, pads)], dy, rng)
    for include in (False, True):
        numeric_check(lambda x, include=include: R.avg_pool(x, size, stride, pads, include), [x],
                      [R.avg_pool_dx(dy, x.shape, size, stride, pads, include)], dy, rng)
    numeric_check(lambda x: R.lp_pool(x, 3.0, size, stride, pads), [x],
                  [R.lp_pool_dx(dy, x, 3.0, size, stride, pads)], dy, rng)
    numeric_check(lambda x: R.gaussian_pool(x, size, stride, pads, 1.5), [x],
                  [R.gaussian_pool_dx(dy, x.shape, size, stride, pads, 1.5)], dy, rng)


def test_adaptive_and_global_numerical_gradients(rng):
    x = rng.standard_normal((2, 7, 5, 3))
    dy = rng.standard_normal((2, 3, 2, 3))
    numeric_check(lambda x: R.adaptive_avg_pool(x, (3, 2)), [x],
                  [R.adaptive_avg_pool_dx(dy, x.shape)], dy, rng)
    numeric_check(lambda x: R.adaptive_max_pool(x, (3, 2)), [x],
                  [R.adaptive_max_pool_dx(dy, x)], dy, rng)
    dy = rng.standard_normal((2, 3))
    numeric_check(R.global_avg_pool, [x], [R.global_avg_pool_dx(dy, x.shape)], dy, rng)
    numeric_check(R.global_max_pool, [x], [R.global_max_pool_dx(dy, x)], dy, rng)
    dy = rng.standard_normal((2, 7, 5, 1))
    numeric_check(lambda x: R.maxout(x, 3), [x], [R.maxout_dx(dy, x, 3)], dy, rng)


def test_lp_pool_window_of_zeros_sends_back_zero():
    x = np.zeros((1, 4, 1))
    x[0, 2:, 0] = [1.0, -2.0]
    dx = R.lp_pool_dx(np.ones((1, 2, 1)), x, 2.0, (2,), (2,), ((0, 0),))
    np.testing.assert_allclose(dx.ravel(), [0, 0, 1 / np.sqrt(5), -2 / np.sqrt(5)])


# ===== the tie rule ============================================================================
def test_max_pool_ties_go_to_the_first_maximum_in_window_order(rng):
    """On ties the gradient goes to the first maximum in row-major window order, padding
    excluded, as PyTorch does; overlapping windows that share a winner add their dy."""
    x = rng.integers(0, 3, size=(2, 7, 6, 2)).astype(float)  # many ties
    pads = ((1, 1), (0, 1))
    y = R.max_pool(x, (3, 3), (2, 1), pads)
    dy = rng.standard_normal(y.shape)
    _, (dx_t,) = torch_run(lambda x: _torch_pool(TF.max_pool2d, x, (3, 3), (2, 1), pads,
                                                 -math.inf), (x,), dy)
    assert_close(R.max_pool_dx(dy, x, (3, 3), (2, 1), pads), dx_t, "dx")
    window = np.array([[1.0, 5.0], [5.0, 5.0]]).reshape(1, 2, 2, 1)
    dx = R.max_pool_dx(np.ones((1, 1, 1, 1)), window, (2, 2), (2, 2), ((0, 0), (0, 0)))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 1], [0, 0]])


def test_max_pool_padding_never_wins():
    """Seed 003's SAME max pool of [[4, 3], [2, 1]] keeps the values; negated, a zero padding
    would win every window, -inf padding wins none (and takes no gradient)."""
    image = np.array([[4.0, 3.0], [2.0, 1.0]]).reshape(1, 2, 2, 1)
    pads = resolve("same", (2, 2), (2, 2), (1, 1), (1, 1))
    assert pads == ((0, 1), (0, 1))
    np.testing.assert_array_equal(R.max_pool(image, (2, 2), (1, 1), pads)[0, :, :, 0],
                                  [[4, 3], [2, 1]])
    np.testing.assert_array_equal(R.max_pool(-image, (2, 2), (1, 1), pads)[0, :, :, 0],
                                  [[-1, -1], [-1, -1]])
    dx = R.max_pool_dx(np.ones((1, 2, 2, 1)), -image, (2, 2), (1, 1), pads)
    assert dx.sum() == 4 and dx[0, 1, 1, 0] == 4
    everything_minus_inf = np.full((1, 3, 1), -np.inf)
    dx = R.max_pool_dx(np.ones((1, 2, 1)), everything_minus_inf, (2,), (2,), ((1, 0),))
    np.testing.assert_array_equal(dx.ravel(), [1, 1, 0])  # the first input element wins


def test_lecture_max_pool_2x2_stride_2():
    """Seed 003: max pool with 2x2 filters and stride 2 on one depth slice."""
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], float)
    y = R.max_pool(x[None, :, :, None], (2, 2), (2, 2), ((0, 0), (0, 0)))
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8], [3, 4]])
    y = R.avg_pool(x[None, :, :, None], (2, 2), (2, 2), ((0, 0), (0, 0)), False)
    np.testing.assert_array_equal(y[0, :, :, 0], [[3.25, 5.25], [2, 2]])


# ===== the same numbers as striate.functional ==================================================
FAST_CONFIGS = [CONFIGS[i] for i in (0, 2, 4, 5, 7, 8, 10)]


def _fast_name(op: str, n: int):
    return getattr(F, f"{op}{n}d")


@pytest.mark.parametrize("config", FAST_CONFIGS, ids=str)
def test_sliding_pools_equal_functional(config, rng):
    x, size, stride, pads = _case(config, rng, positive=True)
    n = len(size)
    dy = rng.standard_normal(R.max_pool(x, size, stride, pads).shape)
    cases = [
        ("max_pool", {}, R.max_pool(x, size, stride, pads),
         R.max_pool_dx(dy, x, size, stride, pads)),
        ("lp_pool", {"p": 3.0}, R.lp_pool(x, 3.0, size, stride, pads),
         R.lp_pool_dx(dy, x, 3.0, size, stride, pads)),
        ("gaussian_pool", {"sigma": 0.7}, R.gaussian_pool(x, size, stride, pads, 0.7),
         R.gaussian_pool_dx(dy, x.shape, size, stride, pads, 0.7)),
    ]
    for include in (False, True):
        cases.append(("avg_pool", {"count_include_pad": include},
                      R.avg_pool(x, size, stride, pads, include),
                      R.avg_pool_dx(dy, x.shape, size, stride, pads, include)))
    for name, options, y, dx in cases:
        op = _fast_name(name, n)
        y_f, (dx_f,) = fast_run(lambda x, op=op, options=options: op(
            x, size=size, stride=stride, padding=pads, **options), (x,), dy)
        assert_close(y, y_f, f"{name} y")
        assert_close(dx, dx_f, f"{name} dx")


def test_max_pool_ties_equal_functional(rng):
    x = rng.integers(0, 2, size=(2, 6, 7, 3)).astype(float)
    pads = ((1, 0), (1, 1))
    y = R.max_pool(x, (3, 2), (1, 2), pads)
    dy = rng.standard_normal(y.shape)
    y_f, (dx_f,) = fast_run(lambda x: F.max_pool2d(x, (3, 2), stride=(1, 2), padding=pads),
                            (x,), dy)
    assert_close(y, y_f, "y")
    assert_close(R.max_pool_dx(dy, x, (3, 2), (1, 2), pads), dx_f, "dx")


@pytest.mark.parametrize("spatial, out", ADAPTIVE, ids=str)
def test_adaptive_pools_equal_functional(spatial, out, rng):
    x = rng.integers(0, 4, size=(2, *spatial, 2)).astype(float)  # ties: first maximum wins
    n = len(spatial)
    dy = rng.standard_normal((2, *out, 2))
    y_f, (dx_f,) = fast_run(lambda x: _fast_name("adaptive_avg_pool", n)(x, out), (x,), dy)
    assert_close(R.adaptive_avg_pool(x, out), y_f, "avg y")
    assert_close(R.adaptive_avg_pool_dx(dy, x.shape), dx_f, "avg dx")
    y_f, (dx_f,) = fast_run(lambda x: _fast_name("adaptive_max_pool", n)(x, out), (x,), dy)
    assert_close(R.adaptive_max_pool(x, out), y_f, "max y")
    assert_close(R.adaptive_max_pool_dx(dy, x), dx_f, "max dx")


def test_global_pools_and_maxout_equal_functional(rng):
    x = rng.integers(0, 3, size=(2, 4, 3, 6)).astype(float)
    dy = rng.standard_normal((2, 6))
    for ours, ours_dx, op in ((R.global_avg_pool, lambda dy, x: R.global_avg_pool_dx(dy, x.shape),
                               F.global_avg_pool),
                              (R.global_max_pool, R.global_max_pool_dx, F.global_max_pool)):
        y_f, (dx_f,) = fast_run(op, (x,), dy)
        assert_close(ours(x), y_f, f"{op.__name__} y")
        assert_close(ours_dx(dy, x), dx_f, f"{op.__name__} dx")
    dy = rng.standard_normal((2, 4, 3, 2))
    y_f, (dx_f,) = fast_run(lambda x: F.maxout(x, 3), (x,), dy)
    assert_close(R.maxout(x, 3), y_f, "maxout y")
    assert_close(R.maxout_dx(dy, x, 3), dx_f, "maxout dx")
