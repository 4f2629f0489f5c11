"""striate.reference.conv against PyTorch (float64, forward and every gradient), central
differences, the lectures' worked numbers, and the fast striate.functional ops."""

from __future__ import annotations

import itertools

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
    out_sizes,
    resolve,
    torch_pad,
    torch_run,
)

TORCH_CONV = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
              3: torch.nn.functional.conv3d}
TORCH_CONV_T = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
                3: torch.nn.functional.conv_transpose3d}

# (N, spatial, C_in, C_out, groups, kernel, stride, dilation, padding)
CONFIGS = [
    (2, (9,), 3, 4, 1, (3,), (1,), (1,), "valid"),
    (1, (10,), 2, 3, 1, (4,), (3,), (1,), "same"),  # odd pixel of 'same' at the end
    (2, (8,), 4, 4, 2, (3,), (2,), (2,), "full"),
    (3, (7,), 2, 2, 1, (2,), (1,), (3,), ((2, 0),)),
    (2, (6, 7), 3, 4, 1, (3, 3), (1, 1), (1, 1), "valid"),
    (2, (7, 8), 3, 5, 1, (3, 2), (2, 3), (1, 1), "same"),
    (1, (8, 8), 2, 3, 1, (4, 4), (2, 2), (1, 1), "same"),  # total padding 2: (1, 1)
    (1, (7, 7), 2, 3, 1, (2, 2), (2, 2), (1, 1), "same"),  # total padding 1: (0, 1)
    (2, (5, 6), 4, 6, 2, (3, 3), (1, 2), (2, 1), "full"),
    (1, (6, 5), 3, 3, 3, (3, 3), (1, 1), (1, 1), 1),  # depthwise
    (2, (9, 7), 4, 8, 4, (3, 3), (2, 2), (1, 1), (1, 2)),  # two filters per input channel
    (2, (6, 6), 2, 4, 1, (2, 3), (1, 1), (2, 1), ((1, 0), (0, 2))),
    (1, (11, 9), 3, 2, 1, (5, 3), (3, 2), (1, 2), ((2, 1), (3, 0))),  # stride drops rows
    (2, (4, 4), 5, 2, 1, (1, 1), (1, 1), (1, 1), "valid"),  # 1x1
    (1, (5, 5), 2, 2, 1, (5, 5), (1, 1), (1, 1), "valid"),  # kernel as large as the input
    (1, (7, 7), 2, 3, 1, (2, 2), (4, 4), (1, 1), "valid"),  # stride beyond the kernel
    (2, (4, 5, 4), 2, 3, 1, (2, 3, 2), (1, 1, 1), (1, 1, 1), "valid"),
    (1, (5, 4, 6), 4, 4, 2, (3, 2, 3), (2, 1, 2), (1, 2, 1), "same"),
    (1, (3, 4, 3), 2, 2, 1, (2, 2, 2), (1, 1, 1), (1, 1, 1), ((1, 0), (0, 1), 1)),
]


def _torch_conv(x, w, b, stride, pads, dilation, groups):
    n = x.ndim - 2
    weight = w.permute(n + 1, n, *range(n))  # (C_out, C_in/G, *k)
    y = TORCH_CONV[n](torch_pad(channels_first(x), pads), weight, b, stride=stride,
                      dilation=dilation, groups=groups)
    return channels_last(y)


def _conv_inputs(config, rng):
    n_batch, spatial, c_in, c_out, groups, kernel, stride, dilation, padding = config
    x = rng.standard_normal((n_batch, *spatial, c_in))
    w = rng.standard_normal((*kernel, c_in // groups, c_out))
    b = rng.standard_normal(c_out)
    pads = resolve(padding, spatial, kernel, stride, dilation)
    return x, w, b, pads


def test_same_padding_formula_puts_the_odd_pixel_at_the_end():
    assert resolve("same", (7,), (2,), (2,), (1,)) == ((0, 1),)
    assert resolve("same", (10,), (4,), (3,), (1,)) == ((1, 2),)
    assert resolve("same", (8,), (3,), (1,), (2,)) == ((2, 2),)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_conv_against_torch(config, rng):
    x, w, b, pads = _conv_inputs(config, rng)
    stride, dilation, groups = config[6], config[7], config[4]
    y = R.conv.conv(x, w, b, stride, pads, dilation, groups)
    assert y.shape[1:-1] == out_sizes(x.shape[1:-1], w.shape[:-2], stride, pads, dilation)
    dy = rng.standard_normal(y.shape)
    y_t, (dx_t, dw_t, db_t) = torch_run(
        lambda x, w, b: _torch_conv(x, w, b, stride, pads, dilation, groups), (x, w, b), dy)
    assert_close(y, y_t, "y")
    assert_close(R.conv_dx(dy, w, x.shape, stride, pads, dilation, groups), dx_t, "dx")
    assert_close(R.conv_dw(dy, x, w.shape, stride, pads, dilation, groups), dw_t, "dw")
    assert_close(R.conv_db(dy), db_t, "db")


@pytest.mark.parametrize("config", CONFIGS[::2], ids=str)
def test_conv_numerical_gradients(config, rng):
    x, w, b, pads = _conv_inputs(config, rng)
    stride, dilation, groups = config[6], config[7], config[4]

    def f(x, w, b):
        return R.conv.conv(x, w, b, stride, pads, dilation, groups)

    dy = rng.standard_normal(f(x, w, b).shape)
    grads = [R.conv_dx(dy, w, x.shape, stride, pads, dilation, groups),
             R.conv_dw(dy, x, w.shape, stride, pads, dilation, groups), R.conv_db(dy)]
    numeric_check(f, [x, w, b], grads, dy, rng)


def test_conv_without_bias_and_float32(rng):
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)
    y = R.conv.conv(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert y.dtype == np.float32
    expected = R.conv.conv(x.astype(np.float64), w.astype(np.float64), np.zeros(3), (1, 1),
                      ((1, 1), (1, 1)), (1, 1), 1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


# ===== true convolution (flip) =================================================================
def test_flip_kernel_gives_numpy_convolve(rng):
    x, k = rng.standard_normal(20), rng.standard_normal(5)
    for mode, pads in (("valid", ((0, 0),)), ("full", ((4, 4),))):
        y = R.conv.conv(x.reshape(1, 20, 1), R.flip_kernel(k.reshape(5, 1, 1)), None, (1,), pads,
                   (1,), 1)
        np.testing.assert_allclose(y.ravel(), np.convolve(x, k, mode=mode), rtol=1e-12,
                                   atol=1e-12)


def test_flip_kernel_is_the_textbook_2d_convolution(rng):
    """y[i, j] = sum_{u,v} w[u, v] x[i - u, j - v] (Goodfellow et al. 9.4), on the 'valid' part:
    output (i, j) of the valid cross-correlation sits at (i + kH - 1, j + kW - 1) there."""
    x, w = rng.standard_normal((6, 7)), rng.standard_normal((3, 2))
    y = R.conv.conv(x.reshape(1, 6, 7, 1), R.flip_kernel(w.reshape(3, 2, 1, 1)), None, (1, 1),
               ((0, 0), (0, 0)), (1, 1), 1)[0, :, :, 0]
    textbook = np.zeros((4, 6))
    for i, j in itertools.product(range(4), range(6)):
        textbook[i, j] = sum(w[u, v] * x[i + 2 - u, j + 1 - v]
                             for u, v in itertools.product(range(3), range(2)))
    np.testing.assert_allclose(y, textbook, rtol=1e-12)
    assert R.flip_kernel(w.reshape(3, 2, 1, 1))[0, 0, 0, 0] == w[2, 1]


# ===== transposed convolution ==================================================================
# (N, conv output spatial, C_in, C_out, groups, kernel, stride, dilation, pads, output_padding)
TRANSPOSE_CONFIGS = [
    (2, (5,), 3, 4, 1, (3,), (2,), (1,), ((0, 0),), (1,)),
    (1, (4,), 2, 2, 2, (4,), (3,), (2,), ((1, 2),), (2,)),
    (2, (3, 4), 3, 2, 1, (3, 3), (2, 2), (1, 1), ((1, 1), (0, 1)), (1, 0)),
    (1, (4, 3), 4, 6, 2, (2, 3), (1, 2), (2, 1), ((0, 0), (2, 2)), (0, 1)),
    (1, (2, 3, 2), 2, 3, 1, (2, 2, 3), (2, 1, 2), (1, 1, 1), ((0, 1), (0, 0), (1, 0)),
     (1, 0, 0)),
]


def _transpose_case(config, rng):
    n_batch, spatial, c_in, c_out, groups, kernel, stride, dilation, pads, extra = config
    x = rng.standard_normal((n_batch, *spatial, c_out))  # laid out like conv's output
    w = rng.standard_normal((*kernel, c_in // groups, c_out))
    b = rng.standard_normal(c_in)
    output_shape = tuple((i - 1) * s - p0 - p1 + d * (k - 1) + 1 + e for i, k, s, (p0, p1), d, e
                         in zip(spatial, kernel, stride, pads, dilation, extra, strict=True))
    return x, w, b, output_shape


def _torch_conv_transpose(x, w, b, stride, pads, dilation, groups, output_shape):
    """torch's transposed convolution without padding, then the padding cut off each side (the
    last rows an output_padding asks for are zeros plus the bias)."""
    n = x.ndim - 2
    full = TORCH_CONV_T[n](channels_first(x), w.permute(n + 1, n, *range(n)), None,
                           stride=stride, dilation=dilation, groups=groups)
    grown = [max(0, p0 + o - size) for (p0, _), o, size in
             zip(pads, output_shape, full.shape[2:], strict=True)]
    full = torch_pad(full, [(0, g) for g in grown])
    index = (slice(None), slice(None), *(slice(p0, p0 + o) for (p0, _), o in
                                         zip(pads, output_shape, strict=True)))
    return channels_last(full[index]) + b


@pytest.mark.parametrize("config", TRANSPOSE_CONFIGS, ids=str)
def test_conv_transpose_against_torch(config, rng):
    x, w, b, output_shape = _transpose_case(config, rng)
    groups, stride, dilation, pads = config[4], config[6], config[7], config[8]
    y = R.conv_transpose(x, w, b, stride, pads, dilation, groups, output_shape)
    assert y.shape == (x.shape[0], *output_shape, w.shape[-2] * groups)
    dy = rng.standard_normal(y.shape)
    y_t, (dx_t, dw_t, db_t) = torch_run(
        lambda x, w, b: _torch_conv_transpose(x, w, b, stride, pads, dilation, groups,
                                              output_shape), (x, w, b), dy)
    assert_close(y, y_t, "y")
    assert_close(R.conv_transpose_dx(dy, w, stride, pads, dilation, groups), dx_t, "dx")
    assert_close(R.conv_transpose_dw(dy, x, w.shape, stride, pads, dilation, groups), dw_t, "dw")
    assert_close(R.conv_db(dy), db_t, "db")
    # conv maps the transposed output's shape back to x's: the two are adjoint
    z = rng.standard_normal(y.shape)
    lhs = np.sum(R.conv.conv(z, w, None, stride, pads, dilation, groups) * x)
    rhs = np.sum(z * R.conv_transpose(x, w, None, stride, pads, dilation, groups, output_shape))
    assert np.isclose(lhs, rhs, rtol=1e-10)


@pytest.mark.parametrize("config", TRANSPOSE_CONFIGS[::2], ids=str)
def test_conv_transpose_numerical_gradients(config, rng):
    x, w, b, output_shape = _transpose_case(config, rng)
    groups, stride, dilation, pads = config[4], config[6], config[7], config[8]

    def f(x, w, b):
        return R.conv_transpose(x, w, b, stride, pads, dilation, groups, output_shape)

    dy = rng.standard_normal(f(x, w, b).shape)
    grads = [R.conv_transpose_dx(dy, w, stride, pads, dilation, groups),
             R.conv_transpose_dw(dy, x, w.shape, stride, pads, dilation, groups),
             R.conv_db(dy)]
    numeric_check(f, [x, w, b], grads, dy, rng)


# ===== locally connected =======================================================================
# (N, spatial, C_in, C_out, kernel, stride, dilation, padding)
LOCAL_CONFIGS = [
    (2, (7,), 3, 2, (3,), (2,), (1,), "same"),
    (1, (5, 6), 2, 3, (3, 2), (1, 2), (1, 1), ((1, 0), (0, 1))),
    (2, (6, 5), 2, 2, (2, 2), (2, 1), (2, 1), "valid"),
    (1, (3, 4, 3), 2, 2, (2, 2, 2), (1, 2, 1), (1, 1, 1), 1),
]


def _local_case(config, rng):
    n_batch, spatial, c_in, c_out, kernel, stride, dilation, padding = config
    pads = resolve(padding, spatial, kernel, stride, dilation)
    out = out_sizes(spatial, kernel, stride, pads, dilation)
    x = rng.standard_normal((n_batch, *spatial, c_in))
    w = rng.standard_normal((*out, *kernel, c_in, c_out))
    b = rng.standard_normal((*out, c_out))
    return x, w, b, pads, out


def _torch_locally_connected(x, w, b, stride, pads, dilation, out):
    """One output position at a time: the window's values times that position's own kernel."""
    xp = channels_last(torch_pad(channels_first(x), pads))
    n = x.ndim - 2
    columns = []
    for o in itertools.product(*map(range, out)):
        window = (slice(None), *(slice(i * s, i * s + d * (k - 1) + 1, d) for i, s, d, k in
                                 zip(o, stride, dilation, w.shape[n:2 * n], strict=True)))
        columns.append(torch.einsum("n...c,...cf->nf", xp[window], w[o]) + b[o])
    return torch.stack(columns, dim=1).reshape(x.shape[0], *out, w.shape[-1])


@pytest.mark.parametrize("config", LOCAL_CONFIGS, ids=str)
def test_locally_connected_against_torch_and_numerically(config, rng):
    x, w, b, pads, out = _local_case(config, rng)
    stride, dilation = config[5], config[6]
    y = R.locally_connected(x, w, b, stride, pads, dilation)
    dy = rng.standard_normal(y.shape)
    y_t, grads_t = torch_run(
        lambda x, w, b: _torch_locally_connected(x, w, b, stride, pads, dilation, out),
        (x, w, b), dy)
    grads = [R.locally_connected_dx(dy, w, x.shape, stride, pads, dilation),
             R.locally_connected_dw(dy, x, w.shape, stride, pads, dilation),
             R.locally_connected_db(dy)]
    assert_close(y, y_t, "y")
    for name, ours, theirs in zip(("dx", "dw", "db"), grads, grads_t, strict=True):
        assert_close(ours, theirs, name)
    numeric_check(lambda x, w, b: R.locally_connected(x, w, b, stride, pads, dilation),
                  [x, w, b], grads, dy, rng, directions=1)


def test_locally_connected_with_one_kernel_everywhere_is_conv(rng):
    x, w = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 2, 3, 4))
    pads = ((1, 1), (0, 0))
    shared = np.broadcast_to(w, (3, 4, *w.shape))  # out (3, 4) at stride 2, 1
    np.testing.assert_allclose(R.locally_connected(x, shared, None, (2, 1), pads, (1, 1)),
                               R.conv.conv(x, w, None, (2, 1), pads, (1, 1), 1), rtol=1e-12)


# ===== the lectures' worked numbers ============================================================
SERIES = np.array([1, 0, 2, 3, 5, 1, 2, 3], dtype=float)
KERNEL = np.array([-1, 2, 1], dtype=float)


def _series(x, k, pads, stride=1):
    return R.conv.conv(x.reshape(1, -1, 1), k.reshape(-1, 1, 1), None, (stride,), (pads,), (1,),
                  1).ravel()


def test_lecture_1d_series():
    """Seed 000: [1,0,2,3,5,1,2,3] with the kernel [-1,2,1]: valid, zero-padded, stride 2."""
    np.testing.assert_array_equal(_series(SERIES, KERNEL, (0, 0)), [1, 7, 9, 8, -1, 6])
    np.testing.assert_array_equal(_series(SERIES, KERNEL, (1, 1)), [2, 1, 7, 9, 8, -1, 6, 4])
    # The stride-2 slides pad the first seven values (0 1 0 2 3 5 1 2 0): [2, 7, 8, 3].
    np.testing.assert_array_equal(_series(SERIES[:7], KERNEL, (1, 1), 2), [2, 7, 8, 3])


def test_lecture_numpy_conv_1d_smoothing(rng):
    """Seed 000's `conv_1D`: output[i] = kernel . x[i:i+len(kernel)], a valid correlation."""
    y = 0.05 * np.linspace(0, 100, 200) - 1.5 + rng.standard_normal(200)
    kernel = 0.1 * np.ones(10)
    lecture = np.array([np.dot(kernel, y[i:i + 10]) for i in range(len(y) - 9)])
    np.testing.assert_allclose(_series(y, kernel, (0, 0)), lecture, rtol=1e-12)


def test_lecture_2d_example():
    """Seed 000: the 6x6 input and 3x3 kernel. The slide prints 2 as the fourth value of the
    first row, but its own dot product (1,-1,1,1,0,2,0,-1,1) . (-1,0,1,0,2,1,1,0,-1) gives 1:
    the inputs win."""
    image = np.array([[1, 0, 2, 1, -1, 1], [0, 1, -1, 1, 0, 2], [1, 0, 0, 0, -1, 1],
                      [0, -1, -1, 0, 2, 0], [1, 1, 0, -2, 1, 0], [0, 0, 1, -1, 0, 1]], float)
    kernel = np.array([[-1, 0, 1], [0, 2, 1], [1, 0, -1]], float)
    y = R.conv.conv(image.reshape(1, 6, 6, 1), kernel.reshape(3, 3, 1, 1), None, (1, 1),
               ((0, 0), (0, 0)), (1, 1), 1)[0, :, :, 0]
    assert y.shape == (4, 4)
    np.testing.assert_array_equal(y[0], [3, 0, 0, 1])


def test_lecture_tensorflow_conv2d_valid_and_same():
    """Seed 003: tf.nn.conv2d on the 1x3x3x1 image 1..9 with a 2x2x1x1 filter of ones; SAME pads
    the odd pixel at the end (bottom and right), and three filters (1, 10, -1) scale it."""
    image = np.arange(1, 10, dtype=float).reshape(1, 3, 3, 1)
    ones = np.ones((2, 2, 1, 1))
    valid = R.conv.conv(image, ones, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    np.testing.assert_array_equal(valid[0, :, :, 0], [[12, 16], [24, 28]])
    pads = resolve("same", (3, 3), (2, 2), (1, 1), (1, 1))
    assert pads == ((0, 1), (0, 1))
    same = [[12, 16, 9], [24, 28, 15], [15, 17, 9]]
    y = R.conv.conv(image, ones, None, (1, 1), pads, (1, 1), 1)
    np.testing.assert_array_equal(y[0, :, :, 0], same)
    three = np.tile(np.array([1.0, 10.0, -1.0]), (2, 2, 1, 1))  # (2, 2, 1, 3)
    y = R.conv.conv(image, three, None, (1, 1), pads, (1, 1), 1)[0]
    for f, scale in enumerate([1, 10, -1]):
        np.testing.assert_array_equal(y[:, :, f], np.multiply(same, scale))


def test_lecture_volume_32x32x3_ten_5x5_filters():
    """Seed 002: 32x32x3, ten 5x5 filters, stride 1, pad 2 -> 32x32x10 (760 parameters)."""
    w, b = np.ones((5, 5, 3, 10)), np.zeros(10)
    y = R.conv.conv(np.ones((1, 32, 32, 3)), w, b, (1, 1), ((2, 2), (2, 2)), (1, 1), 1)
    assert y.shape == (1, 32, 32, 10)
    assert w.size + b.size == 760
    assert y[0, 16, 16, 0] == 75 and y[0, 0, 0, 0] == 27  # 5*5*3 inside, 3*3*3 at a corner


# ===== the same numbers as striate.functional ==================================================
FAST = [  # (F op, n, config index)
    (F.conv1d, 0), (F.conv1d, 2), (F.conv2d, 5), (F.conv2d, 9), (F.conv2d, 10), (F.conv2d, 12),
    (F.conv3d, 17),
]


@pytest.mark.parametrize("op, index", FAST, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("flip", [False, True])
def test_conv_equals_functional(op, index, flip, rng):
    config = CONFIGS[index]
    x, w, b, pads = _conv_inputs(config, rng)
    stride, dilation, groups = config[6], config[7], config[4]
    kernel = R.flip_kernel(w) if flip else w
    y = R.conv.conv(x, kernel, b, stride, pads, dilation, groups)
    dy = rng.standard_normal(y.shape)
    y_f, (dx_f, dw_f, db_f) = fast_run(
        lambda x, w, b: op(x, w, b, stride=stride, padding=pads, dilation=dilation,
                           groups=groups, flip=flip), (x, w, b), dy)
    dw = R.conv_dw(dy, x, w.shape, stride, pads, dilation, groups)
    assert_close(y, y_f, "y")
    assert_close(R.conv_dx(dy, kernel, x.shape, stride, pads, dilation, groups), dx_f, "dx")
    assert_close(R.flip_kernel(dw) if flip else dw, dw_f, "dw")
    assert_close(R.conv_db(dy), db_f, "db")


@pytest.mark.parametrize("config", TRANSPOSE_CONFIGS, ids=str)
def test_conv_transpose_equals_functional(config, rng):
    x, w, b, output_shape = _transpose_case(config, rng)
    groups, stride, dilation, pads, extra = config[4], config[6], config[7], config[8], config[9]
    op = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[x.ndim - 2]
    y = R.conv_transpose(x, w, b, stride, pads, dilation, groups, output_shape)
    dy = rng.standard_normal(y.shape)
    y_f, (dx_f, dw_f, db_f) = fast_run(
        lambda x, w, b: op(x, w, b, stride=stride, padding=pads, output_padding=extra,
                           dilation=dilation, groups=groups), (x, w, b), dy)
    assert_close(y, y_f, "y")
    assert_close(R.conv_transpose_dx(dy, w, stride, pads, dilation, groups), dx_f, "dx")
    assert_close(R.conv_transpose_dw(dy, x, w.shape, stride, pads, dilation, groups), dw_f, "dw")
    assert_close(R.conv_db(dy), db_f, "db")


@pytest.mark.parametrize("config", LOCAL_CONFIGS[:3], ids=str)
def test_locally_connected_equals_functional(config, rng):
    x, w, b, pads, _ = _local_case(config, rng)
    stride, dilation = config[5], config[6]
    op = F.locally_connected1d if x.ndim == 3 else F.locally_connected2d
    y = R.locally_connected(x, w, b, stride, pads, dilation)
    dy = rng.standard_normal(y.shape)
    y_f, (dx_f, dw_f, db_f) = fast_run(
        lambda x, w, b: op(x, w, b, stride=stride, padding=pads, dilation=dilation), (x, w, b),
        dy)
    assert_close(y, y_f, "y")
    assert_close(R.locally_connected_dx(dy, w, x.shape, stride, pads, dilation), dx_f, "dx")
    assert_close(R.locally_connected_dw(dy, x, w.shape, stride, pads, dilation), dw_f, "dw")
    assert_close(R.locally_connected_db(dy), db_f, "db")


def test_a_conv_geometry_that_does_not_fit_is_an_error():
    """The reference trusts its resolved geometry; a channel count the groups do not divide
    fails in the reshape that splits the groups."""
    with pytest.raises(ValueError, match="reshape"):
        R.conv.conv(np.zeros((1, 4, 3)), np.zeros((2, 1, 2)), None, (1,), ((0, 0),), (1,), 2)
