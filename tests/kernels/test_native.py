"""striate.kernels.native, the compiled kernels, against the definitions in striate.reference:
random shapes (odd sizes, padding, stride, dilation, channels 1 to 67, batch 1 to 9), float32 and
float64, every instruction set the CPU has, forward and backward; and calls that must raise."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from striate.kernels import native
from striate.kernels.native import boundary

ref_conv = importlib.import_module("striate.reference.conv")
ref_pool = importlib.import_module("striate.reference.pool")
ref_norm = importlib.import_module("striate.reference.norm")

needs_native = pytest.mark.skipif(not native.available,
                                  reason=f"compiled kernels unavailable: {native.reason}")
pytestmark = needs_native

DTYPES = [np.float32, np.float64]


def _isas() -> list[str]:
    if not native.available:
        return ["baseline"]
    every = ["baseline", "avx2"]
    return every[:every.index(native.isa()) + 1]


@pytest.fixture(params=_isas())
def isa(request):
    """Each test once per instruction set the CPU has; the best one restored afterwards."""
    best = native.isa()
    native.set_isa(request.param)
    yield request.param
    native.set_isa(best)


def assert_close(ours, theirs, dtype, what: str, terms: int = 1) -> None:
    """Equal up to rounding: the error relative to the largest value, allowing for sums of
    `terms` products in another order."""
    assert ours.shape == theirs.shape, f"{what}: shape mismatch: ours={ours.shape} " \
                                       f"reference={theirs.shape}"
    eps = np.finfo(dtype).eps
    scale = max(float(np.abs(theirs).max(initial=0)), 1.0)
    error = float(np.abs(ours.astype(np.float64) - theirs).max(initial=0))
    bound = 8 * eps * scale * np.sqrt(max(terms, 1)) + 4 * eps * scale
    assert error <= bound, f"{what}: max error {error:.3g} > {bound:.3g} (scale {scale:.3g})"


# ===== convolution =============================================================================
def _random_conv(rng):
    """A random geometry: (N, H, W, C, kH, kW, K, stride, padding, dilation), output >= 1."""
    while True:
        n, c, k = int(rng.integers(1, 10)), int(rng.integers(1, 68)), int(rng.integers(1, 68))
        h, w = int(rng.integers(1, 10)) * 2 + 1, int(rng.integers(1, 10)) * 2 + 1
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = tuple((int(rng.integers(0, kk)), int(rng.integers(0, kk))) for kk in (kh, kw))
        if all(i + p0 + p1 - d * (kk - 1) - 1 >= 0 for i, (p0, p1), d, kk in
               zip((h, w), padding, dilation, (kh, kw), strict=True)):
            return n, h, w, c, kh, kw, k, stride, padding, dilation


NAMED_CONVS = {
    # name: (N, H, W, C, kH, kW, K, stride, padding, dilation)
    "lenet_c1": (3, 32, 32, 1, 5, 5, 6, (1, 1), ((0, 0), (0, 0)), (1, 1)),
    "lenet_c1_same": (2, 28, 28, 1, 5, 5, 6, (1, 1), ((2, 2), (2, 2)), (1, 1)),
    "lenet_c3": (3, 14, 14, 6, 5, 5, 16, (1, 1), ((0, 0), (0, 0)), (1, 1)),
    "resnet_stem": (1, 37, 35, 3, 7, 7, 64, (2, 2), ((3, 3), (3, 3)), (1, 1)),
    "alexnet_stem": (1, 67, 63, 3, 11, 11, 96, (4, 4), ((2, 2), (2, 2)), (1, 1)),
    "dilated": (2, 15, 13, 4, 3, 3, 8, (1, 1), ((2, 2), (2, 2)), (2, 2)),
}


def _conv_case(rng, dtype, geometry):
    n, h, w, c, kh, kw, k, stride, padding, dilation = geometry
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal((kh, kw, c, k)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, wt, b, stride, padding, dilation


def _check_conv(rng, dtype, geometry, relu: bool):
    x, w, b, stride, padding, dilation = _conv_case(rng, dtype, geometry)
    kh, kw, c, _ = w.shape
    y = native.conv2d(x, w, b, stride, padding, dilation, relu=relu)
    pre = ref_conv.conv(x, w, b, stride, padding, dilation, 1)
    assert_close(y, np.maximum(pre, 0) if relu else pre, dtype, "y", kh * kw * c)

    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = native.conv2d_backward(dy, x, w, stride, padding, dilation,
                                        y=y if relu else None)
    g = dy * (y > 0) if relu else dy
    m = g.size // g.shape[-1]
    assert_close(dx, ref_conv.conv_dx(g, w, x.shape, stride, padding, dilation, 1), dtype, "dx",
                 kh * kw * w.shape[-1])
    assert_close(dw, ref_conv.conv_dw(g, x, w.shape, stride, padding, dilation, 1), dtype, "dw",
                 m)
    assert_close(db, ref_conv.conv_db(g), dtype, "db", m)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(12))
def test_conv2d_random_shapes(rng, isa, dtype, case):
    _check_conv(rng, dtype, _random_conv(rng), relu=bool(case % 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NAMED_CONVS))
def test_conv2d_named_layers(rng, isa, dtype, name):
    _check_conv(rng, dtype, NAMED_CONVS[name], relu=True)


def _check_depthwise(rng, dtype, geometry, relu: bool):
    n, h, w, c, kh, kw, _, stride, padding, dilation = geometry
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal((kh, kw, 1, c)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    y = native.depthwise_conv2d(x, wt, b, stride, padding, dilation, relu=relu)
    pre = ref_conv.conv(x, wt, b, stride, padding, dilation, c)
    assert_close(y, np.maximum(pre, 0) if relu else pre, dtype, "y", kh * kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = native.depthwise_conv2d_backward(dy, x, wt, stride, padding, dilation,
                                                  y=y if relu else None)
    g = dy * (y > 0) if relu else dy
    m = g.size // c
    assert_close(dx, ref_conv.conv_dx(g, wt, x.shape, stride, padding, dilation, c), dtype,
                 "dx", kh * kw)
    assert_close(dw, ref_conv.conv_dw(g, x, wt.shape, stride, padding, dilation, c), dtype,
                 "dw", m)
    assert_close(db, ref_conv.conv_db(g), dtype, "db", m)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(8))
def test_depthwise_random_shapes(rng, isa, dtype, case):
    _check_depthwise(rng, dtype, _random_conv(rng), relu=bool(case % 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_3x3_mobilenet_shapes(rng, isa, dtype):
    _check_depthwise(rng, dtype, (2, 28, 28, 32, 3, 3, 32, (1, 1), ((1, 1), (1, 1)), (1, 1)),
                     relu=True)
    _check_depthwise(rng, dtype, (2, 28, 28, 67, 3, 3, 67, (2, 2), ((0, 1), (0, 1)), (1, 1)),
                     relu=False)


def test_depthwise_kernel_shape_is_checked():
    with pytest.raises(ValueError, match=r"depthwise kernel for 4 channels must have shape"):
        native.depthwise_conv2d(np.zeros((1, 5, 5, 4), np.float32),
                                np.zeros((3, 3, 4, 4), np.float32))


def test_conv2d_without_bias_and_partial_gradients(rng, isa):
    x, w, _, stride, padding, dilation = _conv_case(rng, np.float32, NAMED_CONVS["lenet_c3"])
    y = native.conv2d(x, w, None, stride, padding, dilation)
    assert_close(y, ref_conv.conv(x, w, None, stride, padding, dilation, 1), np.float32, "y", 150)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = native.conv2d_backward(dy, x, w, need_dx=False, need_db=False)
    assert dx is None and db is None
    assert_close(dw, ref_conv.conv_dw(dy, x, w.shape, stride, padding, dilation, 1), np.float32,
                 "dw", dy.size // 16)


def test_conv2d_split_over_threads_matches_one_thread(rng, monkeypatch):
    x, w, b, *_ = _conv_case(rng, np.float64, (8, 13, 13, 3, 3, 3, 10, 1, 0, 1))
    y1 = native.conv2d(x, w, b)
    dy = rng.standard_normal(y1.shape)
    grads1 = native.conv2d_backward(dy, x, w)
    monkeypatch.setattr(boundary, "MIN_PARALLEL_WORK", 0)
    np.testing.assert_array_equal(native.conv2d(x, w, b), y1)  # each image on its own
    for ours, one in zip(native.conv2d_backward(dy, x, w), grads1, strict=True):
        np.testing.assert_allclose(ours, one, rtol=1e-12, atol=1e-12)


def test_conv2d_writes_into_out(rng):
    x, w, b, *_ = _conv_case(rng, np.float32, NAMED_CONVS["lenet_c1"])
    out = np.full((3, 28, 28, 6), np.nan, dtype=np.float32)
    assert native.conv2d(x, w, b, out=out) is out
    np.testing.assert_array_equal(out, native.conv2d(x, w, b))


def test_outputs_written_into_out_arrays(rng):
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 5)).astype(np.float32)
    dy = rng.standard_normal((2, 6, 6, 5)).astype(np.float32)
    dx_out = np.empty_like(x)
    dx, _, _ = native.conv2d_backward(dy, x, w, dx_out=dx_out)
    assert dx is dx_out
    np.testing.assert_array_equal(dx, native.conv2d_backward(dy, x, w)[0])
    y_out, arg_out = np.empty((2, 4, 4, 3), np.float32), np.empty((2, 4, 4, 3), np.int32)
    y, arg = native.max_pool2d(x, 2, out=y_out, argmax_out=arg_out)
    assert y is y_out and arg is arg_out
    np.testing.assert_array_equal(y, native.max_pool2d(x, 2)[0])
    a = native.avg_pool2d(x, 2, out=np.empty((2, 4, 4, 3), np.float32))
    np.testing.assert_array_equal(a, native.avg_pool2d(x, 2))
    back = native.avg_pool2d_backward(a, x.shape, 2, out=np.empty_like(x))
    np.testing.assert_array_equal(back, native.avg_pool2d_backward(a, x.shape, 2))
    with pytest.raises(ValueError, match="argmax_out overlaps"):
        native.max_pool2d(x, 2, out=y_out, argmax_out=y_out.view(np.int32))


@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_backward_in_place_over_dy(rng, isa, relu):
    x = rng.standard_normal((3, 5, 5, 7))
    y, mean, _, inv_std = native.batch_norm_train(x, relu=relu)
    dy = rng.standard_normal(x.shape)
    expected = native.batch_norm_backward(dy, x, mean, inv_std, y=y if relu else None,
                                          need_dresidual=True)
    grads = native.batch_norm_backward(dy, x, mean, inv_std, y=y if relu else None,
                                       need_dresidual=True, dx_out=dy)
    assert grads[0] is dy
    for ours, theirs in zip(grads, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_conv2d_relu_keeps_nan(isa):
    x = np.ones((1, 3, 3, 1), np.float32)
    x[0, 1, 1, 0] = np.nan
    y = native.conv2d(x, -np.ones((1, 1, 1, 2), np.float32), relu=True)
    assert np.isnan(y[0, 1, 1]).all() and (y[0, 0, 0] == 0).all()


# ===== pooling =================================================================================
def _random_pool(rng):
    """(x shape, size, stride, padding) whose every window holds input."""
    while True:
        n, c = int(rng.integers(1, 10)), int(rng.integers(1, 68))
        h, w = int(rng.integers(1, 9)) * 2 + 1, int(rng.integers(1, 9)) * 2 + 1
        size = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = tuple((int(rng.integers(0, k)), int(rng.integers(0, k))) for k in size)
        out = [(i + p0 + p1 - k) // s + 1 for i, (p0, p1), k, s in
               zip((h, w), padding, size, stride, strict=True)]
        if all(o >= 1 and (o - 1) * s - p0 < i for o, s, (p0, _), i in
               zip(out, stride, padding, (h, w), strict=True)):
            return (n, h, w, c), size, stride, padding


POOLS = [((128, 28, 28, 6), (2, 2), (2, 2), ((0, 0), (0, 0))),  # LeNet-5
         ((2, 112, 112, 64), (3, 3), (2, 2), ((1, 1), (1, 1))),  # ResNet's stem pool
         ((2, 55, 55, 20), (3, 3), (2, 2), ((0, 0), (0, 0)))]  # AlexNet's overlapping pool


def _check_max_pool(rng, dtype, shape, size, stride, padding):
    # Values from a small set: many ties, which must go to the first maximum in window order.
    x = rng.integers(-3, 3, shape).astype(dtype)
    y, arg = native.max_pool2d(x, size, stride, padding)
    np.testing.assert_array_equal(y, ref_pool.max_pool(x, size, stride, padding))
    assert arg.dtype == np.int32 and arg.min() >= 0 and arg.max() < size[0] * size[1]
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = native.max_pool2d_backward(dy, arg, x.shape, size, stride, padding)
    assert_close(dx, ref_pool.max_pool_dx(dy, x, size, stride, padding), dtype, "dx",
                 size[0] * size[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(10))
def test_max_pool_random_shapes(rng, isa, dtype, case):
    _check_max_pool(rng, dtype, *_random_pool(rng))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(POOLS)))
def test_max_pool_named_shapes(rng, isa, dtype, case):
    _check_max_pool(rng, dtype, *POOLS[case])


def test_max_pool_padding_never_wins_and_nan_propagates(isa):
    x = np.full((1, 3, 3, 2), -np.inf, np.float32)
    y, arg = native.max_pool2d(x, 3, 1, 1)
    assert (y == -np.inf).all()
    # all values -inf: the first element of the window that is on the input
    assert arg[0, 0, 0, 0] == 4 and arg[0, 2, 2, 0] == 0
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 1, 0, 0] = np.nan
    y, arg = native.max_pool2d(x, 2)
    assert np.isnan(y).all() and arg[0, 0, 0, 0] == 2


def _check_avg_pool(rng, dtype, shape, size, stride, padding, include):
    x = rng.standard_normal(shape).astype(dtype)
    y = native.avg_pool2d(x, size, stride, padding, count_include_pad=include)
    assert_close(y, ref_pool.avg_pool(x, size, stride, padding, include), dtype, "y",
                 size[0] * size[1])
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = native.avg_pool2d_backward(dy, x.shape, size, stride, padding, include)
    assert_close(dx, ref_pool.avg_pool_dx(dy, x.shape, size, stride, padding, include), dtype,
                 "dx", size[0] * size[1])


@pytest.mark.parametrize("include", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(8))
def test_avg_pool_random_shapes(rng, isa, dtype, case, include):
    _check_avg_pool(rng, dtype, *_random_pool(rng), include)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(8))
def test_lp_pool_random_shapes(rng, isa, dtype, case):
    shape, size, stride, padding = _random_pool(rng)
    p = [1.0, 2.0, 3.0, 1.5][case % 4]
    x = rng.standard_normal(shape).astype(dtype)
    x[..., 0] = 0  # a channel of zeros: windows with y = 0 send back 0
    y = native.lp_pool2d(x, p, size, stride, padding)
    assert_close(y, ref_pool.lp_pool(x, p, size, stride, padding), dtype, "y", 8)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = native.lp_pool2d_backward(dy, x, y, p, size, stride, padding)
    assert_close(dx, ref_pool.lp_pool_dx(dy, x, p, size, stride, padding), dtype, "dx", 64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(6))
def test_adaptive_pools_random_shapes(rng, isa, dtype, case):
    n, c = int(rng.integers(1, 10)), int(rng.integers(1, 68))
    h, w = int(rng.integers(1, 16)), int(rng.integers(1, 16))
    out = (int(rng.integers(1, h + 3)), int(rng.integers(1, w + 3)))  # also larger than x
    x = rng.integers(-3, 3, (n, h, w, c)).astype(dtype)  # ties
    y = native.adaptive_avg_pool2d(x, out)
    assert_close(y, ref_pool.adaptive_avg_pool(x, out), dtype, "avg y", h * w)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(native.adaptive_avg_pool2d_backward(dy, x.shape),
                 ref_pool.adaptive_avg_pool_dx(dy, x.shape), dtype, "avg dx", h * w)
    y, arg = native.adaptive_max_pool2d(x, out)
    np.testing.assert_array_equal(y, ref_pool.adaptive_max_pool(x, out))
    assert_close(native.adaptive_max_pool2d_backward(dy, arg, x.shape),
                 ref_pool.adaptive_max_pool_dx(dy, x), dtype, "max dx", h * w)
    tampered = arg.copy()
    tampered.flat[0] = h * w
    with pytest.raises(ValueError, match="argmax holds an index outside"):
        native.adaptive_max_pool2d_backward(dy, tampered, x.shape)


# ===== per-channel passes ======================================================================
def _channels_shape(rng):
    return (int(rng.integers(1, 10)), int(rng.integers(1, 8)) * 2 + 1,
            int(rng.integers(1, 8)) * 2 + 1, int(rng.integers(1, 68)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(8))
def test_batch_norm_train_forward_and_backward(rng, isa, dtype, case):
    shape = _channels_shape(rng)
    c = shape[-1]
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)  # a mean far from 0
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype) if case % 4 else None
    beta = rng.standard_normal(c).astype(dtype) if case % 4 else None
    relu, residual = bool(case % 2), None
    if case % 3 == 0:
        residual = rng.standard_normal(shape).astype(dtype)
    eps = 1e-5
    y, mean, var, inv_std = native.batch_norm_train(x, gamma, beta, eps, residual, relu)
    y_ref, mean_ref, var_ref = ref_norm.batch_norm_train(x, gamma, beta, eps)
    m = x.size // c
    assert_close(mean, mean_ref, dtype, "mean", m)
    assert_close(var, var_ref, dtype, "var", m)
    assert_close(inv_std, 1 / np.sqrt(var_ref + eps), dtype, "inv_std", m)
    pre = y_ref if residual is None else y_ref + residual
    assert_close(y, np.maximum(pre, 0) if relu else pre, dtype, "y", m)

    dy = rng.standard_normal(shape).astype(dtype)
    dx, dgamma, dbeta, dres = native.batch_norm_backward(
        dy, x, mean, inv_std, gamma, y=y if relu else None, need_dresidual=True)
    g = dy * (y > 0) if relu else dy
    dx_ref, dgamma_ref, dbeta_ref = ref_norm.batch_norm_train_grad(g, x, gamma, eps)
    assert_close(dx, dx_ref, dtype, "dx", m)
    assert_close(dgamma, dgamma_ref, dtype, "dgamma", m)
    assert_close(dbeta, dbeta_ref, dtype, "dbeta", m)
    np.testing.assert_array_equal(dres, g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(4))
def test_batch_norm_eval_forward_and_backward(rng, isa, dtype, case):
    shape = _channels_shape(rng)
    c = shape[-1]
    x = rng.standard_normal(shape).astype(dtype)
    mean, var = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    relu = bool(case % 2)
    residual = rng.standard_normal(shape).astype(dtype) if case >= 2 else None
    y = native.batch_norm_eval(x, mean, var, gamma, beta, 1e-5, residual, relu)
    pre = ref_norm.batch_norm_eval(x, gamma, beta, mean, var, 1e-5)
    pre = pre if residual is None else pre + residual
    assert_close(y, np.maximum(pre, 0) if relu else pre, dtype, "y", 4)
    dy = rng.standard_normal(shape).astype(dtype)
    inv_std = (1 / np.sqrt(var + dtype(1e-5))).astype(dtype)
    dx, dgamma, dbeta, _ = native.batch_norm_backward(dy, x, mean, inv_std, gamma,
                                                      y=y if relu else None, training=False)
    g = dy * (y > 0) if relu else dy
    refs = ref_norm.batch_norm_eval_grad(g, x, gamma, mean, var, 1e-5)
    m = x.size // c
    for ours, theirs, what in zip((dx, dgamma, dbeta), refs, ("dx", "dgamma", "dbeta"),
                                  strict=True):
        assert_close(ours, theirs, dtype, what, m)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(8))
def test_channel_map_forward_and_backward(rng, isa, dtype, case):
    shape = _channels_shape(rng)
    c = shape[-1]
    x = rng.standard_normal(shape).astype(dtype)
    scale = rng.standard_normal(c).astype(dtype) if case & 1 else None
    shift = rng.standard_normal(c).astype(dtype) if case & 2 else None
    residual = rng.standard_normal(shape).astype(dtype) if case & 4 else None
    relu = case in (0, 3, 5, 6)
    y = native.channel_map(x, scale, shift, residual, relu)
    pre = x * (1 if scale is None else scale) + (0 if shift is None else shift)
    pre = pre if residual is None else pre + residual
    assert_close(y, np.maximum(pre, 0) if relu else pre, dtype, "y", 3)

    dy = rng.standard_normal(shape).astype(dtype)
    dx, dscale, dshift, dres = native.channel_map_backward(
        dy, x, scale, y=y if relu else None, need_dscale=True, need_dshift=True,
        need_dresidual=True)
    g = dy * (y > 0) if relu else dy
    m = x.size // c
    assert_close(dx, g * (1 if scale is None else scale), dtype, "dx")
    assert_close(dscale, (g * x).reshape(-1, c).sum(0), dtype, "dscale", m)
    assert_close(dshift, g.reshape(-1, c).sum(0), dtype, "dshift", m)
    np.testing.assert_array_equal(dres, g)


def test_channel_map_in_place(rng, isa):
    x = rng.standard_normal((2, 5, 5, 6)).astype(np.float32)
    expected = np.maximum(x * 2 + 1, 0)
    assert native.channel_map(x, np.full(6, 2, np.float32), np.ones(6, np.float32), relu=True,
                              out=x) is x
    np.testing.assert_allclose(x, expected, rtol=1e-6)


# ===== calls that must raise ===================================================================
def test_wrong_dtypes_raise():
    x = np.zeros((1, 8, 8, 2), np.float32)
    w = np.zeros((3, 3, 2, 4), np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        native.conv2d(x.astype(np.int64), w)
    with pytest.raises(TypeError, match="dtype float64 but x has float32"):
        native.conv2d(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        native.max_pool2d(x.astype(np.float16), 2)
    with pytest.raises(TypeError, match="must be an ndarray"):
        native.channel_map(x.tolist())
    y, arg = native.max_pool2d(x, 2)
    with pytest.raises(TypeError, match="int32"):
        native.max_pool2d_backward(y, arg.astype(np.int64), x.shape, 2)


def test_non_contiguous_and_misshapen_inputs_raise():
    x = np.zeros((1, 8, 8, 2), np.float32)
    w = np.zeros((3, 3, 2, 4), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        native.conv2d(x[:, ::2], w)
    with pytest.raises(ValueError, match="C-contiguous"):
        native.batch_norm_train(np.zeros((4, 6), np.float32).T)
    with pytest.raises(ValueError, match="x has 2 channels but the kernel expects 3"):
        native.conv2d(x, np.zeros((3, 3, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        native.conv2d(x, w, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        native.conv2d(x, np.zeros((9, 9, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(1, 6, 6, 4\)"):
        native.conv2d(x, w, out=np.zeros((1, 6, 6, 5), np.float32))
    with pytest.raises(ValueError, match="dy must have shape"):
        native.conv2d_backward(np.zeros((1, 5, 6, 4), np.float32), x, w)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        native.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="leaves a window without input"):
        native.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"residual must have shape"):
        native.channel_map(x, residual=np.zeros((1, 8, 8, 3), np.float32))


def test_out_aliasing_an_input_raises():
    x = np.zeros((1, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match="overlaps an input"):
        native.conv2d(x, np.zeros((1, 1, 4, 4), np.float32), out=x)


def test_tampered_argmax_raises_instead_of_writing_outside(rng):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    y, arg = native.max_pool2d(x, 3, 2, 1)
    for bad in (-1, 9, 0):  # 0 names the padding in the first window (padding 1 at the start)
        tampered = arg.copy()
        tampered[0, 0, 0, 0] = bad
        with pytest.raises(ValueError, match="argmax holds an index outside"):
            native.max_pool2d_backward(y, tampered, x.shape, 3, 2, 1)


def test_extension_checks_buffer_sizes_itself():
    """The extension refuses buffers that do not match the geometry, whoever calls it."""
    ext = importlib.import_module("striate.kernels._native")
    x = np.zeros((1, 8, 8, 2), np.float32)
    w = np.zeros((3, 3, 2, 4), np.float32)
    y = np.zeros((1, 6, 6, 4), np.float32)
    geo = (1, 8, 8, 2, 3, 3, 4, 6, 6, 1, 1, 1, 1, 0, 0, 0, 0)
    ext.conv2d_forward(0, x, w, None, y, geo, False, 0, 1, 1)
    with pytest.raises(ValueError, match="y holds 143 elements"):
        ext.conv2d_forward(0, x, w, None, y.reshape(-1)[1:], geo, False, 0, 1, 1)
    with pytest.raises(TypeError, match="element format"):
        ext.conv2d_forward(1, x, w, None, y, geo, False, 0, 1, 1)
    with pytest.raises(ValueError, match="output size does not match"):
        ext.conv2d_forward(0, x, w, None, y, geo[:7] + (7,) + geo[8:], False, 0, 1, 1)
    with pytest.raises(ValueError, match="range"):
        ext.conv2d_forward(0, x, w, None, y, geo, False, 0, 2, 1)
    with pytest.raises(ValueError, match="C-contiguous, writable"):
        ext.conv2d_forward(0, x, w, None, np.zeros((1, 6, 6, 4), np.float32)[..., ::-1], geo,
                           False, 0, 1, 1)
    for parts in (0, 2, 65):  # at least one, no more than the rows (one image here)
        with pytest.raises(ValueError, match="parts must be in"):
            ext.conv2d_forward(0, x, w, None, y, geo, False, 0, 1, parts)
    x2, dy2 = np.zeros((2, 8, 8, 2), np.float32), np.zeros((2, 6, 6, 4), np.float32)
    with pytest.raises(ValueError, match="dw holds 72 elements, the geometry needs 144"):
        # two parts: one copy of dw for each
        ext.conv2d_backward(0, x2, w, dy2, None, None, np.zeros(w.shape, np.float32), None,
                            (2,) + geo[1:], 0, 2, 2)
    with pytest.raises(ValueError, match="not available"):
        ext.set_isa("avx512-or-anything-else")


# ===== the build and the fallback ==============================================================
def test_switched_off_by_the_environment():
    code = textwrap.dedent("""
        from striate.kernels import native
        assert native.available is False and "STRIATE_NATIVE=0" in native.reason
        try:
            native.conv2d(None, None)
        except RuntimeError as error:
            assert "not available" in str(error)
        else:
            raise AssertionError("no error")
    """)
    env = {**os.environ, "STRIATE_NATIVE": "0"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


MEMCHECK_SCRIPT = textwrap.dedent("""
    import importlib
    import numpy as np
    from striate.kernels import native
    ext = importlib.import_module("striate.kernels._native")
    rng = np.random.default_rng(0)
    for isa in ["baseline", "avx2"]:  # (valgrind does not run AVX-512 code)
        try:
            native.set_isa(isa)
        except ValueError:
            continue
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal((2, 11, 9, 3)).astype(dtype)
            w = rng.standard_normal((3, 2, 3, 11)).astype(dtype)
            b = rng.standard_normal(11).astype(dtype)
            y = native.conv2d(x, w, b, (2, 1), ((1, 2), (0, 1)), (1, 2), relu=True)
            native.conv2d_backward(np.ones_like(y), x, w, (2, 1), ((1, 2), (0, 1)), (1, 2), y=y)
            wd = rng.standard_normal((3, 3, 1, 3)).astype(dtype)
            yd = native.depthwise_conv2d(x, wd, b[:3], (1, 2), ((1, 1), (2, 0)), (2, 1), relu=True)
            native.depthwise_conv2d_backward(np.ones_like(yd), x, wd, (1, 2), ((1, 1), (2, 0)),
                                             (2, 1), y=yd)
            p, arg = native.max_pool2d(x, 3, 2, 1)
            native.max_pool2d_backward(p, arg, x.shape, 3, 2, 1)
            q = native.lp_pool2d(x, 3, 2, 1, ((1, 0), (0, 1)))
            native.lp_pool2d_backward(q, x, q, 3, 2, 1, ((1, 0), (0, 1)))
            q, arg = native.adaptive_max_pool2d(x, (4, 5))
            native.adaptive_max_pool2d_backward(q, arg, x.shape)
            native.adaptive_avg_pool2d_backward(native.adaptive_avg_pool2d(x, 13), x.shape)
            a = native.avg_pool2d(x, 2, 1, ((1, 0), (0, 1)))
            native.avg_pool2d_backward(a, x.shape, 2, 1, ((1, 0), (0, 1)))
            y, mean, var, inv = native.batch_norm_train(x, relu=True, residual=x.copy())
            native.batch_norm_backward(y, x, mean, inv, y=y, need_dresidual=True)
            native.channel_map_backward(y, x, np.ones(3, dtype), y=y, need_dscale=True,
                                        need_dshift=True, need_dresidual=True)
            v = np.empty((4, 4, 2, 3, 4, 3), dtype)  # Winograd's tiles, the last ones cut
            native.winograd_input(rng.standard_normal((2, 8, 10, 3)).astype(dtype), v)
            yw = native.winograd_output(v, np.empty((2, 5, 7, 3), dtype))
            native.winograd_output_grad(yw, np.empty_like(v))
            # a call cut into two parts, the second on the extension's thread
            geo = (2, 11, 9, 3, 3, 2, 11, 9, 8, 1, 1, 1, 1, 0, 0, 0, 0)
            out = np.empty((2, 9, 8, 11), dtype)
            ext.conv2d_forward(int(dtype == np.float64), x, w, b, out, geo, True, 0, 2, 2)
    print("memcheck-script-done")
""")


@pytest.mark.slow
def test_kernels_under_valgrind_memcheck(tmp_path):
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    script = tmp_path / "memcheck.py"
    script.write_text(MEMCHECK_SCRIPT)
    log = tmp_path / "valgrind.log"
    # One thread: the same code, and valgrind serialises threads anyway.
    env = {**os.environ, "PYTHONMALLOC": "malloc", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [valgrind, "--tool=memcheck", "--errors-for-leak-kinds=none", "--num-callers=30",
         f"--log-file={log}", sys.executable, str(script)],
        capture_output=True, text=True, env=env, timeout=900)
    report = log.read_text()
    assert result.returncode == 0 and "memcheck-script-done" in result.stdout, \
        result.stderr[-2000:] + report[-2000:]
    # CPython and the dynamic loader report errors of their own (uninitialised reads that
    # memcheck cannot see through); an error is ours when a frame of its stack is in the
    # extension.
    pid = report.split(" ", 1)[0]  # each line starts with ==PID==; a blank one ends an error
    ours = ("_native.cpython", "_impl.h:", "(module.c:", "(conv_direct.c:", "(depthwise.c:",
            "(pool.c:", "(channelwise.c:", "(threads.c:", "(winograd.c:")
    errors = [block for block in report.split(f"{pid} \n")
              if any(frame in block for frame in ours)]
    assert not errors, "\n".join(errors)[:4000]


# ===== the extension's threads =================================================================
@pytest.mark.slow
def test_the_threads_under_thread_sanitizer(tmp_path):
    """threads.c built with gcc's ThreadSanitizer into a C program that calls it from three
    threads (tests/kernels/threads_harness.c): right results and no data race reported."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    native_dir = Path(native.__file__).parent
    program = tmp_path / "threads_harness"
    build = subprocess.run(
        [gcc, "-O1", "-g", "-std=gnu11", "-fsanitize=thread", f"-I{native_dir}",
         f"-I{sysconfig.get_paths()['include']}", str(Path(__file__).with_name(
             "threads_harness.c")), str(native_dir / "threads.c"), "-o", str(program),
         "-lpthread"], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    result = subprocess.run([str(program)], capture_output=True, text=True, timeout=300)
    assert "ThreadSanitizer" not in result.stderr, result.stderr[-4000:]
    assert result.returncode == 0 and result.stdout.strip() == "threads-harness-ok", \
        result.stdout + result.stderr[-2000:]


def _extension_calls(rng):
    """(name, call(parts) -> outputs) for one kernel of each family, through the extension."""
    ext = importlib.import_module("striate.kernels._native")
    x = rng.standard_normal((7, 9, 8, 3))
    w = rng.standard_normal((3, 3, 3, 5))
    b = rng.standard_normal(5)
    geo = (7, 9, 8, 3, 3, 3, 5, 7, 6, 1, 1, 1, 1, 0, 0, 0, 0)
    dy = rng.standard_normal((7, 7, 6, 5))
    pool_geo = (7, 9, 8, 3, 2, 2, 4, 4, 2, 2, 0, 0)
    m = x.size // 3

    def conv_forward(parts):
        y = np.empty((7, 7, 6, 5))
        ext.conv2d_forward(1, x, w, b, y, geo, True, 0, 7, parts)
        return [y]

    def conv_backward(parts):
        dx, dw, db = np.empty(x.shape), np.empty((parts, *w.shape)), np.empty((parts, 5))
        ext.conv2d_backward(1, x, w, dy, None, dx, dw, db, geo, 0, 7, parts)
        return [dx, dw.sum(axis=0), db.sum(axis=0)]

    def max_pool(parts):
        y, arg = np.empty((7, 4, 4, 3)), np.empty((7, 4, 4, 3), np.int32)
        ext.max_pool_forward(1, x, y, arg, pool_geo, 0, 7, parts)
        return [y, arg]

    def channel_sums(parts):
        sums = np.empty((parts, 2, 3))
        ext.channel_sums(1, x, None, None, None, sums, m, 3, 0, m, parts)
        return [sums.sum(axis=0)]

    def channel_map(parts):
        out = np.empty(x.shape)
        ext.channel_map(1, x, None, b[:3], b[1:4], None, True, out, m, 3, 0, m, parts)
        return [out]

    return {"conv2d_forward": conv_forward, "conv2d_backward": conv_backward,
            "max_pool_forward": max_pool, "channel_sums": channel_sums,
            "channel_map": channel_map}


@pytest.mark.parametrize("name", ["conv2d_forward", "conv2d_backward", "max_pool_forward",
                                  "channel_sums", "channel_map"])
def test_a_call_cut_into_parts_computes_what_one_part_does(rng, name):
    """The extension cuts the rows into 1..7 parts run on its threads: the same outputs (the
    partial sums of each part added up to within rounding)."""
    call = _extension_calls(rng)[name]
    one = call(1)
    for parts in range(2, 8):
        for ours, expected in zip(call(parts), one, strict=True):
            np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def test_calls_from_several_python_threads_at_once(rng):
    """Kernels called from 4 Python threads at once, each cutting its call into 2 parts: a
    call that finds the extension's threads busy runs its parts itself; every result is right."""
    calls = _extension_calls(rng)
    expected = {name: call(1) for name, call in calls.items()}
    errors = []

    def hammer():
        try:
            for _ in range(30):
                for name, call in calls.items():
                    for ours, one in zip(call(2), expected[name], strict=True):
                        np.testing.assert_allclose(ours, one, rtol=1e-12, atol=1e-12)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert not any(t.is_alive() for t in threads)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_forked_child_starts_threads_of_its_own(rng):
    """After fork the child has none of the parent's threads: its calls in parts start new ones
    (a data-loading worker process) instead of waiting for threads that do not exist."""
    call = _extension_calls(rng)["conv2d_forward"]
    expected = call(1)[0]
    call(2)  # the parent's threads exist
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if its two-part call is right
        status = 1
        try:
            status = 0 if np.allclose(call(2)[0], expected, rtol=1e-12, atol=1e-12) else 1
        finally:
            os._exit(status)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in a call cut into parts")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def test_winograd_transforms_refuse_what_does_not_fit():
    """The tile transforms' wrappers and the extension check the shapes of both sides."""
    xp = np.zeros((2, 8, 10, 3), np.float32)  # 3 rows of 4 tiles
    v = np.zeros((4, 4, 2, 3, 4, 3), np.float32)
    native.winograd_input(xp, v)
    with pytest.raises(ValueError, match="xp must have shape"):
        native.winograd_input(np.zeros((2, 7, 10, 3), np.float32), v)
    with pytest.raises(TypeError, match="dtype float64 but x has float32"):
        native.winograd_input(xp, v.astype(np.float64))
    with pytest.raises(ValueError, match="overlaps an input"):
        native.winograd_input(v.reshape(-1)[:480].reshape(2, 8, 10, 3),
                              v)
    y = np.zeros((2, 5, 8, 3), np.float32)  # the last row of tiles cut by the edge
    native.winograd_output(v, y)
    with pytest.raises(ValueError, match="does not hold the outputs"):
        native.winograd_output(v, np.zeros((2, 4, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(4, 4, n, h, tw, C\)"):
        native.winograd_output_grad(y, np.zeros((2, 8, 2, 3, 4, 3), np.float32))
    ext = importlib.import_module("striate.kernels._native")
    with pytest.raises(ValueError, match="tile geometry out of range"):
        ext.winograd_output(0, v, y, (2, 3, 4, 3, 7, 8), 0, 6, 1)
    with pytest.raises(ValueError, match="output holds 240 elements"):
        ext.winograd_output(0, v, y, (2, 3, 4, 3, 6, 8), 0, 6, 1)
