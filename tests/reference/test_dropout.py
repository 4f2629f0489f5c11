"""striate.reference.dropout: the mask rule, the same draw and numbers as striate.functional,
and PyTorch's arithmetic for a given mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import striate.functional as F
from striate import reference as R

from .oracle import assert_close, fast_run, numeric_check, torch_run

# F's op, and the shape its mask has for x of shape (N, *spatial, C)
KINDS = [
    (F.dropout, lambda shape: shape),
    (F.spatial_dropout, lambda shape: (shape[0], *(1,) * (len(shape) - 2), shape[-1])),
    (F.drop_path, lambda shape: (shape[0], *(1,) * (len(shape) - 1))),
]


@pytest.mark.parametrize("op, mask_shape", KINDS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_equals_functional_for_the_same_generator(op, mask_shape, p, dtype, rng):
    x = rng.standard_normal((4, 3, 5, 6)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    seed = int(rng.integers(2**31))
    y_f, (dx_f,) = fast_run(lambda x: op(x, p, rng=np.random.default_rng(seed)), (x,), dy)
    mask = R.dropout_mask(mask_shape(x.shape), p, np.random.default_rng(seed))
    y = R.dropout.dropout(x, mask, p)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, y_f)
    np.testing.assert_array_equal(R.dropout_dx(dy, mask, p), dx_f)


def test_mask_rule(rng):
    """Kept with probability 1 - p, scaled by 1 / (1 - p): the mean is unchanged."""
    mask = R.dropout_mask((200, 500), 0.3, rng)
    assert mask.dtype == bool
    assert abs(mask.mean() - 0.7) < 0.01
    y = R.dropout.dropout(np.ones((200, 500)), mask, 0.3)
    np.testing.assert_allclose(np.unique(y), [0, 1 / 0.7])
    assert abs(y.mean() - 1) < 0.02


def test_dropout_against_torch_and_numerically(rng):
    x, dy = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    mask = R.dropout_mask(x.shape, 0.4, rng)
    y_t, (dx_t,) = torch_run(lambda x: x * torch.as_tensor(mask) / (1 - 0.4), (x,), dy)
    dx = R.dropout_dx(dy, mask, 0.4)
    assert_close(R.dropout.dropout(x, mask, 0.4), y_t, "y")
    assert_close(dx, dx_t, "dx")
    numeric_check(lambda x: R.dropout.dropout(x, mask, 0.4), [x], [dx], dy, rng)
