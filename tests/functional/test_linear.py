import numpy as np
import pytest
import torch.nn.functional as tF

from striate import Tensor
from striate import functional as F
from tests.helpers import check_gradients, compare_with_torch

# (leading shape of x, in, out)
DENSE_CASES = [((4,), 3, 5), ((1,), 7, 1), ((2, 6), 4, 3), ((2, 3, 5), 8, 6), ((), 5, 2),
               ((3, 2, 2, 2), 1, 4), ((16,), 33, 10)]


def torch_dense(x, w, b=None):
    return tF.linear(x, w.T, b)


@pytest.mark.parametrize("lead,n_in,n_out", DENSE_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dense_matches_torch(lead, n_in, n_out, bias, dtype, rng):
    inputs = [rng.standard_normal((*lead, n_in)), rng.standard_normal((n_in, n_out))]
    if bias:
        inputs.append(rng.standard_normal(n_out))
    compare_with_torch(F.dense, torch_dense, [a.astype(dtype) for a in inputs], rng)


@pytest.mark.parametrize("lead,n_in,n_out", DENSE_CASES[:5], ids=str)
def test_dense_gradients(lead, n_in, n_out, rng):
    x = rng.standard_normal((*lead, n_in))
    w = rng.standard_normal((n_in, n_out))
    check_gradients(F.dense, [x, w, rng.standard_normal(n_out)], rng)
    check_gradients(F.dense, [x, w], rng)


def test_dense_worked_numbers():
    # y = x @ w + b by hand.
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 3.0]])
    b = np.array([0.0, 1.0, -1.0])
    np.testing.assert_array_equal(F.dense(x, w, b).data, [[2.0, 5.0, 4.0]])


def test_dense_non_contiguous_and_partial_grads(rng):
    x = rng.standard_normal((5, 8, 3))[:, ::2].transpose(1, 0, 2)  # (4, 5, 3), strided
    w = rng.standard_normal((6, 3)).T  # (3, 6), transposed view
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    compare_with_torch(F.dense, torch_dense, [x, w, rng.standard_normal(6)], rng)
    # Only w needs a gradient: x is a constant.
    wt = Tensor(w, requires_grad=True)
    F.dense(x, wt).sum().backward()
    np.testing.assert_allclose(wt.grad, np.broadcast_to(x.reshape(-1, 3).sum(0)[:, None], (3, 6)))


def test_dense_float32_stays_float32(rng):
    x = Tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    y = F.dense(x, w, np.zeros(4, np.float32))
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == np.float32


def test_dense_errors():
    with pytest.raises(ValueError, match=r"dense: x has 4 features \(last axis of shape \(2, 4\)\) "
                                         r"but w expects 3 \(w shape \(3, 5\)\)"):
        F.dense(np.zeros((2, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"dense: w must be 2-D \(in, out\), got shape \(3,\)"):
        F.dense(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"dense: b must have shape \(5,\) .* got \(4,\)"):
        F.dense(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(4))


# ----- embedding ------------------------------------------------------------------------------
EMBEDDING_CASES = [((2, 5), 10, 4), ((1, 1), 3, 2), ((3, 7), 4, 6), ((12,), 50, 3),
                   ((2, 2, 3), 5, 1)]


@pytest.mark.parametrize("ids_shape,vocab,dim", EMBEDDING_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_embedding_matches_torch(ids_shape, vocab, dim, dtype, rng):
    ids = rng.integers(0, vocab, size=ids_shape)  # small vocabularies: many repeated ids
    table = rng.standard_normal((vocab, dim)).astype(dtype)
    compare_with_torch(lambda t, i: F.embedding(i, t), lambda t, i: tF.embedding(i, t),
                       [table, ids], rng)


def test_embedding_padding_idx_matches_torch(rng):
    ids = np.array([[0, 2, 0, 1], [3, 0, 2, 2]])
    table = rng.standard_normal((4, 3))
    compare_with_torch(lambda t, i: F.embedding(i, t, padding_idx=0),
                       lambda t, i: tF.embedding(i, t, padding_idx=0), [table, ids], rng)


def test_embedding_gradients(rng):
    ids = rng.integers(0, 6, size=(3, 5))
    check_gradients(lambda t: F.embedding(ids, t), [rng.standard_normal((6, 4))], rng)


def test_embedding_gradient_sums_repeats():
    table = Tensor(np.zeros((3, 2)), requires_grad=True)
    F.embedding(np.array([[2, 2, 2, 0]]), table).backward(np.ones((1, 4, 2)))
    np.testing.assert_array_equal(table.grad, [[1, 1], [0, 0], [3, 3]])


def test_embedding_of_no_ids(rng):
    table = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    y = F.embedding(np.zeros((0, 5), dtype=np.int64), table)
    assert y.shape == (0, 5, 3)
    y.backward(np.zeros((0, 5, 3)))
    np.testing.assert_array_equal(table.grad, np.zeros((4, 3)))


def test_embedding_errors():
    table = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"embedding: ids must be in \[0, 5\) .* got 5"):
        F.embedding(np.array([[0, 5]]), table)
    with pytest.raises(ValueError, match=r"embedding: ids must be in \[0, 5\) .* got -1"):
        F.embedding(np.array([-1]), table)
    with pytest.raises(TypeError, match=r"embedding: ids must be an integer array, got dtype f"):
        F.embedding(np.array([0.0, 1.0]), table)
    with pytest.raises(ValueError, match=r"embedding: table must be 2-D \(V, D\), got shape"):
        F.embedding(np.array([0]), np.zeros(5))
    with pytest.raises(ValueError, match=r"embedding: padding_idx must be in \[0, 5\), got 7"):
        F.embedding(np.array([0]), table, padding_idx=7)

