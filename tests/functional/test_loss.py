import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from striate import Tensor
from striate import functional as F
from tests.helpers import check_gradients, compare_with_torch

REDUCTIONS = ["mean", "sum", "none"]
# Scores with the classes last: (N, K), or (N, ..., K) for dense prediction.
SCORE_SHAPES = [(4, 10), (1, 3), (7, 2), (2, 3, 3, 5), (3, 4, 6)]


def channels_first(t: torch.Tensor) -> torch.Tensor:
    return t.movedim(-1, 1)


def labels_for(rng, shape):
    return rng.integers(0, shape[-1], size=shape[:-1])


# ===== cross-entropy ===========================================================================
@pytest.mark.parametrize("shape", SCORE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cross_entropy_matches_torch(shape, reduction, smoothing, dtype, rng):
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    compare_with_torch(
        lambda x, y: F.cross_entropy(x, y, reduction=reduction, label_smoothing=smoothing),
        lambda x, y: tF.cross_entropy(channels_first(x), y, reduction=reduction,
                                      label_smoothing=smoothing),
        [logits, labels_for(rng, shape)], rng,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(5, 4), (2, 2, 3, 3)], ids=str)
def test_cross_entropy_gradients(reduction, smoothing, shape, rng):
    labels = labels_for(rng, shape)
    check_gradients(
        lambda x: F.cross_entropy(x, labels, reduction=reduction, label_smoothing=smoothing),
        [rng.standard_normal(shape)], rng,
    )


def test_cross_entropy_worked_numbers():
    # Equal logits over K classes: -log(1/K) for every example.
    np.testing.assert_allclose(F.cross_entropy(np.zeros((3, 10)), np.array([0, 4, 9])).data,
                               np.log(10), rtol=1e-15)
    # Two classes, logits (0, log 3): p = (1/4, 3/4).
    logits = np.array([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(F.cross_entropy(logits, np.array([1])).data, -np.log(0.75))
    np.testing.assert_allclose(F.cross_entropy(logits, np.array([0])).data, np.log(4.0))
    # The gradient is softmax - onehot (divided by N for the mean).
    x = Tensor(logits, requires_grad=True)
    F.cross_entropy(x, np.array([0])).backward()
    np.testing.assert_allclose(x.grad, [[0.25 - 1, 0.75]])
    # With smoothing eps the target is (1 - eps) * onehot + eps / K.
    x = Tensor(logits, requires_grad=True)
    F.cross_entropy(x, np.array([0]), label_smoothing=0.2).backward()
    np.testing.assert_allclose(x.grad, [[0.25 - 0.9, 0.75 - 0.1]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cross_entropy_huge_logits_stay_finite(dtype, rng):
    logits = (rng.standard_normal((6, 5)) * 1e4).astype(dtype)
    labels = labels_for(rng, (6, 5))
    x = Tensor(logits, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.cross_entropy(x, labels, label_smoothing=0.1)
        loss.backward()
    assert np.isfinite(loss.data) and np.all(np.isfinite(x.grad))
    t = torch.tensor(logits, requires_grad=True)
    expected = tF.cross_entropy(t, torch.as_tensor(labels), label_smoothing=0.1)
    expected.backward()
    np.testing.assert_allclose(loss.data, expected.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad, t.grad.numpy(), atol=1e-7)


def test_cross_entropy_nan_propagates():
    logits = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]])
    losses = F.cross_entropy(logits, np.array([0, 2]), reduction="none").data
    assert np.isnan(losses[0]) and np.isfinite(losses[1])
    assert np.isnan(F.cross_entropy(logits, np.array([0, 2])).data)


def test_cross_entropy_non_contiguous(rng):
    logits = rng.standard_normal((10, 7))[::2, 1:]
    assert not logits.flags.c_contiguous
    compare_with_torch(F.cross_entropy, tF.cross_entropy, [logits, labels_for(rng, (5, 6))], rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_losses_keep_float32(reduction, rng):
    logits = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    target = rng.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 1])
    for loss in [
        F.cross_entropy(logits, labels, reduction=reduction, label_smoothing=0.1),
        F.nll_loss(logits, labels, reduction=reduction),
        F.mse_loss(logits, target, reduction=reduction),
        F.binary_cross_entropy_with_logits(logits, target, reduction=reduction),
    ]:
        logits.zero_grad()
        loss.backward(np.ones(loss.shape, np.float32))
        assert loss.dtype == logits.grad.dtype == np.float32


def test_cross_entropy_errors():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\) for 4 "
                                         r"classes, got 4"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\) .* got -1"):
        F.cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must have shape \(3,\) for scores"
                                         r" of shape \(3, 4\) .* got \(2,\)"):
        F.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(TypeError, match=r"cross_entropy: labels must be an integer array, got "
                                        r"dtype float64"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be one of 'mean', 'sum', "
                                         r"'none', got 'avg'"):
        F.cross_entropy(logits, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\], "
                                         r"got 1.5"):
        F.cross_entropy(logits, np.array([0, 1, 2]), label_smoothing=1.5)


# ===== negative log-likelihood =================================================================
@pytest.mark.parametrize("shape", SCORE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_nll_loss_matches_torch(shape, reduction, dtype, rng):
    log_probs = rng.standard_normal(shape).astype(dtype)
    compare_with_torch(
        lambda x, y: F.nll_loss(x, y, reduction=reduction),
        # contiguous: torch's 2-D nll_loss backward rejects a strided input.
        lambda x, y: tF.nll_loss(channels_first(x).contiguous(), y, reduction=reduction),
        [log_probs, labels_for(rng, shape)], rng,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_gradients_and_equivalence(reduction, rng):
    logits, labels = rng.standard_normal((6, 5)), labels_for(rng, (6, 5))
    check_gradients(lambda x: F.nll_loss(x, labels, reduction=reduction), [logits], rng)
    np.testing.assert_allclose(
        F.nll_loss(F.log_softmax(logits), labels, reduction=reduction).data,
        F.cross_entropy(logits, labels, reduction=reduction).data, rtol=1e-14,
    )


def test_nll_loss_errors():
    with pytest.raises(ValueError, match=r"nll_loss: labels must be in \[0, 3\)"):
        F.nll_loss(np.zeros((2, 3)), np.array([3, 0]))


# ===== mean squared error and binary cross-entropy =============================================
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 3, 2), (1, 1)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_mse_loss_matches_torch(shape, reduction, dtype, rng):
    inputs = [rng.standard_normal(shape).astype(dtype) for _ in range(2)]
    compare_with_torch(lambda a, b: F.mse_loss(a, b, reduction=reduction),
                       lambda a, b: tF.mse_loss(a, b, reduction=reduction), inputs, rng)


@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 3, 2), (1, 1)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_bce_with_logits_matches_torch(shape, reduction, dtype, rng):
    logits = (rng.standard_normal(shape) * 4).astype(dtype)
    targets = rng.uniform(0, 1, shape).astype(dtype)
    compare_with_torch(
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
        lambda a, b: tF.binary_cross_entropy_with_logits(a, b, reduction=reduction),
        [logits, targets], rng,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_gradients(reduction, rng):
    a, b = rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    check_gradients(lambda p, t: F.mse_loss(p, t, reduction=reduction), [a, b], rng)
    check_gradients(
        lambda p, t: F.binary_cross_entropy_with_logits(p, t, reduction=reduction), [a, b], rng
    )


def test_regression_losses_worked_numbers():
    np.testing.assert_allclose(F.mse_loss(np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 1.0]))
                               .data, (0 + 4 + 9) / 3)
    # sigmoid(0) = 1/2: the loss is log 2 whatever the target.
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(np.zeros(3), np.array([0.0, 0.5, 1.0])).data, np.log(2)
    )
    big = F.binary_cross_entropy_with_logits(np.array([1e4, -1e4]), np.array([0.0, 1.0]),
                                             reduction="none").data
    np.testing.assert_allclose(big, [1e4, 1e4])


def test_regression_losses_errors():
    with pytest.raises(ValueError, match=r"mse_loss: pred and target must have the same shape, "
                                         r"got \(2, 3\) and \(3,\)"):
        F.mse_loss(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: logits and targets "
                                         r"must have the same shape"):
        F.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"mse_loss: reduction must be one of"):
        F.mse_loss(np.zeros(2), np.zeros(2), reduction=None)
