"""Losses: softmax cross-entropy, negative log-likelihood, binary cross-entropy on logits and
mean squared error, each with the gradient of its input.

Every loss reduces its per-example losses l by `reduction`: 'mean' (sum(l) / l.size, a scalar),
'sum' (a scalar) or 'none' (l itself). The gradient functions take dy, the gradient of that
result (a scalar, or l's shape for 'none').
"""

from __future__ import annotations

import math

import numpy as np


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    total = losses.sum()
    return np.asarray(total / losses.size if reduction == "mean" else total)


def _per_example(dy, shape, reduction):
    """d(reduced loss)/d l: dy / l.size for 'mean', dy for 'sum', dy itself for 'none'."""
    if reduction == "none":
        return dy
    return np.broadcast_to(dy / math.prod(shape) if reduction == "mean" else dy, shape)


def _target(labels, classes, label_smoothing, dtype):
    """t = (1 - eps) onehot(labels) + eps / K (PyTorch's label smoothing). (..., K)."""
    onehot = (labels[..., None] == np.arange(classes)).astype(dtype)
    return (1 - label_smoothing) * onehot + label_smoothing / classes


def cross_entropy(logits, labels, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy from raw scores.

    l[n] = -sum_k t[n, k] log softmax(logits[n])_k,  t as `_target` (one-hot when eps = 0)
    log softmax(z)_k = z_k - m - log sum_j exp(z_j - m), m = max_j z_j (exp never overflows)

    logits: (N, K) or (N, ..., K); labels: integers of shape logits.shape[:-1] in [0, K).
    Returns a scalar ('mean', 'sum') or labels.shape ('none').

    >>> float(cross_entropy(np.zeros((4, 10)), np.array([1, 0, 9, 3])))  # log 10
    2.302585092994046
    """
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    t = _target(labels, logits.shape[-1], label_smoothing, logits.dtype)
    return _reduce(-(t * log_p).sum(axis=-1), reduction)


def cross_entropy_dlogits(dy, logits, labels, reduction="mean", label_smoothing=0.0):
    """d l[n] / d logits[n, k] = softmax(logits[n])_k - t[n, k] (sum_k t = 1), times the
    reduction's weight: dlogits = (softmax(logits) - t) * dl[..., None]. Returns logits' shape."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    t = _target(labels, logits.shape[-1], label_smoothing, logits.dtype)
    return (p - t) * _per_example(dy, labels.shape, reduction)[..., None]


def nll_loss(log_probs, labels, reduction="mean"):
    """l[n] = -log_probs[n, labels[n]]; nll_loss(log_softmax(z), y) = cross_entropy(z, y)."""
    return _reduce(-np.take_along_axis(log_probs, labels[..., None], -1)[..., 0], reduction)


def nll_loss_dx(dy, log_probs, labels, reduction="mean"):
    """dx[n, k] = -dl[n] where k = labels[n], else 0."""
    onehot = (labels[..., None] == np.arange(log_probs.shape[-1])).astype(log_probs.dtype)
    return -onehot * _per_example(dy, labels.shape, reduction)[..., None]


def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """l = -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) = max(x, 0) - x t + log(1 + e^-|x|)
    (the second form never exponentiates a positive number). logits, targets: one shape."""
    x = logits
    return _reduce(np.maximum(x, 0) - x * targets + np.log1p(np.exp(-np.abs(x))), reduction)


def binary_cross_entropy_with_logits_grad(dy, logits, targets, reduction="mean"):
    """dl/dx = sigmoid(x) - t, dl/dt = -x, times the reduction's weight. Returns (dx, dt)."""
    g = _per_example(dy, logits.shape, reduction)
    return g * (1 / (1 + np.exp(-logits)) - targets), -g * logits


def mse_loss(pred, target, reduction="mean"):
    """l = (pred - target)^2 elementwise, then reduced."""
    return _reduce((pred - target) ** 2, reduction)


def mse_loss_grad(dy, pred, target, reduction="mean"):
    """dl/dpred = 2 (pred - target), dl/dtarget = -2 (pred - target), times the reduction's
    weight. Returns (dpred, dtarget)."""
    g = 2 * _per_example(dy, pred.shape, reduction) * (pred - target)
    return g, -g
