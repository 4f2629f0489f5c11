"""Pictures of a training run: learning curves and the confusion matrix, as PNG files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..viz._plot import figure, save_figure


def plot_history(history: dict, path: str | os.PathLike) -> Path:
    """Loss and accuracy per epoch, training against validation, side by side; write a PNG."""
    fig = figure(figsize=(10, 4), layout="constrained")
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = history.get(f"{split}/{metric}")
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, style, markersize=3,
                        label="training" if split == "train" else "validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def plot_confusion(confusion: np.ndarray, path: str | os.PathLike,
                   class_names: Sequence[str] | None = None, title: str = "") -> Path:
    """The confusion matrix (rows: true class, columns: predicted) with counts; write a PNG."""
    confusion = np.asarray(confusion)
    k = len(confusion)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    size = max(4.0, 0.45 * k + 2)
    fig = figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(confusion, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), names, rotation=90 if k > 10 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(confusion) / max(confusion.sum(), 1)
    ax.set_title(f"{title}accuracy {accuracy:.2%} ({confusion.sum()} images)")
    if k <= 20:
        threshold = confusion.max() / 2
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if confusion[i, j] > threshold else "black")
    return save_figure(fig, path)
