"""striate.reference.loss against PyTorch (float64, value and gradient), central differences
and striate.functional."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import striate.functional as F
from striate import reference as R

from .oracle import assert_close, channels_first, fast_run, numeric_check, torch_run

TF = torch.nn.functional
SHAPES = [(5, 4), (1, 3), (2, 3, 2, 6)]  # (N, K) and dense prediction (N, H, W, K)


def _dy(reduction, labels_shape, rng):
    return rng.standard_normal(labels_shape) if reduction == "none" else np.asarray(1.7)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy(shape, reduction, smoothing, rng):
    logits = rng.standard_normal(shape) * 3
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    dy = _dy(reduction, labels.shape, rng)
    loss = R.cross_entropy(logits, labels, reduction, smoothing)
    dlogits = R.cross_entropy_dlogits(dy, logits, labels, reduction, smoothing)
    y_t, (d_t, _) = torch_run(
        lambda z, t: TF.cross_entropy(channels_first(z) if z.ndim > 2 else z, t,
                                      reduction=reduction, label_smoothing=smoothing),
        (logits, torch.as_tensor(labels)), dy)
    y_f, (d_f, _) = fast_run(
        lambda z, t: F.cross_entropy(z, t, reduction=reduction, label_smoothing=smoothing),
        (logits, labels), dy)
    for what, (y_o, d_o) in (("torch", (y_t, d_t)), ("functional", (y_f, d_f))):
        assert_close(loss, y_o, f"loss vs {what}")
        assert_close(dlogits, d_o, f"dlogits vs {what}", atol=1e-12)
    numeric_check(lambda z: R.cross_entropy(z, labels, reduction, smoothing), [logits],
                  [dlogits], dy, rng)


def test_cross_entropy_is_stable_for_large_logits():
    logits = np.array([[1e4, 1e4 - 1.0, -1e4]])
    with np.errstate(over="raise"):
        loss = R.cross_entropy(logits, np.array([1]))
    assert np.isclose(loss, 1 + np.log1p(np.exp(-1.0)), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_other_losses(reduction, rng):
    x, t = rng.standard_normal((4, 3)), rng.random((4, 3))
    labels = rng.integers(0, 3, size=4)
    log_p = R.log_softmax(x)
    dy = _dy(reduction, (4,), rng)
    y_t, (d_t, _) = torch_run(lambda z, y: TF.nll_loss(z, y, reduction=reduction),
                              (log_p, torch.as_tensor(labels)), dy)
    y_f, (d_f, _) = fast_run(lambda z, y: F.nll_loss(z, y, reduction=reduction), (log_p, labels),
                             dy)
    d = R.nll_loss_dx(dy, log_p, labels, reduction)
    for what, (y_o, d_o) in (("torch", (y_t, d_t)), ("functional", (y_f, d_f))):
        assert_close(R.nll_loss(log_p, labels, reduction), y_o, f"nll vs {what}")
        assert_close(d, d_o, f"nll dx vs {what}")
    numeric_check(lambda z: R.nll_loss(z, labels, reduction), [log_p], [d], dy, rng)

    dy = _dy(reduction, x.shape, rng)
    for name, torch_fn, fast_fn in (
        ("binary_cross_entropy_with_logits", TF.binary_cross_entropy_with_logits,
         F.binary_cross_entropy_with_logits),
        ("mse_loss", TF.mse_loss, F.mse_loss),
    ):
        ours = getattr(R, name)
        grad = getattr(R, f"{name}_grad")
        y_t, g_t = torch_run(lambda a, b, fn=torch_fn: fn(a, b, reduction=reduction), (x, t), dy)
        y_f, g_f = fast_run(lambda a, b, fn=fast_fn: fn(a, b, reduction=reduction), (x, t), dy)
        grads = grad(dy, x, t, reduction)
        for what, (y_o, g_o) in (("torch", (y_t, g_t)), ("functional", (y_f, g_f))):
            assert_close(ours(x, t, reduction), y_o, f"{name} vs {what}")
            assert_close(grads[0], g_o[0], f"{name} d input vs {what}")
            assert_close(grads[1], g_o[1], f"{name} d target vs {what}")
        numeric_check(lambda a, b, fn=ours: fn(a, b, reduction), [x, t], list(grads), dy, rng)
