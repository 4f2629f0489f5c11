"""The pooling kernels (`striate.kernels.pool`) against the definitions (`striate.reference.pool`),
no PyTorch: every pooling op on random windows, forward and backward, with the kernels and
under `kernels.use("reference")`, and inputs large enough to be cut into blocks of samples."""

import numpy as np
import pytest

from striate import Tensor, kernels
from striate import functional as F
from striate.kernels import native
from striate.reference import pool as reference

OPS = {
    "max": lambda x, k, s, p: F.max_pool2d(x, k, s, p),
    "avg": lambda x, k, s, p: F.avg_pool2d(x, k, s, p),
    "avg_pad": lambda x, k, s, p: F.avg_pool2d(x, k, s, p, count_include_pad=True),
    "lp": lambda x, k, s, p: F.lp_pool2d(x, 2, k, s, p),
    "gaussian": lambda x, k, s, p: F.gaussian_pool2d(x, k, s, p, sigma=0.8),
}


def _run(fn, x, dy=None):
    xt = Tensor(x, requires_grad=True)
    y = fn(xt)
    dy = np.random.default_rng(1).standard_normal(y.shape) if dy is None else dy
    y.backward(dy)
    return y.data, xt.grad, dy


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("seed", range(4))
def test_kernels_equal_the_definitions(op, seed):
    """Random windows, strides and padding: forward and dx of the kernels equal the
    definitions' (float64; ties are unlikely in random data)."""
    gen = np.random.default_rng(seed)
    k = tuple(int(gen.integers(1, 4)) for _ in range(2))
    s = tuple(int(gen.integers(1, 3)) for _ in range(2))
    p = tuple((int(gen.integers(0, k[i])), int(gen.integers(0, k[i]))) for i in range(2))
    x = gen.standard_normal((int(gen.integers(1, 4)), 7, 6, int(gen.integers(1, 5))))
    with kernels.use("reference"), kernels.record() as ran:
        y_ref, dx_ref, dy = _run(lambda t: OPS[op](t, k, s, p), x)
    assert ran and all(a == "reference" for f, a in ran if f == "pool")
    compiled = native.available and op in ("max", "avg", "avg_pad")
    for path, algorithm in (("auto", "direct" if compiled else "windows"),
                            ("numpy", "windows")):
        with kernels.use(path), kernels.record() as ran:
            y, dx, _ = _run(lambda t: OPS[op](t, k, s, p), x, dy)
        assert ("pool", algorithm) in ran, (path, ran)
        np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)


def test_max_pool_matches_its_definition_directly(rng):
    x = rng.standard_normal((3, 9, 8, 5))
    y, dx, dy = _run(lambda t: F.max_pool2d(t, 3, 2, 1), x)
    pads = ((1, 1), (1, 1))
    np.testing.assert_array_equal(y, reference.max_pool(x, (3, 3), (2, 2), pads))
    # overlapping windows add their shares in another order: equal to rounding
    np.testing.assert_allclose(dx, reference.max_pool_dx(dy, x, (3, 3), (2, 2), pads),
                               rtol=1e-6, atol=1e-6)


def test_ties_go_to_the_first_maximum(rng):
    """Integer data, many ties: the kernels route dy to the first maximum in window order, as
    the definition says."""
    x = rng.integers(0, 3, (2, 8, 8, 3)).astype(np.float64)
    y, dx, dy = _run(lambda t: F.max_pool2d(t, 3, 1, 1), x)
    pads = ((1, 1), (1, 1))
    np.testing.assert_allclose(dx, reference.max_pool_dx(dy, x, (3, 3), (1, 1), pads),
                               rtol=1e-12, atol=1e-14)


def test_max_pool_in_blocks_of_samples(rng):
    """A batch over several blocks of `kernels.pool.BLOCK_BYTES` (each block through every
    one-axis step before the next): the definition's values and gradient."""
    from striate.kernels.pool import BLOCK_BYTES

    x = rng.standard_normal((48, 40, 40, 64)).astype(np.float32)
    assert x.nbytes > 2 * BLOCK_BYTES
    y, dx, dy = _run(lambda t: F.max_pool2d(t, 3, 2, 1), x)
    pads = ((1, 1), (1, 1))
    np.testing.assert_array_equal(y, reference.max_pool(x, (3, 3), (2, 2), pads))
    # overlapping windows add their shares in another order: equal to rounding
    np.testing.assert_allclose(dx, reference.max_pool_dx(dy, x, (3, 3), (2, 2), pads),
                               rtol=1e-6, atol=1e-6)


def test_adaptive_and_global_pooling_under_both(rng):
    x = rng.standard_normal((2, 7, 5, 3))
    for fn in (lambda t: F.adaptive_avg_pool2d(t, (3, 2)), lambda t: F.adaptive_max_pool2d(t, 3),
               F.global_max_pool, lambda t: F.maxout(t, 3)):
        y, dx, dy = _run(fn, x)
        with kernels.use("reference"):
            y_ref, dx_ref, _ = _run(fn, x, dy)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12)
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-15)
