"""striate.reference.linear against PyTorch, central differences and striate.functional."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import striate.functional as F
from striate import reference as R

from .oracle import assert_close, fast_run, numeric_check, torch_run


@pytest.mark.parametrize("leading", [(1,), (6,), (2, 3), (2, 1, 4)], ids=str)
def test_dense(leading, rng):
    x, w, b = rng.standard_normal((*leading, 5)), rng.standard_normal((5, 3)), \
        rng.standard_normal(3)
    y = R.dense(x, w, b)
    dy = rng.standard_normal(y.shape)
    grads = [R.dense_dx(dy, w), R.dense_dw(dy, x), R.dense_db(dy)]
    # torch's Linear weight is (out, in): the transpose of ours
    y_t, grads_t = torch_run(lambda x, w, b: torch.nn.functional.linear(x, w.T, b), (x, w, b),
                             dy)
    y_f, grads_f = fast_run(F.dense, (x, w, b), dy)
    for what, (y_o, g_o) in (("torch", (y_t, grads_t)), ("functional", (y_f, grads_f))):
        assert_close(y, y_o, f"y vs {what}")
        for name, ours, theirs in zip(("dx", "dw", "db"), grads, g_o, strict=True):
            assert_close(ours, theirs, f"{name} vs {what}")
    numeric_check(R.dense, [x, w, b], grads, dy, rng)
    assert_close(R.dense(x, w, None), y - b, "no bias")


def test_dense_is_the_sum_the_lectures_write():
    x, w = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    np.testing.assert_array_equal(R.dense(x, w, np.array([0.0, 1.0, 0.0])), [[5, 3, 0]])
