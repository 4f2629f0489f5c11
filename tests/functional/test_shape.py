import numpy as np
import pytest
import torch.nn.functional as tF

from striate import Tensor
from striate import functional as F
from tests.helpers import check_gradients, compare_with_torch

# (shape of x, pads: one (start, end) pair or int per axis, value)
PAD_CASES = [
    ((2, 5, 5, 3), ((0, 0), (1, 1), (1, 1), (0, 0)), 0.0),
    ((1, 4, 6, 2), ((0, 0), (2, 0), (0, 3), (0, 0)), 0.0),
    ((3, 7, 2), ((0, 0), (3, 1), (0, 0)), -1.5),
    ((2, 3), (1, 2), 0.0),
    ((2, 3, 3, 3, 1), ((0, 0), (1, 1), (0, 2), (2, 0), (0, 0)), 0.0),
    ((4,), ((0, 0),), 0.0),
    ((1, 2, 2, 5), ((1, 0), (0, 0), (2, 2), (1, 1)), 2.0),
]


def _torch_pad(pads, value):
    """torch's pad lists (start, end) from the LAST axis backwards."""
    pairs = [(p, p) if isinstance(p, int) else p for p in pads]
    flat = [v for pair in reversed(pairs) for v in pair]
    return lambda x: tF.pad(x, flat, value=value)


@pytest.mark.parametrize("shape,pads,value", PAD_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_pad_matches_torch(shape, pads, value, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    compare_with_torch(lambda t: F.pad(t, pads, value), _torch_pad(pads, value), [x], rng)


@pytest.mark.parametrize("shape,pads,value", PAD_CASES[:5], ids=str)
def test_pad_gradients(shape, pads, value, rng):
    check_gradients(lambda t: F.pad(t, pads, value), [rng.standard_normal(shape)], rng)


def test_pad_worked_numbers():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(
        F.pad(x, ((1, 0), (0, 1))).data, [[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [3.0, 4.0, 0.0]]
    )
    xt = Tensor(x, requires_grad=True)
    y = F.pad(xt, (1, 1), value=9.0)
    assert y.shape == (4, 4) and y.data[0, 0] == 9.0
    y.backward(np.arange(16.0).reshape(4, 4))
    np.testing.assert_array_equal(xt.grad, [[5.0, 6.0], [9.0, 10.0]])


def test_pad_keeps_float32_and_non_contiguous_input(rng):
    x = rng.standard_normal((3, 8, 4)).astype(np.float32)[:, ::2]
    assert not x.flags.c_contiguous
    y = F.pad(x, ((0, 0), (1, 1), (2, 0)), value=0.5)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, np.pad(x, ((0, 0), (1, 1), (2, 0)),
                                                 constant_values=0.5))


@pytest.mark.parametrize("pads, error, message", [
    (((1, 1),), ValueError, r"pad: pads must have one entry per axis of x \(2 for shape "
                            r"\(2, 3\)\), got 1"),
    (((1, -1), (0, 0)), ValueError, r"pad: padding must be >= 0, got \(1, -1\)"),
    (((1, 2, 3), (0, 0)), ValueError, r"pad: each entry of pads must be an int or a "
                                      r"\(start, end\) pair of ints, got \(1, 2, 3\)"),
    (((1.5, 1), (0, 0)), ValueError, r"pad: each entry of pads must be an int"),
    (3, TypeError, r"pad: pads must be one \(start, end\) pair per axis of x, got 3"),
])
def test_pad_errors(pads, error, message):
    with pytest.raises(error, match=message):
        F.pad(np.zeros((2, 3)), pads)
    with pytest.raises(TypeError, match=r"pad: value must be a real number, got 'a'"):
        F.pad(np.zeros((2, 3)), (1, 1), value="a")
