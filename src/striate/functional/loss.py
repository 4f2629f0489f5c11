"""Loss functions: softmax cross-entropy (fused), negative log-likelihood, mean squared error and
binary cross-entropy on logits.

Every loss takes `reduction`: 'mean' (the default, a scalar), 'sum' (a scalar) or 'none' (one
loss per example, shaped like the labels).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Op, Tensor, as_tensor
from .activation import _sigmoid

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "mse_loss", "nll_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    """Per-example losses -> the requested reduction."""
    if reduction == "none":
        return losses
    total = losses.sum()
    return np.asarray(total / losses.size if reduction == "mean" else total)


def _unreduce(dy: np.ndarray, shape: tuple[int, ...], reduction: str) -> np.ndarray:
    """The gradient of each example's loss, given the gradient of the reduced loss."""
    if reduction == "none":
        return dy
    size = int(np.prod(shape))
    return np.broadcast_to(dy / size if reduction == "mean" else dy, shape)


def _check_reduction(op: str, reduction) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")
    return reduction


def _check_labels(op: str, labels, scores: Tensor) -> np.ndarray:
    """Integer class labels of shape scores.shape[:-1], each in [0, K)."""
    labels = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{op}: labels must be an integer array, got dtype {labels.dtype}")
    if scores.ndim < 1 or labels.shape != scores.shape[:-1]:
        raise ValueError(
            f"{op}: labels must have shape {scores.shape[:-1]} for scores of shape "
            f"{scores.shape} (classes on the last axis), got {labels.shape}"
        )
    classes = scores.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(f"{op}: labels must be in [0, {classes}) for {classes} classes, got {bad}")
    return labels


def _check_same_shape(op: str, a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{op}: {names[0]} and {names[1]} must have the same shape, got {a.shape} and "
            f"{b.shape}"
        )


# ===== classification ==========================================================================
class CrossEntropy(Op):
    def forward(self, logits, labels, reduction, label_smoothing):
        classes = logits.shape[-1]
        z = logits - logits.max(axis=-1, keepdims=True)  # log-sum-exp trick: exp(z) <= 1
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # (..., K)
        picked = np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
        if label_smoothing:
            # PyTorch's smoothing: the target is (1 - eps) * onehot + eps / K.
            smooth = log_p.sum(axis=-1) / classes
            losses = -((1 - label_smoothing) * picked + label_smoothing * smooth)
        else:
            losses = -picked
        # Backward needs only the softmax and the labels: d loss / d logits = p - target.
        self.p, self.labels = np.exp(log_p), labels
        self.reduction, self.label_smoothing = reduction, label_smoothing
        return _reduce(losses, reduction)

    def backward(self, dy):
        eps, labels = self.label_smoothing, self.labels[..., None]
        dx = self.p  # (..., K); the graph is used once, so the saved softmax becomes dx
        if eps:
            dx -= eps / dx.shape[-1]
        np.put_along_axis(dx, labels, np.take_along_axis(dx, labels, axis=-1) - (1 - eps), -1)
        dx *= _unreduce(dy, self.labels.shape, self.reduction)[..., None]
        return (dx,)


def cross_entropy(logits, labels, reduction: str = "mean", label_smoothing: float = 0.0):
    """Softmax cross-entropy from raw scores, fused: stable for any logits (log-sum-exp).

    loss_n = -sum_k t[n, k] * log softmax(logits[n])_k, with the target t = onehot(labels[n])
    smoothed as PyTorch does: t = (1 - label_smoothing) * onehot + label_smoothing / K.
    The gradient is softmax(logits) - t (times the reduction's weight).

    logits: (N, K), or (N, ..., K) for dense prediction; labels: integers of shape
    logits.shape[:-1] in [0, K). Returns a scalar ('mean', 'sum') or labels.shape ('none').

    >>> cross_entropy(np.zeros((4, 10)), np.array([1, 0, 9, 3])).shape
    ()
    """
    logits = as_tensor(logits)
    labels = _check_labels("cross_entropy", labels, logits)
    smoothing = label_smoothing
    if isinstance(smoothing, bool) or not isinstance(smoothing, numbers.Real) \
            or not 0 <= smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {smoothing!r}")
    return CrossEntropy.apply(
        logits, labels=labels, reduction=_check_reduction("cross_entropy", reduction),
        label_smoothing=float(smoothing),
    )


class NLLLoss(Op):
    def forward(self, log_probs, labels, reduction):
        self.labels, self.reduction = labels[..., None], reduction
        self.shape, self.dtype = log_probs.shape, log_probs.dtype
        return _reduce(-np.take_along_axis(log_probs, self.labels, axis=-1)[..., 0], reduction)

    def backward(self, dy):
        dx = np.zeros(self.shape, dtype=self.dtype)
        weights = _unreduce(dy, self.shape[:-1], self.reduction)[..., None]
        np.put_along_axis(dx, self.labels, -weights, axis=-1)
        return (dx,)


def nll_loss(log_probs, labels, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the labelled class, given log-probabilities.

    loss_n = -log_probs[n, labels[n]]; nll_loss(log_softmax(x), y) == cross_entropy(x, y).

    log_probs: (N, K) or (N, ..., K); labels: integers of shape log_probs.shape[:-1].
    Returns a scalar ('mean', 'sum') or labels.shape ('none').

    >>> nll_loss(np.full((2, 3), -1.0), np.array([0, 2])).data
    array(1.)
    """
    log_probs = as_tensor(log_probs)
    labels = _check_labels("nll_loss", labels, log_probs)
    return NLLLoss.apply(
        log_probs, labels=labels, reduction=_check_reduction("nll_loss", reduction)
    )


class BCEWithLogits(Op):
    def forward(self, logits, targets, reduction):
        # max(x, 0) - x t + log(1 + exp(-|x|)): never exponentiates a positive number.
        losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
        self.logits, self.targets, self.reduction = logits, targets, reduction
        return _reduce(losses, reduction)

    def backward(self, dy):
        weights = _unreduce(dy, self.logits.shape, self.reduction)
        dx = weights * (_sigmoid(self.logits) - self.targets) if self.needs_grad[0] else None
        dt = -weights * self.logits if self.needs_grad[1] else None
        return dx, dt


def binary_cross_entropy_with_logits(logits, targets, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], computed stably.

    loss = -(t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x)))
         = max(x, 0) - x * t + log(1 + exp(-|x|)).

    logits, targets: the same shape. Returns a scalar ('mean', 'sum') or that shape ('none').

    >>> binary_cross_entropy_with_logits(np.zeros((4, 3)), np.ones((4, 3))).shape
    ()
    """
    logits, targets = as_tensor(logits), as_tensor(targets)
    _check_same_shape("binary_cross_entropy_with_logits", logits, targets, ("logits", "targets"))
    reduction = _check_reduction("binary_cross_entropy_with_logits", reduction)
    return BCEWithLogits.apply(logits, targets, reduction=reduction)


# ===== regression ==============================================================================
class MSELoss(Op):
    def forward(self, pred, target, reduction):
        self.diff, self.reduction = pred - target, reduction
        return _reduce(self.diff * self.diff, reduction)

    def backward(self, dy):
        g = 2 * _unreduce(dy, self.diff.shape, self.reduction) * self.diff
        return (g if self.needs_grad[0] else None, -g if self.needs_grad[1] else None)


def mse_loss(pred, target, reduction: str = "mean") -> Tensor:
    """Mean squared error.

    loss = (pred - target)^2 elementwise, then reduced.

    pred, target: the same shape. Returns a scalar ('mean', 'sum') or that shape ('none').

    >>> mse_loss(np.ones((2, 3)), np.zeros((2, 3))).data
    array(1.)
    """
    pred, target = as_tensor(pred), as_tensor(target)
    _check_same_shape("mse_loss", pred, target, ("pred", "target"))
    return MSELoss.apply(pred, target, reduction=_check_reduction("mse_loss", reduction))
