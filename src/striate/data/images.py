"""Single pictures into a data set's conventions: `mnist_style` turns a photo or scan of one
handwritten digit into an image like MNIST's, so a model trained on MNIST can read it.
"""

from __future__ import annotations

import numpy as np

from .folder import _pillow


def mnist_style(gray: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """A grey-scale picture of one digit (H, W) uint8 -> MNIST's convention, size (H_out, W_out)
    uint8 (default (28, 28)).

    Light ink on a dark background: if the border (the outer 10% of rows and columns) is
    brighter than mid-grey, the picture is dark-on-light (pen on paper) and is inverted. The
    background level (the border's median) is subtracted, the ink's bounding box is scaled so
    its longer side is 20/28 of the smaller output side (20 pixels in 28x28), and placed so that
    its centre of mass is at the centre. A picture without ink gives zeros.

    >>> picture = np.full((50, 40), 255, np.uint8); picture[10:40, 18:22] = 0
    >>> mnist_style(picture).shape
    (28, 28)
    """
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f"mnist_style: gray must be one grey-scale picture (H, W), got shape "
                         f"{gray.shape}")
    Image = _pillow("mnist_style")
    a = gray.astype(np.float32)
    h, w = a.shape
    bh, bw = max(1, h // 10), max(1, w // 10)
    border = np.concatenate([a[:bh].ravel(), a[-bh:].ravel(), a[:, :bw].ravel(),
                             a[:, -bw:].ravel()])
    if border.mean() > 127.5:
        a, border = 255 - a, 255 - border
    a = np.clip(a - np.median(border), 0, None)
    if a.max() <= 0:
        return np.zeros(size, np.uint8)
    a *= 255 / a.max()
    rows, cols = np.nonzero(a > 0.2 * 255)
    crop = a[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box = round(min(size) * 20 / 28)
    scale = box / max(crop.shape)
    new = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))  # (W, H)
    digit = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize(new, Image.Resampling.LANCZOS),
                       np.float32)
    total = digit.sum()
    cy = (digit.sum(axis=1) @ np.arange(digit.shape[0])) / total
    cx = (digit.sum(axis=0) @ np.arange(digit.shape[1])) / total
    top = int(np.clip(round((size[0] - 1) / 2 - cy), 0, size[0] - digit.shape[0]))
    left = int(np.clip(round((size[1] - 1) / 2 - cx), 0, size[1] - digit.shape[1]))
    out = np.zeros(size, np.float32)
    out[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
