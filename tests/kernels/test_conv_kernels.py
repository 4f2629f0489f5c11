"""The convolution kernels against the definitions (`striate.reference.conv`), no PyTorch: each
algorithm reached through the public switch `kernels.use`, the dispatch table pinned on named
layers, and the pieces of the algorithms (banded kernels, Winograd's transforms, the cut of
taps that read only padding) checked against what they stand for."""

import numpy as np
import pytest

from striate import Tensor, fused, kernels
from striate import functional as F
from striate.arith import conv_geometry
from striate.kernels import native
from striate.kernels.conv import banded, table, winograd
from striate.kernels.conv.geometry import Geometry, crop
from striate.reference import conv as reference

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def geometry(size, kernel, stride=1, padding="valid", dilation=1) -> Geometry:
    n = len(size)
    stride, dilation = (v if isinstance(v, tuple) else (v,) * n for v in (stride, dilation))
    out, pads = conv_geometry(size, kernel, stride, padding, dilation)
    return Geometry(tuple(size), out, tuple(kernel), stride, dilation, pads)


def assert_definition(x, w, b, dy, y, dx, dw, db, args, rtol, atol, atol_dw=None):
    """y, dx, dw (and db, unless None) equal the definitions' for the resolved geometry args =
    (stride, pads, dilation, groups)."""
    np.testing.assert_allclose(y, reference.conv(x, w, b, *args), rtol=rtol, atol=atol)
    np.testing.assert_allclose(dx, reference.conv_dx(dy, w, x.shape, *args), rtol=rtol,
                               atol=atol)
    np.testing.assert_allclose(dw, reference.conv_dw(dy, x, w.shape, *args), rtol=rtol,
                               atol=atol if atol_dw is None else atol_dw)
    if db is not None:
        np.testing.assert_allclose(db, reference.conv_db(dy), rtol=rtol, atol=atol)


def run(algorithm, n, x, w, b, stride, padding, dilation, groups):
    """y, dx, dw, db of F.conv{n}d under `kernels.use(algorithm)`, and which algorithms ran."""
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    bt = Tensor(b, requires_grad=True)
    with kernels.use(algorithm), kernels.record() as ran:
        y = CONV[n](xt, wt, bt, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)
        dy = np.random.default_rng(0).standard_normal(y.shape)
        y.backward(dy)
    return y.data, dy, xt.grad, wt.grad, bt.grad, {a for family, a in ran if family == "conv"}


# Configurations each algorithm can compute: (n, batch, size, c_in, c_out, kernel, stride,
# padding, dilation, groups).
CASES = {
    "direct": [
        (2, 3, (12, 12), 1, 6, (5, 5), (1, 1), 2, (1, 1), 1),  # LeNet's C1
        (2, 2, (10, 10), 6, 16, (5, 5), (1, 1), "valid", (1, 1), 1),  # C3
        (2, 2, (9, 8), 3, 5, (3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2), 1),
        (2, 2, (7, 6), 4, 4, (3, 3), (2, 1), "same", (2, 1), 4),  # depthwise
    ],
    "im2col": [
        (1, 2, (11,), 3, 4, (3,), (2,), "same", (2,), 1),
        (2, 3, (9, 8), 4, 6, (3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2), 2),
        (2, 1, (7, 7), 1, 3, (1, 1), (2, 2), "valid", (1, 1), 1),  # pointwise, strided
        (3, 2, (4, 5, 4), 2, 3, (2, 3, 2), (1, 2, 1), 1, (1, 1, 2), 1),
        (2, 2, (6, 9), 2, 5, (5, 5), (1, 1), 2, (1, 1), 1),  # tap-major patches (LeNet-like)
    ],
    "banded": [
        (2, 3, (12, 12), 1, 6, (5, 5), (1, 1), 2, (1, 1), 1),  # LeNet's C1
        (2, 2, (10, 10), 6, 16, (5, 5), (1, 1), "valid", (1, 1), 1),  # C3
        (2, 2, (9, 7), 3, 4, (3, 2), (2, 3), ((1, 2), (2, 0)), (1, 2), 1),
        (3, 1, (3, 4, 5), 2, 3, (2, 2, 3), (1, 1, 2), "same", (1, 1, 1), 1),
    ],
    "dense": [
        (2, 3, (2, 2), 4, 5, (3, 3), (1, 1), 1, (1, 1), 1),  # ResNet's 3x3 on 2x2 maps
        (2, 2, (5, 5), 3, 4, (5, 5), (1, 1), "valid", (1, 1), 1),  # LeNet's C5
        (1, 2, (4,), 2, 3, (5,), (2,), "full", (1,), 1),
    ],
    "depthwise": [
        (2, 3, (7, 6), 4, 4, (3, 3), (1, 1), "same", (1, 1), 4),
        (2, 2, (7, 6), 3, 6, (3, 2), (1, 2), ((2, 0), (1, 1)), (1, 2), 3),  # multiplier 2
        (1, 2, (9,), 2, 2, (3,), (2,), 1, (1,), 2),
    ],
    "winograd": [
        (2, 2, (9, 7), 3, 4, (3, 3), (1, 1), "same", (1, 1), 1),
        (2, 1, (5, 6), 4, 3, (3, 3), (1, 1), "full", (1, 1), 1),
        (2, 3, (8, 8), 2, 5, (3, 3), (1, 1), "valid", (1, 1), 1),
        (2, 2, (7, 7), 4, 2, (3, 3), (1, 1), ((1, 2), (0, 1)), (1, 1), 1),
    ],
}


def _id(case) -> str:
    n, batch, size, c_in, c_out, kernel, stride, padding, dilation, groups = case
    return f"{n}d-{size}-{c_in}to{c_out}-k{kernel}-s{stride}-p{padding}-g{groups}".replace(" ", "")


# Every algorithm on each of its cases (direct only where the compiled kernels are built).
EACH_CASE = pytest.mark.parametrize("algorithm, case", [
    pytest.param(a, c, marks=pytest.mark.skipif(a == "direct" and not native.available,
                                                 reason=f"compiled kernels: {native.reason}"))
    for a, cases in CASES.items() for c in cases],
                                    ids=[f"{a}-{_id(c)}" for a, cases in CASES.items()
                                         for c in cases])


def _operands(case, dtype, rng):
    """x, w, b of a case."""
    n, batch, size, c_in, c_out, kernel, stride, padding, dilation, groups = case
    return (rng.standard_normal((batch, *size, c_in)).astype(dtype),
            rng.standard_normal((*kernel, c_in // groups, c_out)).astype(dtype),
            rng.standard_normal(c_out).astype(dtype))


@EACH_CASE
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_algorithm_computes_the_definition(algorithm, case, dtype, rng):
    """Forward, dx, dw and db of each algorithm equal the definitions, and that algorithm ran."""
    n, batch, size, c_in, c_out, kernel, stride, padding, dilation, groups = case
    x, w, b = _operands(case, dtype, rng)
    y, dy, dx, dw, db, ran = run(algorithm, n, x, w, b, stride, padding, dilation, groups)
    pads = geometry(size, kernel, stride, padding, dilation).pads
    args = (stride, pads, dilation, groups)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    assert_definition(x, w, b, dy, y, dx, dw, db, args, **tol)
    assert y.dtype == dx.dtype == dw.dtype == dtype
    assert algorithm in ran, f"{algorithm} did not run: {ran}"


@EACH_CASE
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_algorithm_with_a_relu_computes_the_definition(algorithm, case, dtype, rng):
    """relu(conv(x, w) + b) (`fused.conv_relu`, whose backward hands the ReLU's mask and db to
    the kernels): forward, dx, dw and db are the definitions' with dy masked where the sum is
    not positive, on each algorithm."""
    n, batch, size, c_in, c_out, kernel, stride, padding, dilation, groups = case
    x, w, b = _operands(case, dtype, rng)
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    with kernels.use(algorithm), kernels.record() as ran:
        y = fused.conv_relu(xt, wt, bt, stride, padding, dilation, groups)
        dy = rng.standard_normal(y.shape).astype(dtype)
        y.backward(dy)
    args = (stride, geometry(size, kernel, stride, padding, dilation).pads, dilation, groups)
    z = reference.conv(x, w, b, *args)
    assert (z > 0).any() and (z <= 0).any()
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(y.data, np.maximum(z, 0), **tol)
    g = dy * (z > 0)
    np.testing.assert_allclose(xt.grad, reference.conv_dx(g, w, x.shape, *args), **tol)
    np.testing.assert_allclose(wt.grad, reference.conv_dw(g, x, w.shape, *args), **tol)
    np.testing.assert_allclose(bt.grad, reference.conv_db(g), **tol)
    assert algorithm in {a for family, a in ran if family == "conv"}


@pytest.mark.parametrize("seed", range(12))
def test_random_configurations_on_every_algorithm(seed):
    """Random geometries (odd sizes, padding, stride, dilation, groups) on the table's choice
    and on each preferred algorithm: all equal the definition in float64."""
    gen = np.random.default_rng(seed)
    n = int(gen.choice([1, 2, 2, 3]))
    kernel = tuple(int(gen.integers(1, 4)) for _ in range(n))
    stride = tuple(int(gen.integers(1, 3)) for _ in range(n))
    dilation = tuple(int(gen.integers(1, 3)) for _ in range(n))
    size = tuple(d * (k - 1) + 1 + int(gen.integers(0, 5)) for k, d in
                 zip(kernel, dilation, strict=True))
    groups = int(gen.choice([1, 1, 2]))
    c_in, c_out = groups * int(gen.integers(1, 4)), groups * int(gen.integers(1, 4))
    padding = tuple((int(gen.integers(0, 3)), int(gen.integers(0, 3))) for _ in range(n))
    x = gen.standard_normal((int(gen.integers(1, 4)), *size, c_in))
    w = gen.standard_normal((*kernel, c_in // groups, c_out))
    b = gen.standard_normal(c_out)
    args = (stride, padding, dilation, groups)
    for algorithm in ("auto", *table.ALGORITHMS):
        y, dy, dx, dw, db, _ = run(algorithm, n, x, w, b, *args)
        assert_definition(x, w, b, dy, y, dx, dw, db, args, rtol=1e-10, atol=1e-10)


# ===== the dispatch table, pinned on named layers =============================================
DISPATCH = [
    # name, x shape, kernel shape, stride, padding, groups, algorithm
    ("lenet5 C1", (128, 28, 28, 1), (5, 5, 1, 6), 1, 2, 1, "direct"),
    ("lenet5 C3", (128, 14, 14, 6), (5, 5, 6, 16), 1, "valid", 1, "direct"),
    ("lenet5 C5", (128, 5, 5, 16), (5, 5, 16, 120), 1, "valid", 1, "dense"),
    ("resnet50 b1 stem", (1, 224, 224, 3), (7, 7, 3, 64), 2, 3, 1, "direct"),
    ("resnet50 b1 layer1 1x1", (1, 56, 56, 64), (1, 1, 64, 64), 1, "valid", 1, "im2col"),
    ("resnet50 b1 layer1 3x3", (1, 56, 56, 64), (3, 3, 64, 64), 1, 1, 1, "im2col"),
    ("resnet50 b1 layer2 3x3", (1, 28, 28, 128), (3, 3, 128, 128), 1, 1, 1, "im2col"),
    ("resnet50 b1 layer4 3x3", (1, 7, 7, 512), (3, 3, 512, 512), 1, 1, 1, "im2col"),
    ("resnet50 b16 stem", (16, 224, 224, 3), (7, 7, 3, 64), 2, 3, 1, "direct"),
    ("resnet50 b16 layer1 3x3", (16, 56, 56, 64), (3, 3, 64, 64), 1, 1, 1, "winograd"),
    ("resnet50 b16 layer2 3x3/2", (16, 56, 56, 128), (3, 3, 128, 128), 2, 1, 1, "im2col"),
    ("resnet50 b16 layer2 3x3", (16, 28, 28, 128), (3, 3, 128, 128), 1, 1, 1, "winograd"),
    ("resnet50 b16 layer3 3x3", (16, 14, 14, 256), (3, 3, 256, 256), 1, 1, 1, "winograd"),
    ("resnet50 b16 layer4 3x3", (16, 7, 7, 512), (3, 3, 512, 512), 1, 1, 1, "winograd"),
    ("resnet50 b4 layer3 3x3", (4, 14, 14, 256), (3, 3, 256, 256), 1, 1, 1, "im2col"),
    ("resnet50 b16 layer4 1x1", (16, 7, 7, 512), (1, 1, 512, 2048), 1, "valid", 1, "im2col"),
    ("resnet18 32x32 b64 layer3 3x3", (64, 2, 2, 256), (3, 3, 256, 256), 1, 1, 1, "dense"),
    ("resnet18 32x32 b64 layer4 3x3", (64, 1, 1, 512), (3, 3, 512, 512), 1, 1, 1, "dense"),
    ("mobilenet depthwise", (16, 56, 56, 144), (3, 3, 1, 144), 1, 1, 144, "direct"),
    ("mobilenet depthwise x2", (16, 56, 56, 32), (3, 3, 1, 64), 1, 1, 32, "depthwise"),
    ("a 3x3 on 16 channels", (16, 32, 32, 16), (3, 3, 16, 16), 1, 1, 1, "direct"),
    ("a 3x3 on 32 channels into 128", (16, 16, 16, 32), (3, 3, 32, 128), 1, 1, 1, "im2col"),
    ("a 3x3 on 64 channels", (16, 16, 16, 64), (3, 3, 64, 64), 1, 1, 1, "im2col"),
    ("resnet18 32x32 b64 layer1 3x3", (64, 8, 8, 64), (3, 3, 64, 64), 1, 1, 1, "im2col"),
]
# Without compiled kernels (kernels.use("numpy"), or a machine without a compiler).
NUMPY_DISPATCH = {"lenet5 C1": "banded", "lenet5 C3": "banded", "mobilenet depthwise": "depthwise",
                  "resnet50 b1 stem": "im2col", "resnet50 b16 stem": "im2col",
                  "a 3x3 on 16 channels": "im2col"}


@pytest.mark.parametrize("name, x_shape, w_shape, stride, padding, groups, algorithm", DISPATCH,
                         ids=[row[0] for row in DISPATCH])
def test_dispatch_table(name, x_shape, w_shape, stride, padding, groups, algorithm):
    args = dict(stride=stride, padding=padding, groups=groups)
    with kernels.use("numpy"):
        said = kernels.explain("conv2d", x_shape, w_shape, **args)
    assert said.split(":")[0] == NUMPY_DISPATCH.get(name, algorithm), said
    if native.available:
        with kernels.use("auto"):
            said = kernels.explain("conv2d", x_shape, w_shape, **args)
        assert said.split(":")[0] == algorithm, said


def test_explain_under_the_switch_and_its_errors():
    with kernels.use("reference"):
        assert kernels.explain("conv2d", (1, 8, 8, 3), (3, 3, 3, 4)).startswith("reference:")
    with kernels.use("im2col"):
        assert kernels.explain("conv2d", (128, 28, 28, 1), (5, 5, 1, 6)).startswith("im2col:")
    with pytest.raises(ValueError, match=r"kernels.explain: unknown op 'conv4d'"):
        kernels.explain("conv4d", (1, 8, 8, 3), (3, 3, 3, 4))
    with pytest.raises(ValueError, match=r"kernels.use: unknown kernels 'fast'; choose one of"):
        kernels.use("fast")


def test_use_is_scoped_and_nests():
    before = kernels.current()  # "auto", or what STRIATE_KERNELS says
    with kernels.use("reference"):
        with kernels.use("winograd"):
            assert kernels.current() == "winograd"
        assert kernels.current() == "reference"
    assert kernels.current() == before


# ===== the pieces of the algorithms ===========================================================
@pytest.mark.parametrize("kernel, stride, dilation, padding", [
    ((5, 5), (1, 1), (1, 1), 2),  # LeNet's C1
    ((3, 2), (2, 3), (1, 2), ((1, 2), (2, 0))),
    ((2, 3), (1, 2), (2, 1), "full"),
])
def test_band_kernel_rows_are_toeplitz_matrices(kernel, stride, dilation, padding, rng):
    """Each kernel row's band is the 1-D convolution's Toeplitz matrix along the last axis, and
    `band_weights` is its adjoint: <band(w), t> == <w, band_weights(t)>."""
    w = rng.standard_normal((*kernel, 3, 4))
    g = geometry((7, 9), kernel, stride, padding, dilation)
    band = banded.band_kernel(w, g)  # (kH, W_in*C_in, W_out*C_out)
    for r in range(kernel[0]):
        row = F.toeplitz(w[r], (9, 3), stride[1], (g.pads[1],), dilation[1])
        np.testing.assert_array_equal(band[r], row.T)
    t = rng.standard_normal(band.shape)
    np.testing.assert_allclose(np.sum(band * t), np.sum(w * banded.band_weights(t, g, w.shape)))


@pytest.mark.parametrize("size, kernel, stride, dilation, padding", [
    ((2, 2), (3, 3), (1, 1), (1, 1), 1),
    ((3, 2), (3, 2), (2, 1), (1, 2), ((1, 2), (2, 0))),
    ((4,), (5,), (2,), (1,), "full"),
])
def test_dense_kernel_is_the_toeplitz_matrix(size, kernel, stride, dilation, padding, rng):
    """Banded over every axis, the kernel is the convolution's whole matrix (`toeplitz`,
    transposed: rows are inputs), and `band_weights` is its adjoint."""
    n = len(size)
    w = rng.standard_normal((*kernel, 3, 4))
    g = geometry(size, kernel, stride, padding, dilation)
    whole = banded.band_kernel(w, g, n)
    np.testing.assert_array_equal(whole, F.toeplitz(w, (*size, 3), stride, g.pads, dilation).T)
    t = rng.standard_normal(whole.shape)
    np.testing.assert_allclose(np.sum(whole * t),
                               np.sum(w * banded.band_weights(t, g, w.shape, n)))


def test_winograd_kernel_transform_and_its_adjoint(rng):
    """U = G w G^T per channel pair, and dw = G^T dU G is its adjoint: <U(w), dU> = <w, dw>."""
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    w = rng.standard_normal((3, 3, 2, 5))
    u = winograd.kernel_transform(w)
    np.testing.assert_allclose(u, np.einsum("ai,ijco,bj->abco", g, w, g).reshape(16, 2, 5),
                               rtol=1e-13)
    du = rng.standard_normal(u.shape)
    assert np.isclose(np.sum(u * du), np.sum(w * winograd.weight_transform(du)), rtol=1e-12)


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, kept", [
    ((1, 1), (3, 3), 1, 1, 1, ((1, 2), (1, 2))),  # ResNet's last stage on 32x32: the centre
    ((2, 2), (3, 3), 2, 1, 1, ((1, 3), (1, 3))),  # 2x2 -> 1x1 at stride 2
    ((1, 5), (3, 3), 1, 1, 1, ((1, 2), (0, 3))),  # one axis cut, the other whole
    ((2, 2), (3, 3), 1, 2, 2, ((1, 2), (1, 2))),  # dilated: the outer taps jump the map
    ((3, 3), (3, 3), 1, 2, 2, None),  # dilated: every tap reaches
    ((1,), (5,), 1, ((3, 1),), 1, ((3, 4),)),  # asymmetric padding
    ((4, 4), (3, 3), 1, 1, 1, None),  # every tap reads the input
])
def test_crop_keeps_the_taps_that_read_the_input(size, kernel, stride, padding, dilation, kept):
    g = geometry(size, kernel, stride, padding, dilation)
    cut = crop(g)
    if kept is None:
        assert cut is None
        return
    gc, taps = cut
    assert [(sl.start, sl.stop) for sl in taps] == list(kept)
    assert gc.out_size == g.out_size and gc.kernel == tuple(b - a for a, b in kept)


def test_cropped_kernel_gets_zero_gradient_where_cut(rng):
    """Of a 3x3 kernel padded by 1 on a 1x1 map only the centre reads the input: the other
    taps' weights get zero gradient, as in the definition."""
    x, w = rng.standard_normal((3, 1, 1, 4)), Tensor(rng.standard_normal((3, 3, 4, 4)),
                                                     requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    expected = reference.conv_dw(np.ones((3, 1, 1, 4)), x, w.shape, (1, 1), ((1, 1), (1, 1)),
                                 (1, 1), 1)
    np.testing.assert_allclose(w.grad, expected, rtol=1e-12)
    assert np.all(w.grad[[0, 2]] == 0) and np.all(w.grad[:, [0, 2]] == 0)


@pytest.mark.parametrize("algorithm, shape, kernel", [
    ("im2col", (1, 150, 140, 8), (3, 3)),  # one sample's patches exceed a piece: row bands
    ("im2col", (6, 40, 33, 6), (5, 3)),  # few filters: the batch over the thread pool
    ("winograd", (1, 90, 70, 8), (3, 3)),  # one sample: its tile rows shared over threads
    ("winograd", (5, 30, 26, 8), (3, 3)),  # several samples per piece
])
def test_large_inputs_cut_into_pieces(algorithm, shape, kernel, rng):
    """Inputs large enough to be cut into pieces (bands of rows, shares of the batch) give the
    definition's values, forward and backward."""
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, shape[-1], 5)) / 10
    b = rng.standard_normal(5)
    y, dy, dx, dw, db, ran = run(algorithm, 2, x, w, b, (1, 1), "same", (1, 1), 1)
    pads = geometry(shape[1:3], kernel, 1, "same").pads
    args = ((1, 1), pads, (1, 1), 1)
    assert_definition(x, w, b, dy, y, dx, dw, db, args, rtol=1e-9, atol=1e-9, atol_dw=1e-7)
    assert algorithm in ran


@pytest.mark.skipif(not native.available, reason="compiled kernels: " + native.reason)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, padding", [((4, 27, 29, 128), 1), ((8, 28, 28, 128), "valid"),
                                            ((2, 30, 31, 256), ((2, 0), (1, 2)))])
def test_winograd_compiled_transforms_give_the_numpy_passes_bits(shape, padding, dtype, rng):
    """Winograd with its compiled tile transforms (where the compiled kernels run) and with
    its NumPy passes (kernels.use("numpy")): the same forward, dx and dw to the bit, on maps of
    odd sizes whose last tiles are cut by the edge."""
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((3, 3, shape[-1], 128)) / 30).astype(dtype)
    results, algorithms = [], []
    for mode in ("auto", "numpy"):
        xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
        with kernels.use(mode), kernels.record() as ran:
            y = F.conv2d(xt, wt, padding=padding)
            y.backward(np.cos(np.arange(y.data.size)).reshape(y.shape).astype(dtype))
        results.append((y.data, xt.grad, wt.grad))
        algorithms.append(ran)
    assert algorithms[0] == algorithms[1] and algorithms[0][0] == ("conv", "winograd"), algorithms
    for ours, numpy_passes in zip(*results, strict=True):
        np.testing.assert_array_equal(ours, numpy_passes)
