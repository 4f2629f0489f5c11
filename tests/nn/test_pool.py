"""Pooling layers: each equals its functional op, shapes, repr, errors."""

import numpy as np
import pytest
import torch

from striate import Tensor, nn
from striate import functional as F
from tests.helpers import check_gradients, compare_with_torch

CASES = [
    # (layer, input shape, the same computation through the functional op)
    (nn.MaxPool1D(3, strides=2), (2, 9, 3), lambda x: F.max_pool1d(x, 3, 2)),
    (nn.MaxPool2D(2), (2, 8, 6, 3), lambda x: F.max_pool2d(x, 2)),
    (nn.MaxPool2D(3, strides=2, padding="same"), (1, 7, 7, 2),
     lambda x: F.max_pool2d(x, 3, 2, "same")),
    (nn.MaxPool3D((2, 1, 2)), (1, 4, 3, 4, 2), lambda x: F.max_pool3d(x, (2, 1, 2))),
    (nn.AvgPool1D(2), (2, 8, 3), lambda x: F.avg_pool1d(x, 2)),
    (nn.AvgPool2D(3, strides=1, padding=1, count_include_pad=True), (2, 5, 5, 2),
     lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=True)),
    (nn.AvgPool3D(2), (1, 4, 4, 4, 2), lambda x: F.avg_pool3d(x, 2)),
    (nn.LPPool1D(2, 3), (2, 9, 2), lambda x: F.lp_pool1d(x, 2, 3)),
    (nn.LPPool2D(3.0, 2, strides=1), (1, 5, 5, 2), lambda x: F.lp_pool2d(x, 3.0, 2, 1)),
    (nn.LPPool3D(2, 2), (1, 4, 4, 4, 1), lambda x: F.lp_pool3d(x, 2, 2)),
    (nn.GaussianPool2D(3, strides=2, padding="same", sigma=0.7), (2, 6, 6, 3),
     lambda x: F.gaussian_pool2d(x, 3, 2, "same", 0.7)),
    (nn.GlobalAveragePooling(), (2, 5, 4, 3), F.global_avg_pool),
    (nn.GlobalMaxPooling(), (2, 7, 3), F.global_max_pool),
    (nn.GlobalAveragePooling(keepdims=True), (2, 5, 4, 3),
     lambda x: F.global_avg_pool(x).reshape(2, 1, 1, 3)),
    (nn.AdaptiveAvgPool1D(4), (2, 10, 3), lambda x: F.adaptive_avg_pool1d(x, 4)),
    (nn.AdaptiveAvgPool2D((3, 2)), (2, 7, 5, 3), lambda x: F.adaptive_avg_pool2d(x, (3, 2))),
    (nn.AdaptiveAvgPool2D((None, 2)), (1, 7, 5, 3), lambda x: F.adaptive_avg_pool2d(x, (7, 2))),
    (nn.AdaptiveAvgPool3D(2), (1, 4, 5, 3, 2), lambda x: F.adaptive_avg_pool3d(x, 2)),
    (nn.AdaptiveMaxPool1D(3), (2, 7, 2), lambda x: F.adaptive_max_pool1d(x, 3)),
    (nn.AdaptiveMaxPool2D(3), (2, 7, 7, 2), lambda x: F.adaptive_max_pool2d(x, 3)),
    (nn.AdaptiveMaxPool3D(2), (1, 4, 4, 4, 2), lambda x: F.adaptive_max_pool3d(x, 2)),
    (nn.Maxout(3), (2, 4, 4, 6), lambda x: F.maxout(x, 3)),
]


def _case_id(value) -> str:
    """Test ids without memory addresses, which change between runs (and workers)."""
    return getattr(value, "__name__", None) or repr(value)[:40]


@pytest.mark.parametrize("layer, shape, reference", CASES, ids=_case_id)
def test_pool_layer_equals_functional(layer, shape, reference, rng):
    x = rng.standard_normal(shape)
    if isinstance(layer, nn.LPPool1D | nn.LPPool2D | nn.LPPool3D):
        x = np.abs(x) + 0.1
    xa, xb = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    y, expected = layer(xa), reference(xb)
    np.testing.assert_array_equal(y.data, expected.data)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    expected.backward(dy)
    np.testing.assert_array_equal(xa.grad, xb.grad)
    assert layer.num_parameters() == 0


def test_max_pool_matches_torch(rng):
    x = rng.standard_normal((2, 9, 9, 3)).astype(np.float32)
    ours = nn.MaxPool2D(3, strides=2, padding=1)(x).data
    theirs = torch.nn.MaxPool2d(3, 2, padding=1)(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_array_equal(ours, theirs.numpy().transpose(0, 2, 3, 1))


def test_lecture_shapes():
    # AlexNet's overlapping pooling: 55x55x96 -> 27x27x96 with 3x3 windows at stride 2.
    assert nn.MaxPool2D(3, strides=2)(np.zeros((1, 55, 55, 96))).shape == (1, 27, 27, 96)
    assert nn.AvgPool2D(2)(np.zeros((1, 28, 28, 6))).shape == (1, 14, 14, 6)


def test_repr_shows_only_non_default_arguments():
    assert repr(nn.MaxPool2D(2)) == "MaxPool2D(2)"
    assert repr(nn.MaxPool2D(2, strides=2)) == "MaxPool2D(2)"
    assert repr(nn.MaxPool2D(3, strides=2, padding="same")) == \
        "MaxPool2D(3, strides=2, padding='same')"
    assert repr(nn.AvgPool1D(2, count_include_pad=True)) == "AvgPool1D(2, count_include_pad=True)"
    assert repr(nn.LPPool2D(2, 3)) == "LPPool2D(2.0, 3)"
    assert repr(nn.GaussianPool2D(3, sigma=2)) == "GaussianPool2D(3, sigma=2.0)"
    assert repr(nn.GlobalAveragePooling()) == "GlobalAveragePooling()"
    assert repr(nn.GlobalMaxPooling(keepdims=True)) == "GlobalMaxPooling(keepdims=True)"
    assert repr(nn.AdaptiveAvgPool2D((7, 7))) == "AdaptiveAvgPool2D(7)"
    assert repr(nn.Maxout(2)) == "Maxout(2)"


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.MaxPool2D(0), ValueError, r"MaxPool2D: pool_size must be >= 1, got 0"),
    (lambda: nn.AvgPool2D(2, strides=(1, 2, 3)), ValueError,
     r"AvgPool2D: strides must be an int or 2 ints"),
    (lambda: nn.MaxPool1D(2, padding="half"), ValueError, r"MaxPool1D: unknown padding 'half'"),
    (lambda: nn.AvgPool2D(2, count_include_pad=1), TypeError,
     r"AvgPool2D: count_include_pad must be True or False"),
    (lambda: nn.LPPool2D(0, 2), ValueError, r"LPPool2D: p must be a number > 0, got 0"),
    (lambda: nn.GaussianPool2D(3, sigma=-1), ValueError, r"GaussianPool2D: sigma must be"),
    (lambda: nn.AdaptiveAvgPool2D(0), ValueError, r"AdaptiveAvgPool2D: output_size must be >= 1"),
    (lambda: nn.Maxout(0), ValueError, r"Maxout: pieces must be >= 1"),
    (lambda: nn.GlobalMaxPooling(keepdims="yes"), TypeError,
     r"GlobalMaxPooling: keepdims must be True or False"),
])
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_input_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"MaxPool2D 'pool': expected a 4-D input "
                                         r"\(N, H, W, C\), got shape \(8, 8, 3\)"):
        nn.MaxPool2D(2, name="pool")(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"GlobalAveragePooling 'globalaveragepooling': expected "
                                         r"an input \(N, \*spatial, C\)"):
        nn.GlobalAveragePooling()(np.zeros((8, 3)))
    with pytest.raises(ValueError, match=r"Maxout 'maxout': the 5 channels of input shape "
                                         r"\(2, 5\) do not split into groups of pieces=2"):
        nn.Maxout(2)(np.zeros((2, 5)))


def _channels_first(fn):
    """A torch pooling function on channels-last tensors: (N, *spatial, C) in and out."""

    def call(x):
        axes = (0, x.ndim - 1, *range(1, x.ndim - 1))
        y = fn(x.permute(*axes))
        return y.permute(0, *range(2, y.ndim), 1)

    return call


_TORCH_POOLS = {
    "MaxPool": (torch.nn.functional.max_pool1d, torch.nn.functional.max_pool2d,
                torch.nn.functional.max_pool3d),
    "AvgPool": (torch.nn.functional.avg_pool1d, torch.nn.functional.avg_pool2d,
                torch.nn.functional.avg_pool3d),
}
_LAYERS = {"MaxPool": (nn.MaxPool1D, nn.MaxPool2D, nn.MaxPool3D),
           "AvgPool": (nn.AvgPool1D, nn.AvgPool2D, nn.AvgPool3D)}

# (kind, rank, count_include_pad, sizes, kernel, stride, padding); torch's padding is at most half
# the kernel. Sizes where the last window is partial, exact, and would start in the end padding.
CEIL_WINDOWS = [(3, 2, 0), (2, 2, 0), (3, 3, 0), (3, 2, 1), (3, 1, 1), (5, 3, 2), (4, 3, 1),
                (2, 2, 1), (1, 2, 0), (2, 3, 0)]
CEIL_CASES = [
    (kind, 2, include, (size, size + 1), k, s, p)
    for kind, include in (("MaxPool", False), ("AvgPool", False), ("AvgPool", True))
    for size in (3, 5, 8, 13)
    for k, s, p in CEIL_WINDOWS
    if size + 2 * p >= k
] + [
    (kind, 1, include, (size,), k, s, p)
    for kind, include in (("MaxPool", False), ("AvgPool", True))
    for size in (4, 7, 10, 11)
    for k, s, p in CEIL_WINDOWS
] + [
    (kind, 3, include, (4, 5, 6), k, s, p)
    for kind, include in (("MaxPool", False), ("AvgPool", False), ("AvgPool", True))
    for k, s, p in ((3, 2, 0), (3, 2, 1), (2, 2, 1), (2, 3, 0))
] + [
    # GoogLeNet's and SqueezeNet's stems: 112 keeps half a window, 111 fits exactly
    ("MaxPool", 2, False, (112, 111), 3, 2, 0),
    # a window wider than the input: ceil mode still keeps one
    ("MaxPool", 2, False, (2, 3), 3, 2, 0),
    ("AvgPool", 1, False, (1,), 3, 3, 0),
    ("AvgPool", 2, True, (2, 2), 4, 2, 1),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, rank, include, sizes, kernel, stride, padding", CEIL_CASES)
def test_ceil_mode_matches_torch(kind, rank, include, sizes, kernel, stride, padding, dtype, rng):
    options = {"count_include_pad": include} if kind == "AvgPool" else {}
    layer = _LAYERS[kind][rank - 1](kernel, stride, padding, ceil_mode=True, **options)
    x = rng.standard_normal((2, *sizes, 3)).astype(dtype)
    torch_fn = _channels_first(lambda t: _TORCH_POOLS[kind][rank - 1](
        t, kernel, stride, padding, ceil_mode=True, **options))
    compare_with_torch(layer, torch_fn, [x], rng)


def test_ceil_mode_with_asymmetric_and_same_padding(rng):
    # No torch layer pads (start, end) pairs: the reference is a floor-mode pool with the
    # end padding that ceil mode adds, from arith.ceil_mode_padding.
    x = rng.standard_normal((1, 9, 8, 2))
    y = nn.MaxPool2D(3, strides=2, padding=((1, 0), (0, 0)), ceil_mode=True)(x)
    expected = F.max_pool2d(x, 3, 2, ((1, 1), (0, 1)))
    assert y.shape == (1, 5, 4, 2)
    np.testing.assert_array_equal(y.data, expected.data)
    same = nn.AvgPool2D(2, strides=3, padding="same", ceil_mode=True)(x)
    assert same.shape == (1, 3, 3, 2)  # 'same' already keeps ceil(I / S) windows


def test_ceil_mode_gradients(rng):
    # Distinct values: no ties inside a window, so max pooling is differentiable there.
    x = rng.permutation(2 * 7 * 6 * 2).reshape(2, 7, 6, 2) / 10.0
    check_gradients(nn.MaxPool2D(3, strides=2, padding=1, ceil_mode=True), [x], rng)
    check_gradients(nn.AvgPool2D(3, strides=2, padding=1, count_include_pad=True,
                                 ceil_mode=True), [x], rng)
    check_gradients(nn.AvgPool1D(2, strides=3, ceil_mode=True), [x[:, :, 0]], rng)


def test_ceil_mode_on_non_contiguous_input(rng):
    base = rng.standard_normal((2, 3, 14, 16))
    x = base.transpose(0, 2, 3, 1)[:, ::2, 1:]  # (2, 7, 15, 3), strided
    y = nn.MaxPool2D(2, ceil_mode=True)(x)
    expected = torch.nn.functional.max_pool2d(torch.from_numpy(base[:, :, ::2, 1:]), 2,
                                              ceil_mode=True)
    np.testing.assert_array_equal(y.data, expected.numpy().transpose(0, 2, 3, 1))


def test_ceil_mode_repr_and_errors():
    assert repr(nn.MaxPool2D(3, strides=2, ceil_mode=True)) == \
        "MaxPool2D(3, strides=2, ceil_mode=True)"
    assert repr(nn.AvgPool1D(2, count_include_pad=True, ceil_mode=True)) == \
        "AvgPool1D(2, ceil_mode=True, count_include_pad=True)"
    with pytest.raises(TypeError, match=r"MaxPool2D: ceil_mode must be True or False, got 1"):
        nn.MaxPool2D(2, ceil_mode=1)
    with pytest.raises(ValueError, match=r"MaxPool2D 'pool': a 4-wide kernel .* leaves no "
                                         r"window in ceil mode on the padded input of 2"):
        nn.MaxPool2D(4, strides=1, ceil_mode=True, name="pool")(np.zeros((1, 2, 5, 1)))


def _tf_same_max_pool(x, size, stride, dy):
    """Max pooling with TensorFlow's 'same' padding written out with loops, independent of
    striate: per axis O = ceil(I / S), total padding P = max((O - 1) * S + K - I, 0), of which
    floor(P / 2) goes before and the odd pixel after; padding never wins a max. Returns y and
    the gradient dy routed to each window's maximum."""
    n, height, width, channels = x.shape
    geometry = []
    for extent, k, s in zip((height, width), size, stride, strict=True):
        out = -(-extent // s)
        total = max((out - 1) * s + k - extent, 0)
        geometry.append((out, total // 2))
    (out_h, top), (out_w, left) = geometry
    y = np.empty((n, out_h, out_w, channels))
    dx = np.zeros_like(x)
    for b in range(n):
        for i in range(out_h):
            rows = range(max(i * stride[0] - top, 0), min(i * stride[0] - top + size[0], height))
            for j in range(out_w):
                cols = range(max(j * stride[1] - left, 0),
                             min(j * stride[1] - left + size[1], width))
                for c in range(channels):
                    window = [(x[b, r, q, c], r, q) for r in rows for q in cols]
                    value, r, q = max(window)
                    y[b, i, j, c] = value
                    dx[b, r, q, c] += dy[b, i, j, c]
    return y, dx


@pytest.mark.parametrize("shape, size, stride", [
    ((1, 7, 7, 2), (3, 3), (2, 2)),  # P = 2: one pixel on each side
    ((2, 8, 8, 3), (3, 3), (2, 2)),  # P = 1: the odd pixel after (TensorFlow), not before
    ((1, 6, 5, 2), (2, 2), (1, 1)),  # P = 1 at stride 1
    ((1, 5, 9, 1), (2, 3), (2, 2)),  # P = 1 on H, 2 on W
], ids=str)
def test_max_pool_same_padding_equals_tensorflow_written_out(shape, size, stride, rng):
    x = rng.standard_normal(shape)  # no ties: each window has one maximum
    layer = nn.MaxPool2D(size, strides=stride, padding="same")
    xt = Tensor(x, requires_grad=True)
    y = layer(xt)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    want, want_dx = _tf_same_max_pool(x, size, stride, dy)
    assert y.shape == want.shape, f"shape mismatch: ours={y.shape} expected={want.shape}"
    np.testing.assert_array_equal(y.data, want)
    np.testing.assert_allclose(xt.grad, want_dx, rtol=1e-12, atol=1e-15)  # overlaps: sum order
