"""What the train, evaluate and predict commands share: the exit codes, a checkpoint and its
model, and the preprocessing of an image data set for a model (`striate.cli`,
`striate.cli_train`)."""

from __future__ import annotations

import numpy as np

MNIST_STYLE_DATASETS = ("bundled", "mnist")

# The command line's exit codes (besides 0): a user error, a diverged run, Ctrl-C.
EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


def read_checkpoint_model(path: str):
    from .train.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(path)
    model = checkpoint.build_model()
    return checkpoint, model


def stored_image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(H, W, C) of a batch (N, H, W) or (N, H, W, C)."""
    return (*images.shape[1:3], images.shape[3] if images.ndim == 4 else 1)


# Images at least this fraction of the model's native size are zero-padded up to it (LeNet-5's
# 28 -> 32, as in the paper); smaller ones would leave the model looking mostly at padding.
PAD_AT_LEAST = 0.75


def default_preprocessing(images: np.ndarray, model_shape):
    """ToFloat, zero padding up to the model's native size if the images are a little smaller
    (LeNet-5's 28 -> 32), and Normalize with the training images' per-channel mean and std."""
    from .data import transforms as T

    h, w, c = stored_image_shape(images)
    steps = [T.ToFloat()]
    if model_shape is not None and len(model_shape) == 3 and c == model_shape[2] and \
            (h, w) != tuple(model_shape[:2]) and h <= model_shape[0] and w <= model_shape[1] \
            and min(h / model_shape[0], w / model_shape[1]) >= PAD_AT_LEAST:
        dh, dw = model_shape[0] - h, model_shape[1] - w
        steps.append(T.Pad(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2))))
    sample = images[:2000].reshape(-1, c).astype(np.float64) / 255.0
    mean = [round(float(v), 4) for v in sample.mean(axis=0)]
    std = [round(max(float(v), 1e-3), 4) for v in sample.std(axis=0)]
    steps.append(T.Normalize(mean, std))
    return T.Compose(steps)


def model_input_shape(images: np.ndarray, preprocessing) -> tuple[int, ...]:
    return tuple(preprocessing(images[:1]).shape[1:])
