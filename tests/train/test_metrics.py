import numpy as np
import pytest
import torch

from striate.train.metrics import accuracy, confusion_matrix, per_class_accuracy, top_k_error


def test_accuracy_from_scores_and_predictions(rng):
    scores = rng.standard_normal((50, 7))
    labels = rng.integers(0, 7, 50)
    expected = np.mean(scores.argmax(1) == labels)
    assert accuracy(scores, labels) == pytest.approx(expected)
    assert accuracy(scores.argmax(1), labels) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_top_k_error_matches_torch_topk(rng, k):
    scores = rng.standard_normal((200, 10))
    labels = rng.integers(0, 10, 200)
    top = torch.topk(torch.from_numpy(scores), k, dim=1).indices.numpy()
    expected = 1 - np.mean((top == labels[:, None]).any(axis=1))
    assert top_k_error(scores, labels, k) == pytest.approx(expected)


def test_top1_error_is_one_minus_accuracy(rng):
    scores = rng.standard_normal((64, 5))
    labels = rng.integers(0, 5, 64)
    assert top_k_error(scores, labels, 1) == pytest.approx(1 - accuracy(scores, labels))


def test_top_k_with_fewer_classes_than_k_is_zero():
    assert top_k_error(np.array([[0.1, 0.9, 0.3]]), np.array([0]), k=5) == 0.0


def test_confusion_matrix_counts_and_per_class_accuracy():
    labels = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 2, 2])
    matrix = confusion_matrix(predicted, labels, num_classes=4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 2, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    recall = per_class_accuracy(matrix)
    assert recall[:3].tolist() == [0.5, 2 / 3, 1.0]
    assert np.isnan(recall[3])  # no example of class 3


def test_confusion_matrix_from_scores_uses_score_width(rng):
    scores = rng.standard_normal((20, 6))
    labels = rng.integers(0, 3, 20)
    matrix = confusion_matrix(scores, labels)
    assert matrix.shape == (6, 6) and matrix.sum() == 20
    assert np.trace(matrix) == np.sum(scores.argmax(1) == labels)


def test_bad_labels_are_rejected():
    with pytest.raises(ValueError, match="accuracy: labels must be 3 integers"):
        accuracy(np.zeros((3, 2)), np.array([0.5, 1.0, 0.0]))
    with pytest.raises(ValueError, match="top_k_error: scores must be"):
        top_k_error(np.zeros(3), np.array([0, 1, 2]))
