"""striate.reference.norm against PyTorch (float64, forward and every gradient), central
differences, and the fast striate.functional ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import striate.functional as F
from striate import reference as R

from .oracle import assert_close, channels_first, channels_last, fast_run, numeric_check, torch_run

TF = torch.nn.functional
SHAPES = [(4, 3), (2, 5, 3), (2, 3, 4, 2), (1, 3, 2, 2, 4), (1, 2, 1, 1)]


def _torch_bn(x, gamma, beta, training, mean=None, var=None, eps=1e-5):
    return channels_last(TF.batch_norm(channels_first(x), mean, var, gamma, beta,
                                       training=training, eps=eps))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_train_against_torch(shape, rng):
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    eps = 1e-3
    y, mean, var = R.batch_norm_train(x, gamma, beta, eps)
    dy = rng.standard_normal(shape)
    y_t, (dx_t, dgamma_t, dbeta_t) = torch_run(
        lambda x, g, b: _torch_bn(x, g, b, True, eps=eps), (x, gamma, beta), dy)
    assert_close(y, y_t, "y")
    flat = x.reshape(-1, shape[-1])
    assert_close(mean, flat.mean(axis=0), "mean")
    assert_close(var, flat.var(axis=0), "var (biased)")
    dx, dgamma, dbeta = R.batch_norm_train_grad(dy, x, gamma, eps)
    assert_close(dx, dx_t, "dx", atol=1e-9)
    assert_close(dgamma, dgamma_t, "dgamma")
    assert_close(dbeta, dbeta_t, "dbeta")
    numeric_check(lambda x, g, b: R.batch_norm_train(x, g, b, eps)[0], [x, gamma, beta],
                  [dx, dgamma, dbeta], dy, rng)


def test_batch_norm_without_affine_is_gamma_one_beta_zero(rng):
    x, dy = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    ones, zeros = np.ones(3), np.zeros(3)
    assert_close(R.batch_norm_train(x, None, None, 1e-5)[0],
                 R.batch_norm_train(x, ones, zeros, 1e-5)[0], "train y")
    assert_close(R.batch_norm_train_grad(dy, x, None, 1e-5)[0],
                 R.batch_norm_train_grad(dy, x, ones, 1e-5)[0], "train dx")
    mean, var = rng.standard_normal(3), rng.random(3) + 0.5
    assert_close(R.batch_norm_eval(x, None, None, mean, var, 1e-5),
                 (x - mean) / np.sqrt(var + 1e-5), "eval y")


def test_batch_norm_running_statistics_against_torch(rng):
    x = rng.standard_normal((3, 4, 2, 5)) + 3
    running_mean, running_var = rng.standard_normal(5), rng.random(5) + 0.5
    _, mean, var = R.batch_norm_train(x, None, None, 1e-5)
    new_mean, new_var = R.batch_norm_running(running_mean, running_var, mean, var, 24, 0.2)
    rm, rv = torch.tensor(running_mean), torch.tensor(running_var)
    TF.batch_norm(channels_first(torch.tensor(x)), rm, rv, training=True, momentum=0.2)
    assert_close(new_mean, rm.numpy(), "running_mean")
    assert_close(new_var, rv.numpy(), "running_var (unbiased)")


@pytest.mark.parametrize("shape", SHAPES[:4], ids=str)
def test_batch_norm_eval_against_torch(shape, rng):
    x = rng.standard_normal(shape)
    c = shape[-1]
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    mean, var = rng.standard_normal(c), rng.random(c) + 0.1
    y = R.batch_norm_eval(x, gamma, beta, mean, var, 1e-5)
    dy = rng.standard_normal(shape)
    y_t, (dx_t, dgamma_t, dbeta_t) = torch_run(
        lambda x, g, b: _torch_bn(x, g, b, False, torch.tensor(mean), torch.tensor(var)),
        (x, gamma, beta), dy)
    assert_close(y, y_t, "y")
    dx, dgamma, dbeta = R.batch_norm_eval_grad(dy, x, gamma, mean, var, 1e-5)
    assert_close(dx, dx_t, "dx")
    assert_close(dgamma, dgamma_t, "dgamma")
    assert_close(dbeta, dbeta_t, "dbeta")
    numeric_check(lambda x, g, b: R.batch_norm_eval(x, g, b, mean, var, 1e-5), [x, gamma, beta],
                  [dx, dgamma, dbeta], dy, rng)


LRN = [((2, 5, 6), 3, 1e-2, 0.75, 1.0), ((2, 3, 3, 8), 5, 5e-2, 0.75, 2.0),
       ((1, 2, 2, 7), 4, 1e-1, 0.5, 1.5), ((1, 2, 2, 2, 3), 1, 2e-1, 1.2, 0.5),
       ((2, 4, 6), 8, 3e-1, 0.75, 1.0)]


@pytest.mark.parametrize("shape, size, alpha, beta, k", LRN, ids=str)
def test_local_response_norm_against_torch(shape, size, alpha, beta, k, rng):
    x = rng.standard_normal(shape) * 2
    y = R.local_response_norm(x, size, alpha, beta, k)
    dy = rng.standard_normal(shape)
    y_t, (dx_t,) = torch_run(
        lambda x: channels_last(TF.local_response_norm(channels_first(x), size, alpha, beta, k)),
        (x,), dy)
    assert_close(y, y_t, "y")
    dx = R.local_response_norm_dx(dy, x, size, alpha, beta, k)
    assert_close(dx, dx_t, "dx")
    numeric_check(lambda x: R.local_response_norm(x, size, alpha, beta, k), [x], [dx], dy, rng)


def test_local_response_norm_alexnet_constants(rng):
    """AlexNet's k=2, n=5, alpha=1e-4, beta=0.75 (the sum not divided by n) is size=5,
    alpha=5e-4 here: b = a / (2 + 1e-4 * sum of the 5 neighbouring squares)^0.75."""
    x = rng.standard_normal((1, 1, 1, 9)) * 10
    y = R.local_response_norm(x, 5, 5e-4, 0.75, 2.0)
    c = 4
    paper = x[0, 0, 0, c] / (2 + 1e-4 * np.sum(x[0, 0, 0, c - 2:c + 3] ** 2)) ** 0.75
    assert np.isclose(y[0, 0, 0, c], paper, rtol=1e-12)


# ===== the same numbers as striate.functional ==================================================
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_equals_functional(shape, rng):
    x = rng.standard_normal(shape)
    c = shape[-1]
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    running_mean, running_var = rng.standard_normal(c), rng.random(c) + 0.5
    dy = rng.standard_normal(shape)
    # training: the batch's statistics, and the running estimates moved in place
    rm, rv = running_mean.copy(), running_var.copy()
    y_f, (dx_f, dgamma_f, dbeta_f) = fast_run(
        lambda x, g, b: F.batch_norm(x, g, b, rm, rv, training=True, momentum=0.3, eps=1e-4),
        (x, gamma, beta), dy)
    y, mean, var = R.batch_norm_train(x, gamma, beta, 1e-4)
    assert_close(y, y_f, "train y")
    for name, ours, theirs in zip(("dx", "dgamma", "dbeta"),
                                  R.batch_norm_train_grad(dy, x, gamma, 1e-4),
                                  (dx_f, dgamma_f, dbeta_f), strict=True):
        assert_close(ours, theirs, f"train {name}", atol=1e-9)
    m = x.size // c
    new_mean, new_var = R.batch_norm_running(running_mean, running_var, mean, var, m, 0.3)
    assert_close(new_mean, rm, "running_mean")
    assert_close(new_var, rv, "running_var")
    # evaluation: the running estimates are constants
    y_f, (dx_f, dgamma_f, dbeta_f) = fast_run(
        lambda x, g, b: F.batch_norm(x, g, b, running_mean, running_var, training=False),
        (x, gamma, beta), dy)
    assert_close(R.batch_norm_eval(x, gamma, beta, running_mean, running_var, 1e-5), y_f,
                 "eval y")
    for name, ours, theirs in zip(("dx", "dgamma", "dbeta"),
                                  R.batch_norm_eval_grad(dy, x, gamma, running_mean,
                                                         running_var, 1e-5),
                                  (dx_f, dgamma_f, dbeta_f), strict=True):
        assert_close(ours, theirs, f"eval {name}")


@pytest.mark.parametrize("shape, size, alpha, beta, k", LRN, ids=str)
def test_local_response_norm_equals_functional(shape, size, alpha, beta, k, rng):
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    y_f, (dx_f,) = fast_run(lambda x: F.local_response_norm(x, size, alpha, beta, k), (x,), dy)
    assert_close(R.local_response_norm(x, size, alpha, beta, k), y_f, "y")
    assert_close(R.local_response_norm_dx(dy, x, size, alpha, beta, k), dx_f, "dx")
