"""Every loss on huge float32 scores: no overflow anywhere (NumPy's floating-point errors are
raised, not warned), a finite loss and gradient, equal to the same formula evaluated in float64
on the same inputs. The float64 references are written out here, apart from the library."""

import numpy as np
import pytest

from striate import Tensor
from striate import functional as F

SCALES = [1e4, 1e20, 1e36]  # float32 overflows at 3.4e38; exp overflows at 88.7
REDUCTIONS = ["mean", "sum", "none"]


def _reduce64(losses: np.ndarray, reduction: str) -> np.ndarray:
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


def _weight(reduction: str, count: int) -> float:
    """d reduced / d each loss, for an upstream gradient of ones."""
    return 1.0 / count if reduction == "mean" else 1.0


def _log_softmax64(x: np.ndarray) -> np.ndarray:
    """log softmax in float64 by the definition, shifted by the row's max (exact in float64)."""
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(-np.abs(x))  # <= 1
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _backward(loss: Tensor) -> None:
    loss.backward(np.ones_like(loss.data))


def _assert_close(got, want, what):
    got = np.asarray(got)
    assert got.dtype == np.float32, f"{what}: {got.dtype}"
    assert np.all(np.isfinite(got)), f"{what} is not finite: {got}"
    scale = max(float(np.abs(want).max()), 1e-30)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6 * scale, err_msg=what)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_on_huge_logits(scale, reduction, smoothing, rng):
    logits = (rng.standard_normal((6, 5)) * scale).astype(np.float32)
    labels = rng.integers(0, 5, size=6)
    x = Tensor(logits, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.cross_entropy(x, labels, reduction=reduction, label_smoothing=smoothing)
        _backward(loss)
    log_p = _log_softmax64(logits)
    target = np.full((6, 5), smoothing / 5)
    target[np.arange(6), labels] += 1 - smoothing
    _assert_close(loss.data, _reduce64(-(target * log_p).sum(axis=-1), reduction), "loss")
    _assert_close(x.grad, (np.exp(log_p) - target) * _weight(reduction, 6), "gradient")


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_of_log_softmax_on_huge_logits(scale, reduction, rng):
    logits = (rng.standard_normal((3, 4, 7)) * scale).astype(np.float32)
    labels = rng.integers(0, 7, size=(3, 4))
    x = Tensor(logits, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.nll_loss(F.log_softmax(x), labels, reduction=reduction)
        _backward(loss)
    log_p = _log_softmax64(logits)
    picked = np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    _assert_close(loss.data, _reduce64(-picked, reduction), "loss")
    onehot = np.eye(7)[labels]
    _assert_close(x.grad, (np.exp(log_p) - onehot) * _weight(reduction, 12), "gradient")


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits_on_huge_logits(scale, reduction, rng):
    logits = (rng.standard_normal((5, 4)) * scale).astype(np.float32)
    targets = rng.random((5, 4)).astype(np.float32)
    x, t = Tensor(logits, requires_grad=True), Tensor(targets, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy_with_logits(x, t, reduction=reduction)
        _backward(loss)
    x64, t64 = logits.astype(np.float64), targets.astype(np.float64)
    # -(t log s + (1 - t) log(1 - s)) with log s = -log(1 + e^-x), log(1 - s) = -x - log(1 + e^-x)
    # = x (1 - t) + log(1 + e^-x), evaluated for x < 0 as -x t + log(1 + e^x) (no overflow).
    softplus_neg = np.where(x64 >= 0, np.log1p(np.exp(-np.abs(x64))),
                            -x64 + np.log1p(np.exp(-np.abs(x64))))
    losses = x64 * (1 - t64) + softplus_neg
    weight = _weight(reduction, 20)
    _assert_close(loss.data, _reduce64(losses, reduction), "loss")
    _assert_close(x.grad, (_sigmoid64(logits) - t64) * weight, "gradient of the logits")
    _assert_close(t.grad, -x64 * weight, "gradient of the targets")


@pytest.mark.parametrize("scale", [1e4, 1e12, 1e17])  # (pred - target)^2 must fit in float32
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_on_huge_values(scale, reduction, rng):
    pred = (rng.standard_normal((4, 6)) * scale).astype(np.float32)
    target = (rng.standard_normal((4, 6)) * scale).astype(np.float32)
    p, t = Tensor(pred, requires_grad=True), Tensor(target, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.mse_loss(p, t, reduction=reduction)
        _backward(loss)
    diff = pred.astype(np.float64) - target.astype(np.float64)
    weight = _weight(reduction, 24)
    _assert_close(loss.data, _reduce64(diff * diff, reduction), "loss")
    _assert_close(p.grad, 2 * diff * weight, "gradient of pred")
    _assert_close(t.grad, -2 * diff * weight, "gradient of target")
