"""Classification metrics on NumPy arrays: accuracy, top-k error, confusion matrix.

Every function takes the scores (logits or probabilities, (N, K)) or predicted labels (N,) and
the true labels (N,) and returns plain numbers or arrays.
"""

from __future__ import annotations

import numpy as np


def _labels(labels, n: int, op: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{op}: labels must be {n} integers, got an array of shape "
                         f"{labels.shape} and dtype {labels.dtype}")
    return labels


def _predictions(scores_or_predictions) -> np.ndarray:
    """(N, K) scores -> (N,) argmax; (N,) predictions pass through."""
    array = np.asarray(scores_or_predictions)
    return array.argmax(axis=-1) if array.ndim == 2 else array


def accuracy(scores_or_predictions, labels) -> float:
    """Fraction of examples whose predicted class is the true one, in [0, 1].

    scores_or_predictions: (N, K) scores or (N,) predicted labels; labels: (N,) integers.

    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    predictions = _predictions(scores_or_predictions)
    labels = _labels(labels, len(predictions), "accuracy")
    return float(np.mean(predictions == labels)) if len(labels) else 0.0


def top_k_error(scores, labels, k: int = 5) -> float:
    """ILSVRC's top-k error: fraction of examples whose true class is not among the k best scores.

    scores: (N, K); labels: (N,) integers. k is capped at K (with K <= k the error is 0).
    Ties are broken by class index, as argsort does.

    >>> top_k_error(np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]), np.array([1, 2]), k=2)
    0.5
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"top_k_error: scores must be (N, K), got shape {scores.shape}")
    labels = _labels(labels, len(scores), "top_k_error")
    if not len(labels):
        return 0.0
    k = min(int(k), scores.shape[1])
    # the true class is in the top k when fewer than k classes score strictly higher
    true_scores = np.take_along_axis(scores, labels[:, None], axis=1)  # (N, 1)
    rank = (scores > true_scores).sum(axis=1)  # (N,) classes that beat the true one
    return float(np.mean(rank >= k))


def confusion_matrix(scores_or_predictions, labels, num_classes: int | None = None) -> np.ndarray:
    """Counts C[i, j] of examples of true class i predicted as class j: int64 (K, K).

    num_classes defaults to K of the scores, or 1 + the largest label or prediction.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), num_classes=2).tolist()
    [[1, 1], [0, 1]]
    """
    array = np.asarray(scores_or_predictions)
    predictions = _predictions(array)
    labels = _labels(labels, len(predictions), "confusion_matrix")
    if num_classes is None:
        num_classes = array.shape[1] if array.ndim == 2 else \
            int(max(predictions.max(initial=-1), labels.max(initial=-1))) + 1
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix: C[i, i] / sum_j C[i, j] (NaN if no example).

    >>> per_class_accuracy(np.array([[3, 1], [0, 2]])).tolist()
    [0.75, 1.0]
    """
    confusion = np.asarray(confusion)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diagonal(confusion) / totals
