import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from striate import Tensor
from striate import functional as F
from tests.helpers import check_gradients, compare_with_torch
from tests.reference import oracle


def _ntuple(value, n):
    """An int or a tuple as n ints (the tests' own, not striate's)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n

OURS = {
    "max": {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d},
    "avg": {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d},
    "lp": {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d},
    "gaussian": {1: F.gaussian_pool1d, 2: F.gaussian_pool2d, 3: F.gaussian_pool3d},
    "adaptive_avg": {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d,
                     3: F.adaptive_avg_pool3d},
    "adaptive_max": {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d,
                     3: F.adaptive_max_pool3d},
}
TORCH = {
    "max": {1: tF.max_pool1d, 2: tF.max_pool2d, 3: tF.max_pool3d},
    "avg": {1: tF.avg_pool1d, 2: tF.avg_pool2d, 3: tF.avg_pool3d},
    "lp": {1: tF.lp_pool1d, 2: tF.lp_pool2d, 3: tF.lp_pool3d},
    "adaptive_avg": {1: tF.adaptive_avg_pool1d, 2: tF.adaptive_avg_pool2d,
                     3: tF.adaptive_avg_pool3d},
    "adaptive_max": {1: tF.adaptive_max_pool1d, 2: tF.adaptive_max_pool2d,
                     3: tF.adaptive_max_pool3d},
}


def channels_first(t: torch.Tensor) -> torch.Tensor:
    return t.movedim(-1, 1)


def channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.movedim(1, -1)


def torch_pads(pads) -> tuple[int, ...]:
    """((start, end) per spatial axis) -> F.pad's order: last axis first."""
    return tuple(p for pair in reversed(pads) for p in pair)


def distinct(rng, shape, dtype=np.float64) -> np.ndarray:
    """Values 0.1 apart in random order: no ties and no kink within a finite-difference step."""
    values = (rng.permutation(math.prod(shape)) - math.prod(shape) / 2) * 0.1
    return values.reshape(shape).astype(dtype)


# ===== configurations ==========================================================================
SPATIAL = {1: [(9,), (8,), (5,)], 2: [(7, 9), (6, 6), (5, 4)], 3: [(5, 6, 4), (4, 4, 5)]}
KERNELS = {1: [1, 2, 3, 4], 2: [2, 3, (2, 3), (3, 1)], 3: [2, 3, (2, 3, 1)]}
STRIDES = {1: [None, 1, 2, 3], 2: [None, 1, 2, (1, 2), 3], 3: [None, 1, 2, (2, 1, 3)]}
PADDINGS = {
    1: ["valid", "same", "full", 1, [(0, 2)]],
    2: ["valid", "same", "full", 1, ((1, 0), (0, 2))],
    3: ["valid", "same", 1, ((0, 1), (1, 1), (2, 0))],
}


def _valid(spatial, size, stride, padding) -> bool:
    """Whether our pooling accepts the configuration (every window holds an input element)."""
    n = len(spatial)
    size = _ntuple(size, n)
    stride = size if stride is None else _ntuple(stride, n)
    pads = oracle.resolve(padding, spatial, size, stride, (1,) * n)
    for i, k, s, (p0, p1) in zip(spatial, size, stride, pads, strict=True):
        if i + p0 + p1 < k or p0 >= k:
            return False
        o = (i + p0 + p1 - k) // s + 1
        if (o - 1) * s - p0 >= i:
            return False
    return True


def window_configs(step: int = 1) -> list[tuple]:
    """(dims, spatial, size, stride, padding), every `step`-th valid combination."""
    configs = []
    for n in (1, 2, 3):
        for combo in itertools.product(SPATIAL[n], KERNELS[n], STRIDES[n], PADDINGS[n]):
            if _valid(*combo):
                configs.append((n, *combo))
    return configs[::step]


CONFIGS = window_configs()
CONFIG_IDS = [f"{n}d-{sp}-k{k}-s{s}-p{p}" for n, sp, k, s, p in CONFIGS]


def test_configurations_cover_the_edges():
    assert len(CONFIGS) > 200
    paddings = {repr(p) for *_, p in CONFIGS}
    assert {"'same'", "'full'", "1"} <= paddings
    # overlapping, non-overlapping and gapped windows
    strides = {(k, s) for _, _, k, s, _ in CONFIGS if isinstance(k, int) and isinstance(s, int)}
    assert any(s < k for k, s in strides) and any(s > k for k, s in strides)
    assert any(s == k for k, s in strides)


def _resolved(n, spatial, size, stride, padding):
    size = _ntuple(size, n)
    stride = size if stride is None else _ntuple(stride, n)
    return size, stride, oracle.resolve(padding, spatial, size, stride, (1,) * n)


# ===== lecture worked numbers ==================================================================
def test_seed_003_max_pool_2x2_stride_2():
    # Single depth slice of seed 003 ("max pool with 2x2 filters and stride 2").
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float32)
    y = F.max_pool2d(x[None, :, :, None], 2, stride=2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data[0, :, :, 0], [[6, 8], [3, 4]])


def test_seed_003_tensorflow_same_max_pool():
    # tf.nn.max_pool(image, ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1], padding='SAME') on
    # [[4, 3], [2, 1]]: shape (1, 2, 2, 1) and the values unchanged (the zero padding of the
    # slide never wins: each window still holds its top-left input value, the largest).
    image = np.array([[[[4], [3]], [[2], [1]]]], dtype=np.float32)
    y = F.max_pool2d(image, 2, stride=1, padding="same")
    assert y.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(y.data[0, :, :, 0], [[4, 3], [2, 1]])


def test_same_max_pool_padding_never_wins():
    # Negative input: a padding of zeros would win; -inf padding does not.
    image = -np.array([[[[4], [3]], [[2], [1]]]], dtype=np.float64)
    y = F.max_pool2d(image, 2, stride=1, padding="same")
    np.testing.assert_array_equal(y.data[0, :, :, 0], [[-1, -1], [-1, -1]])


# Seed 000 shows max and average pooling only as a picture (no numbers to check).


# ===== max pooling against PyTorch =============================================================
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n,spatial,size,stride,padding", CONFIGS, ids=CONFIG_IDS)
def test_max_pool_matches_torch(n, spatial, size, stride, padding, dtype, rng):
    x = rng.standard_normal((2, *spatial, 3)).astype(dtype)
    _compare_max_pool(n, x, size, stride, padding, rng)


def _compare_max_pool(n, x, size, stride, padding, rng):
    k, s, pads = _resolved(n, x.shape[1:-1], size, stride, padding)
    compare_with_torch(
        lambda x: OURS["max"][n](x, size, stride, padding),
        # Padding of any size or shape, as -inf: torch's own padding stops at size/2.
        lambda x: channels_last(TORCH["max"][n](
            tF.pad(channels_first(x), torch_pads(pads), value=-math.inf), k, s)),
        [x], rng,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n,spatial,size,stride,padding", CONFIGS, ids=CONFIG_IDS)
def test_avg_pool_matches_torch(n, spatial, size, stride, padding, dtype, rng):
    x = rng.standard_normal((2, *spatial, 3)).astype(dtype)
    k, s, pads = _resolved(n, spatial, size, stride, padding)
    avg = TORCH["avg"][n]

    def excluded(x):
        # mean over the input elements only: sum / count, each an average of the padded input
        x = channels_first(x)
        ones = torch.ones_like(x)
        p = torch_pads(pads)
        return channels_last(avg(tF.pad(x, p), k, s) / avg(tF.pad(ones, p), k, s))

    compare_with_torch(lambda x: OURS["avg"][n](x, size, stride, padding), excluded, [x], rng)
    compare_with_torch(
        lambda x: OURS["avg"][n](x, size, stride, padding, count_include_pad=True),
        lambda x: channels_last(avg(tF.pad(channels_first(x), torch_pads(pads)), k, s)),
        [x], rng,
    )


NATIVE = [  # (dims, spatial, size, stride, padding) within torch's limit pad <= size / 2
    (1, (9,), 3, 2, 1), (1, (6,), 2, 1, 1), (1, (7,), 5, 2, 2),
    (2, (7, 9), 3, 2, 1), (2, (6, 5), (3, 2), (2, 1), (1, 1)), (2, (8, 8), 4, 4, 2),
    (2, (5, 7), (5, 3), 1, (2, 0)),
    (3, (5, 6, 4), 3, 2, 1), (3, (4, 5, 6), (2, 3, 2), (1, 2, 2), (1, 0, 1)),
]


@pytest.mark.parametrize("count_include_pad", [False, True], ids=["exclude", "include"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n,spatial,size,stride,padding", NATIVE, ids=str)
def test_padded_pools_match_torch_padding(n, spatial, size, stride, padding, dtype,
                                          count_include_pad, rng):
    x = rng.standard_normal((2, *spatial, 4)).astype(dtype)
    compare_with_torch(
        lambda x: OURS["max"][n](x, size, stride, padding),
        lambda x: channels_last(TORCH["max"][n](channels_first(x), size, stride, padding)),
        [x], rng,
    )
    compare_with_torch(
        lambda x: OURS["avg"][n](x, size, stride, padding, count_include_pad=count_include_pad),
        lambda x: channels_last(TORCH["avg"][n](channels_first(x), size, stride, padding,
                                                count_include_pad=count_include_pad)),
        [x], rng,
    )


@pytest.mark.parametrize("n,spatial,size,stride,padding", NATIVE, ids=str)
def test_max_pool_ties_go_to_the_first_like_torch(n, spatial, size, stride, padding, rng):
    x = rng.integers(0, 3, (2, *spatial, 3)).astype(np.float64)  # many ties
    compare_with_torch(
        lambda x: OURS["max"][n](x, size, stride, padding),
        lambda x: channels_last(TORCH["max"][n](channels_first(x), size, stride, padding)),
        [x], rng,
    )
    # channels-first memory takes torch's other kernel; same winners
    compare_with_torch(
        lambda x: OURS["max"][n](x, size, stride, padding),
        lambda x: channels_last(
            TORCH["max"][n](channels_first(x).contiguous(), size, stride, padding)),
        [x], rng,
    )


def test_max_pool_windows_of_minus_infinity_route_to_their_first_input_like_torch(rng):
    x = rng.standard_normal((1, 7, 7, 2))
    x[0, :3, :3] = -np.inf  # the first windows hold padding and -inf only
    x[0, 5:, 4:] = -np.inf
    compare_with_torch(
        lambda x: F.max_pool2d(x, 3, 2, 1),
        lambda x: channels_last(tF.max_pool2d(channels_first(x), 3, 2, 1)),
        [x], rng,
    )


PARALLEL = {
    "max": (lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: tF.max_pool2d(x, 3, 2, 1)),
    "avg": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=True),
            lambda x: tF.avg_pool2d(x, 3, 2, 1)),
    "lp": (lambda x: F.lp_pool2d(x, 2, 3, 2, 1),
           lambda x: tF.lp_pool2d(tF.pad(x, (1, 1, 1, 1)), 2, 3, 2)),
}


@pytest.mark.parametrize("op", PARALLEL)
def test_parallel_batch_split_matches_torch(op, rng):
    # Large enough that the batch is split over the thread pool.
    x = rng.standard_normal((5, 48, 40, 64)).astype(np.float32)
    ours, theirs = PARALLEL[op]
    compare_with_torch(ours, lambda x: channels_last(theirs(channels_first(x))), [x], rng)


# ===== L_p pooling =============================================================================
LP_CONFIGS = window_configs(step=4)


@pytest.mark.parametrize("p", [2, 1, 3, 1.5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n,spatial,size,stride,padding", LP_CONFIGS,
                         ids=[f"{n}d-{sp}-k{k}-s{s}-p{pd}" for n, sp, k, s, pd in LP_CONFIGS])
def test_lp_pool_matches_torch(n, spatial, size, stride, padding, p, dtype, rng):
    # PyTorch sums x^p without |.|: the same for p = 2, and for positive input otherwise.
    x = rng.standard_normal((2, *spatial, 3))
    x = (x if p == 2 else np.abs(x) + 0.1).astype(dtype)
    k, s, pads = _resolved(n, spatial, size, stride, padding)
    if n == 1:  # torch's lp_pool1d takes ints only
        k, s = k[0], s[0]
    compare_with_torch(
        lambda x: OURS["lp"][n](x, p, size, stride, padding),
        lambda x: channels_last(TORCH["lp"][n](tF.pad(channels_first(x), torch_pads(pads)),
                                               p, k, s)),
        [x], rng,
    )


def test_lp_pool_uses_the_absolute_value(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    y = F.lp_pool2d(x, 3, 2)
    windows = np.abs(x).reshape(2, 3, 2, 3, 2, 3)
    np.testing.assert_allclose(y.data, (windows**3).sum(axis=(2, 4)) ** (1 / 3), rtol=1e-12)
    np.testing.assert_allclose(F.lp_pool2d(x, 1, 2).data, np.abs(x).reshape(
        2, 3, 2, 3, 2, 3).sum(axis=(2, 4)), rtol=1e-12)


def test_lp_pool_zero_window_has_zero_gradient():
    x = np.zeros((1, 4, 4, 2))
    x[0, 2:, 2:] = 1.0
    for p in (1, 2, 3):
        t = Tensor(x, requires_grad=True)
        F.lp_pool2d(t, p, 2).sum().backward()
        assert np.all(np.isfinite(t.grad))
        np.testing.assert_array_equal(t.grad[0, :2], 0)


# ===== Gaussian pooling ========================================================================
def naive_gaussian_pool(x, size, stride, pads, sigma):
    """Loop reference: weights exp(-d^2 / 2 sigma^2) of each input element in the window,
    divided by the sum of those weights."""
    spatial = x.shape[1:-1]
    out = [(i + p0 + p1 - k) // s + 1 for i, k, s, (p0, p1) in zip(spatial, size, stride, pads,
                                                                       strict=True)]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for index in np.ndindex(*out):
        num, den = 0.0, 0.0
        for offset in np.ndindex(*size):
            position = [i * s + u - p0 for i, s, u, (p0, _) in zip(index, stride, offset, pads,
                                                                    strict=True)]
            if all(0 <= q < n for q, n in zip(position, spatial, strict=True)):
                d2 = sum((u - (k - 1) / 2) ** 2 for u, k in zip(offset, size, strict=True))
                w = math.exp(-d2 / (2 * sigma**2))
                num = num + w * x[(slice(None), *position)]
                den += w
        y[(slice(None), *index)] = num / den
    return y


GAUSS_CONFIGS = window_configs(step=5)


@pytest.mark.parametrize("sigma", [1.0, 0.5, 3.0])
@pytest.mark.parametrize("n,spatial,size,stride,padding", GAUSS_CONFIGS,
                         ids=[f"{n}d-{sp}-k{k}-s{s}-p{p}" for n, sp, k, s, p in GAUSS_CONFIGS])
def test_gaussian_pool_matches_naive_loop(n, spatial, size, stride, padding, sigma, rng):
    x = rng.standard_normal((2, *spatial, 3))
    k, s, pads = _resolved(n, spatial, size, stride, padding)
    y = OURS["gaussian"][n](x, size, stride, padding, sigma=sigma)
    np.testing.assert_allclose(y.data, naive_gaussian_pool(x, k, s, pads, sigma), rtol=1e-12,
                               atol=1e-13)
    y32 = OURS["gaussian"][n](x.astype(np.float32), size, stride, padding, sigma=sigma)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.data, y.data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n,spatial,size,stride,padding", GAUSS_CONFIGS,
                         ids=[f"{n}d-{sp}-k{k}-s{s}-p{p}" for n, sp, k, s, p in GAUSS_CONFIGS])
def test_gaussian_pool_with_huge_sigma_is_avg_pool(n, spatial, size, stride, padding, rng):
    x = rng.standard_normal((2, *spatial, 3))
    dy = rng.standard_normal(OURS["avg"][n](x, size, stride, padding).shape)
    grads = []
    for pooled in (lambda t: OURS["gaussian"][n](t, size, stride, padding, sigma=1e8),
                   lambda t: OURS["avg"][n](t, size, stride, padding)):
        t = Tensor(x, requires_grad=True)
        y = pooled(t)
        y.backward(dy)
        grads.append((y.data, t.grad))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-12)
    y_inf = OURS["gaussian"][n](x, size, stride, padding, sigma=math.inf)
    np.testing.assert_allclose(y_inf.data, grads[1][0], rtol=1e-12, atol=1e-13)


def test_gaussian_pool_weights_favour_the_centre():
    # A one-hot 3x3 window: the centre weighs most, the corners least.
    weights = np.zeros((3, 3))
    for u, v in np.ndindex(3, 3):
        x = np.zeros((1, 3, 3, 1))
        x[0, u, v] = 1.0
        weights[u, v] = F.gaussian_pool2d(x, 3, sigma=1.0).item()
    expected = np.exp(-((np.arange(3)[:, None] - 1) ** 2 + (np.arange(3) - 1) ** 2) / 2)
    np.testing.assert_allclose(weights, expected / expected.sum(), rtol=1e-12)
    assert weights.sum() == pytest.approx(1.0)


# ===== adaptive pooling ========================================================================
ADAPTIVE = [  # (dims, input spatial, output_size)
    (1, (10,), 4), (1, (7,), 3), (1, (5,), 5), (1, (4,), 7), (1, (9,), 1), (1, (12,), 4),
    (2, (13, 9), (6, 4)), (2, (8, 8), 4), (2, (7, 5), (3, None)), (2, (5, 5), (7, 3)),
    (2, (6, 7), 1), (2, (3, 10), (2, 10)),
    (3, (5, 7, 6), (2, 3, 4)), (3, (4, 4, 4), 2), (3, (3, 5, 4), (4, None, 2)),
]


def _torch_output_size(output_size, spatial):
    if isinstance(output_size, int):
        return output_size
    return tuple(i if o is None else o for o, i in zip(output_size, spatial, strict=True))


@pytest.mark.parametrize("kind", ["adaptive_avg", "adaptive_max"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n,spatial,output_size", ADAPTIVE, ids=str)
def test_adaptive_pools_match_torch(n, spatial, output_size, kind, dtype, rng):
    x = rng.standard_normal((2, *spatial, 3)).astype(dtype)
    size = _torch_output_size(output_size, spatial)
    reference = TORCH[kind][n]
    compare_with_torch(
        lambda x: OURS[kind][n](x, output_size),
        lambda x: channels_last(reference(channels_first(x), size)),
        [x], rng,
    )


@pytest.mark.parametrize("n,spatial,output_size", ADAPTIVE, ids=str)
def test_adaptive_max_ties_go_to_the_first_like_torch(n, spatial, output_size, rng):
    x = rng.integers(0, 2, (2, *spatial, 3)).astype(np.float64)
    size = _torch_output_size(output_size, spatial)
    compare_with_torch(
        lambda x: OURS["adaptive_max"][n](x, output_size),
        lambda x: channels_last(TORCH["adaptive_max"][n](channels_first(x).contiguous(), size)),
        [x], rng,
    )


def test_adaptive_avg_to_one_is_global_avg(rng):
    x = rng.standard_normal((3, 5, 7, 4))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 1).data[:, 0, 0],
                               F.global_avg_pool(x).data, rtol=1e-12)


# ===== global pooling and maxout ===============================================================
@pytest.mark.parametrize("shape", [(2, 7, 3), (3, 5, 6, 4), (1, 3, 4, 2, 5), (2, 1, 1, 8)],
                         ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_global_pools_match_numpy(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    axes = tuple(range(1, len(shape) - 1))
    mean, top = F.global_avg_pool(x), F.global_max_pool(x)
    assert mean.shape == top.shape == (shape[0], shape[-1])
    assert mean.dtype == top.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(mean.data, x.mean(axis=axes), rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(top.data, x.max(axis=axes))


@pytest.mark.parametrize("shape", [(2, 7, 3), (3, 5, 6, 4), (1, 3, 4, 2, 5)], ids=str)
def test_global_pools_match_torch(shape, rng):
    x = distinct(rng, shape)
    axes = tuple(range(1, len(shape) - 1))
    compare_with_torch(F.global_avg_pool, lambda x: x.mean(dim=axes), [x], rng)
    compare_with_torch(F.global_max_pool, lambda x: x.amax(dim=axes), [x], rng)


def test_global_max_pool_gradient_goes_to_the_first_maximum():
    x = Tensor(np.zeros((1, 2, 3, 2)), requires_grad=True)
    F.global_max_pool(x).backward(np.array([[1.0, 2.0]]))
    expected = np.zeros((1, 2, 3, 2))
    expected[0, 0, 0] = [1.0, 2.0]
    np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("shape,pieces", [((2, 6), 3), ((2, 4, 4, 8), 2), ((1, 3, 5), 5),
                                          ((2, 3, 3, 2, 6), 6), ((4, 5), 1)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_maxout_matches_torch(shape, pieces, dtype, rng):
    x = distinct(rng, shape, dtype)
    compare_with_torch(
        lambda x: F.maxout(x, pieces),
        lambda x: x.reshape(*x.shape[:-1], x.shape[-1] // pieces, pieces).amax(dim=-1),
        [x], rng,
    )


def test_maxout_groups_consecutive_channels():
    x = np.array([[1.0, 5.0, 2.0, 0.0, 3.0, 4.0]])
    np.testing.assert_array_equal(F.maxout(x, 2).data, [[5.0, 2.0, 4.0]])
    np.testing.assert_array_equal(F.maxout(x, 3).data, [[5.0, 4.0]])


# ===== numerical gradients =====================================================================
GRAD_CONFIGS = window_configs(step=7)


@pytest.mark.parametrize("n,spatial,size,stride,padding", GRAD_CONFIGS,
                         ids=[f"{n}d-{sp}-k{k}-s{s}-p{p}" for n, sp, k, s, p in GRAD_CONFIGS])
def test_window_pools_gradients(n, spatial, size, stride, padding, rng):
    x = distinct(rng, (1, *spatial, 2))
    away_from_zero = np.sign(x) * (np.abs(x) + 0.5)
    check_gradients(lambda x: OURS["max"][n](x, size, stride, padding), [x], rng)
    check_gradients(lambda x: OURS["avg"][n](x, size, stride, padding), [x], rng)
    check_gradients(lambda x: OURS["avg"][n](x, size, stride, padding, True), [x], rng)
    check_gradients(lambda x: OURS["gaussian"][n](x, size, stride, padding, sigma=0.7),
                    [x], rng)
    for p in (2, 1, 3.5):
        check_gradients(lambda x, p=p: OURS["lp"][n](x, p, size, stride, padding),
                        [away_from_zero], rng)


@pytest.mark.parametrize("n,spatial,output_size", ADAPTIVE, ids=str)
def test_adaptive_pools_gradients(n, spatial, output_size, rng):
    x = distinct(rng, (1, *spatial, 2))
    check_gradients(lambda x: OURS["adaptive_avg"][n](x, output_size), [x], rng)
    check_gradients(lambda x: OURS["adaptive_max"][n](x, output_size), [x], rng)


def test_global_pools_and_maxout_gradients(rng):
    x = distinct(rng, (2, 3, 4, 6))
    check_gradients(F.global_avg_pool, [x], rng)
    check_gradients(F.global_max_pool, [x], rng)
    check_gradients(lambda x: F.maxout(x, 3), [x], rng)


# ===== edges ===================================================================================
def test_non_contiguous_input(rng):
    base = rng.standard_normal((2, 12, 3, 10))
    x = base.transpose(0, 3, 1, 2)[:, ::2]  # (2, 5, 12, 3), strided in every axis
    assert not x.flags.c_contiguous
    compare_with_torch(
        lambda x: F.max_pool2d(x, 3, 2, "same"),
        lambda x: channels_last(tF.max_pool2d(tF.pad(channels_first(x), (0, 1, 1, 1),
                                                     value=-math.inf), 3, 2)),
        [x], rng,
    )
    np.testing.assert_allclose(F.avg_pool2d(x, 2).data,
                               F.avg_pool2d(np.ascontiguousarray(x), 2).data, rtol=1e-15)
    np.testing.assert_allclose(F.adaptive_max_pool2d(x, (2, 5)).data,
                               F.adaptive_max_pool2d(np.ascontiguousarray(x), (2, 5)).data)


@pytest.mark.parametrize("channels", [1, 6, 16, 64])
def test_lenet_sized_max_pool_matches_torch(channels, rng):
    x = rng.integers(0, 4, (4, 14, 14, channels)).astype(np.float32)  # ties on every scale
    compare_with_torch(lambda x: F.max_pool2d(x, 2),
                       lambda x: channels_last(tF.max_pool2d(channels_first(x), 2)), [x], rng)
    compare_with_torch(lambda x: F.avg_pool2d(x, 2),
                       lambda x: channels_last(tF.avg_pool2d(channels_first(x), 2)), [x], rng)


def test_integer_input_becomes_float32():
    x = np.arange(16).reshape(1, 4, 4, 1)
    for y in (F.max_pool2d(x, 2), F.avg_pool2d(x, 2), F.lp_pool2d(x, 2, 2),
              F.gaussian_pool2d(x, 2), F.adaptive_avg_pool2d(x, 3), F.global_max_pool(x)):
        assert y.dtype == np.float32


@pytest.mark.parametrize("pool_fn", [
    lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: F.avg_pool2d(x, 3, 2, "same"),
    lambda x: F.lp_pool2d(x, 2, 2), lambda x: F.gaussian_pool2d(x, 3, 1, "same"),
    lambda x: F.adaptive_avg_pool2d(x, (3, 4)), lambda x: F.adaptive_max_pool2d(x, 3),
    F.global_avg_pool, F.global_max_pool, lambda x: F.maxout(x, 2),
], ids=["max", "avg", "lp", "gaussian", "adaptive_avg", "adaptive_max", "global_avg",
        "global_max", "maxout"])
def test_float32_stays_float32_through_backward(pool_fn, rng):
    x = Tensor(rng.standard_normal((2, 7, 6, 4)).astype(np.float32), requires_grad=True)
    y = pool_fn(x)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert x.grad.dtype == np.float32


def test_no_grad_inference_skips_the_winner_index(rng):
    from striate import no_grad

    x = rng.standard_normal((2, 6, 6, 3))
    with no_grad():
        y = F.max_pool2d(Tensor(x, requires_grad=True), 3, 2)
    np.testing.assert_array_equal(y.data, F.max_pool2d(x, 3, 2).data)
    assert not y.requires_grad


def test_max_pooling_is_invariant_to_small_translations(rng):
    # Seed 002, Fig. 9.8: max pooling (width 3, stride 1) of detector outputs shifted right by
    # one pixel: every detector value changes, but only about half of the pooled values do.
    detector = rng.standard_normal(202)
    shifted = np.roll(detector, 1)
    pooled = F.max_pool1d(detector[None, :, None], 3, 1).data[0, :, 0]
    pooled_shifted = F.max_pool1d(shifted[None, :, None], 3, 1).data[0, :, 0]
    raw_changed = np.mean(detector[1:] != shifted[1:])
    pooled_changed = np.mean(pooled[1:] != pooled_shifted[1:])
    assert raw_changed == 1.0
    assert pooled_changed < 0.7
    assert pooled_changed < raw_changed


# ===== errors ==================================================================================
def test_window_larger_than_the_input_is_explained():
    x = np.zeros((1, 2, 5, 1))
    with pytest.raises(ValueError, match=r"^max_pool2d: size \(3, 3\) with stride \(2, 2\) "
                                         r"gives H_out=0 for H=2; pad the input or use a "
                                         r"smaller window$"):
        F.max_pool2d(x, 3, stride=2)
    with pytest.raises(ValueError, match=r"avg_pool1d: size 4 with stride 4 gives L_out=0 for "
                                         r"L=2 padded by \(0, 1\)"):
        F.avg_pool1d(np.zeros((1, 2, 1)), 4, padding=[(0, 1)])
    with pytest.raises(ValueError, match=r"max_pool3d: .* gives D_out=0 for D=1"):
        F.max_pool3d(np.zeros((1, 1, 4, 4, 1)), 2)


def test_padding_that_leaves_windows_of_padding_alone_is_an_error():
    with pytest.raises(ValueError, match=r"max_pool2d: padding 3 leaves windows along H that "
                                         r"hold only padding \(size \(3, 3\), H=5\)"):
        F.max_pool2d(np.zeros((1, 5, 5, 1)), 3, padding=3)
    with pytest.raises(ValueError, match=r"avg_pool1d: padding \[\(0, 4\)\] leaves windows "
                                         r"along L"):
        F.avg_pool1d(np.zeros((1, 4, 1)), 2, padding=[(0, 4)])


@pytest.mark.parametrize("fn,message", [
    (lambda: F.max_pool2d(np.zeros((4, 4, 3)), 2),
     r"max_pool2d: expected a 4-D input \(N, H, W, C\), got shape \(4, 4, 3\)"),
    (lambda: F.avg_pool1d(np.zeros((1, 4, 4, 1)), 2),
     r"avg_pool1d: expected a 3-D input \(N, L, C\), got shape \(1, 4, 4, 1\)"),
    (lambda: F.max_pool3d(np.zeros((1, 4, 4, 1)), 2),
     r"max_pool3d: expected a 5-D input \(N, D, H, W, C\)"),
    (lambda: F.max_pool2d(np.zeros((1, 4, 4, 1)), 0), r"max_pool2d: size must be >= 1, got 0"),
    (lambda: F.max_pool2d(np.zeros((1, 4, 4, 1)), (2, -1)),
     r"max_pool2d: size must be >= 1, got \(2, -1\)"),
    (lambda: F.avg_pool2d(np.zeros((1, 4, 4, 1)), 2, stride=0),
     r"avg_pool2d: stride must be >= 1, got 0"),
    (lambda: F.max_pool2d(np.zeros((1, 4, 4, 1)), (2, 2, 2)),
     r"max_pool2d: size must be an int or 2 ints, got \(2, 2, 2\)"),
    (lambda: F.max_pool2d(np.zeros((1, 4, 4, 1)), 2, padding="sideways"),
     r"max_pool2d: unknown padding 'sideways'"),
    (lambda: F.avg_pool2d(np.zeros((1, 4, 4, 1)), 2, padding=-1),
     r"avg_pool2d: padding must be >= 0, got -1"),
    (lambda: F.lp_pool2d(np.zeros((1, 4, 4, 1)), 2, 2, padding=(1, 1, 1)),
     r"lp_pool2d: padding \(1, 1, 1\) has 3 entries for 2 spatial dimensions"),
    (lambda: F.lp_pool2d(np.zeros((1, 4, 4, 1)), 0.5, 2), r"lp_pool2d: p must be >= 1, got 0.5"),
    (lambda: F.lp_pool1d(np.zeros((1, 4, 1)), math.inf, 2), r"lp_pool1d: p must be finite"),
    (lambda: F.gaussian_pool2d(np.zeros((1, 4, 4, 1)), 2, sigma=0),
     r"gaussian_pool2d: sigma must be > 0, got 0.0"),
    (lambda: F.gaussian_pool2d(np.zeros((1, 4, 4, 1)), 2, sigma=math.nan),
     r"gaussian_pool2d: sigma must be > 0, got nan"),
    (lambda: F.adaptive_avg_pool2d(np.zeros((1, 4, 4, 1)), 0),
     r"adaptive_avg_pool2d: output_size must be >= 1, got 0"),
    (lambda: F.adaptive_max_pool2d(np.zeros((1, 4, 4, 1)), (2, 2, 2)),
     r"adaptive_max_pool2d: output_size must be an int or 2 ints, got \(2, 2, 2\)"),
    (lambda: F.adaptive_avg_pool2d(np.zeros((1, 0, 4, 1)), 2),
     r"adaptive_avg_pool2d: input shape \(1, 0, 4, 1\) has an empty spatial axis"),
    (lambda: F.adaptive_max_pool1d(np.zeros((1, 4, 4, 1)), 2),
     r"adaptive_max_pool1d: expected a 3-D input \(N, L, C\)"),
    (lambda: F.global_avg_pool(np.zeros((4, 3))),
     r"global_avg_pool: expected an input \(N, \*spatial, C\) with at least one spatial axis, "
     r"got shape \(4, 3\)"),
    (lambda: F.global_max_pool(np.zeros((4, 3))), r"global_max_pool: expected an input"),
    (lambda: F.maxout(np.zeros((2, 5, 5, 7)), 2),
     r"maxout: the 7 channels of input shape \(2, 5, 5, 7\) do not split into groups of "
     r"pieces=2; use a divisor of the channel count"),
    (lambda: F.maxout(np.zeros((2, 6)), 0), r"maxout: pieces must be >= 1, got 0"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_value_errors(fn, message):
    with pytest.raises(ValueError, match=message):
        fn()


@pytest.mark.parametrize("fn,message", [
    (lambda: F.avg_pool2d(np.zeros((1, 4, 4, 1)), 2, count_include_pad=1),
     r"avg_pool2d: count_include_pad must be True or False, got 1"),
    (lambda: F.lp_pool2d(np.zeros((1, 4, 4, 1)), "2", 2),
     r"lp_pool2d: p must be a real number, got '2'"),
    (lambda: F.gaussian_pool1d(np.zeros((1, 4, 1)), 2, sigma=None),
     r"gaussian_pool1d: sigma must be a real number, got None"),
    (lambda: F.max_pool2d(np.zeros((1, 4, 4, 1)), None),
     r"max_pool2d: size must be an int or 2 ints, got None"),
])
def test_type_errors(fn, message):
    with pytest.raises(TypeError, match=message):
        fn()
