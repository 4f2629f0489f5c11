"""Fooling networks (lecture 000): adversarial examples by the fast gradient sign method
(Goodfellow et al. 2015) and projected gradient descent (Madry et al. 2018), and images grown
from noise that a network classifies with > 99% confidence (Nguyen et al. 2015).

Images are floats in value_range ([0, 1] by default; uint8 input is scaled to it). Every
adversarial image stays within eps of its original in the max norm and inside value_range.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import arith
from .. import functional as F
from ..tensor import Tensor
from . import _plot
from .features import as_images, inference, predict_logits

__all__ = ["AttackReport", "attack_report", "fgsm", "fooling_images", "pgd"]

_METHODS = ("fgsm", "pgd")


def _check_eps(op: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.number)) or not (
            0 <= eps < math.inf):
        raise ValueError(f"{op}: eps must be a number >= 0, got {eps!r}")
    return float(eps)


def _labels(op: str, labels, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise ValueError(f"{op}: labels must be {n} integers (one per image), got shape "
                         f"{y.shape} and dtype {y.dtype}")
    return y.astype(np.int64)


def _ball(x: np.ndarray, eps: float, value_range) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (low, high) of the eps-ball around x in the max norm, within value_range.

    x -/+ eps is taken in float64 and rounded inwards to x's dtype (a plain float32 x - eps can
    land a hair outside the ball), so that |x_adv - x| <= eps holds exactly."""
    wide = x.astype(np.float64)
    bounds = []
    for sign, limit in ((-1, value_range[0]), (1, value_range[1])):
        exact = wide + sign * eps
        b = exact.astype(x.dtype)
        outside = (b < exact) if sign < 0 else (b > exact)
        b = np.where(outside, np.nextafter(b, x), b)
        bounds.append(np.maximum(b, x.dtype.type(limit)) if sign < 0
                      else np.minimum(b, x.dtype.type(limit)))
    return bounds[0], bounds[1]


def _loss_gradient(model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(sum of the cross-entropy losses)/dx, per image unscaled by the batch size."""
    xt = Tensor(x, requires_grad=True)
    F.cross_entropy(model(xt), y, reduction="sum").backward()
    return xt.grad


def fgsm(model, images, labels, eps: float,
         value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Fast gradient sign method: one step of size eps up the loss.

    x_adv = clip(x + eps * sign(d loss(x, y) / dx), value_range)

    images: (N, H, W[, C]) (uint8 scaled to [0, 1]); labels: (N,) ints. Returns x_adv
    (N, H, W, C), |x_adv - x|_inf <= eps.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> fgsm(lenet, np.zeros((2, 28, 28)), [3, 5], eps=0.1).shape
    (2, 28, 28, 1)
    """
    op = "fgsm"
    eps = _check_eps(op, eps)
    x = as_images(images, op)
    y = _labels(op, labels, len(x))
    with inference(model):
        g = _loss_gradient(model, x, y)
    low, high = _ball(x, eps, value_range)
    return np.clip(x + x.dtype.type(eps) * np.sign(g), low, high)


def pgd(model, images, labels, eps: float, steps: int = 10, step_size: float | None = None,
        random_start: bool = True, value_range: tuple[float, float] = (0.0, 1.0),
        seed: int = 0) -> np.ndarray:
    """Projected gradient descent (iterated FGSM): small signed steps, each projected back onto
    the eps-ball around x and the valid pixel range.

    x_0 = x (+ U(-eps, eps) noise if random_start); x_{t+1} = P(x_t + a * sign(d loss/dx_t)),
    P(z) = clip(clip(z, x - eps, x + eps), value_range); a = step_size or 2.5 * eps / steps.

    images: (N, H, W[, C]); labels: (N,) ints. Returns x_adv (N, H, W, C).

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> pgd(lenet, np.zeros((2, 28, 28)), [3, 5], eps=0.1, steps=2).shape
    (2, 28, 28, 1)
    """
    op = "pgd"
    eps = _check_eps(op, eps)
    if not arith._is_int(steps) or steps < 1:
        raise ValueError(f"{op}: steps must be an int >= 1, got {steps!r}")
    x = as_images(images, op)
    y = _labels(op, labels, len(x))
    dtype = x.dtype.type
    alpha = dtype(2.5 * eps / steps if step_size is None else step_size)
    low, high = _ball(x, eps, value_range)
    adv = x.copy()
    if random_start:
        noise = np.random.default_rng(seed).uniform(-eps, eps, size=x.shape).astype(x.dtype)
        adv = np.clip(adv + noise, low, high)
    with inference(model):
        for _ in range(steps):
            adv = np.clip(adv + alpha * np.sign(_loss_gradient(model, adv, y)), low, high)
    return adv


@dataclass(frozen=True)
class AttackReport:
    """Clean vs adversarial accuracy of one attack on a set of images."""

    method: str
    eps: float
    count: int
    clean_accuracy: float
    adversarial_accuracy: float
    labels: np.ndarray = field(repr=False)
    clean_predictions: np.ndarray = field(repr=False)
    adversarial_predictions: np.ndarray = field(repr=False)
    images: np.ndarray = field(repr=False)
    adversarial: np.ndarray = field(repr=False)

    @property
    def text(self) -> str:
        return (f"{self.method} eps={self.eps:g} on {self.count} images: clean accuracy "
                f"{self.clean_accuracy:.2%}, adversarial accuracy "
                f"{self.adversarial_accuracy:.2%} (drop "
                f"{self.clean_accuracy - self.adversarial_accuracy:.2%})")

    def __str__(self) -> str:
        return self.text


def attack_report(model, images, labels, eps: float, method: str = "fgsm",
                  path: str | os.PathLike | None = None, columns: int = 8,
                  **options) -> AttackReport:
    """Attack every image and compare the model's accuracy before and after.

    method: 'fgsm' or 'pgd' (options go to `pgd`: steps, step_size, random_start, seed).
    With path, writes a PNG grid of the first `columns` images: original, perturbation
    (x_adv - x, on a diverging scale of +-eps) and adversarial, each titled with the prediction.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> attack_report(lenet, np.zeros((2, 28, 28)), [3, 5], 0.1).adversarial.shape
    (2, 28, 28, 1)
    """
    op = "attack_report"
    if method not in _METHODS:
        raise ValueError(f"{op}: method must be one of {_METHODS}, got {method!r}")
    x = as_images(images, op)
    y = _labels(op, labels, len(x))
    if len(x) == 0:
        raise ValueError(f"{op}: images is empty")
    adv = fgsm(model, x, y, eps) if method == "fgsm" else pgd(model, x, y, eps, **options)
    clean = predict_logits(model, x).argmax(axis=1)
    fooled = predict_logits(model, adv).argmax(axis=1)
    report = AttackReport(method=method, eps=float(eps), count=len(x),
                          clean_accuracy=float((clean == y).mean()),
                          adversarial_accuracy=float((fooled == y).mean()), labels=y,
                          clean_predictions=clean, adversarial_predictions=fooled, images=x,
                          adversarial=adv)
    if path is not None:
        _plot_attack(report, min(columns, len(x)), path)
    return report


def _image(ax, image, **kwargs) -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], **({"cmap": "gray", "vmin": 0, "vmax": 1} | kwargs))
    else:
        ax.imshow(np.clip(image, 0, 1) if not kwargs else image.mean(axis=-1), **kwargs)
    ax.set_axis_off()


def _plot_attack(r: AttackReport, cols: int, path) -> None:
    fig = _plot.figure(figsize=(1.4 * cols + 0.8, 5.0), layout="constrained")
    fig.suptitle(r.text, fontsize=9)
    bound = r.eps or 1.0
    for c in range(cols):
        rows = (
            (r.images[c], f"label {r.labels[c]}\npred {r.clean_predictions[c]}", {}),
            (r.adversarial[c] - r.images[c], "perturbation",
             {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}),
            (r.adversarial[c], f"adversarial\npred {r.adversarial_predictions[c]}", {}),
        )
        for row, (image, title, kwargs) in enumerate(rows):
            ax = fig.add_subplot(3, cols, row * cols + c + 1)
            _image(ax, image, **kwargs)
            ax.set_title(title, fontsize=7)
    _plot.save_figure(fig, path)


def fooling_images(model, classes: Sequence[int], input_shape: Sequence[int],
                   confidence: float = 0.99, steps: int = 500, lr: float = 0.02,
                   value_range: tuple[float, float] = (0.0, 1.0), seed: int = 0,
                   path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images grown from uniform noise by gradient ascent on log p(class | x) until the model
    is more than `confidence` sure of each class (Nguyen et al. 2015).

    x <- clip(x + lr * g / mean|g|), g = d log softmax(model(x))[class] / dx, for each image
    still below the confidence, at most `steps` times.

    classes: the class of each image; input_shape: (H, W, C). Returns (images (K, H, W, C),
    confidences (K,)); an image that did not get there in `steps` keeps its best try (check
    the confidences). With path, writes a PNG row of the images titled with class and
    confidence.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> fooling_images(lenet, [0, 1], (28, 28, 1), steps=2)[0].shape
    (2, 28, 28, 1)
    """
    op = "fooling_images"
    targets = np.asarray(classes)
    if targets.ndim != 1 or targets.size == 0 or targets.dtype.kind not in "iu":
        raise ValueError(f"{op}: classes must be a non-empty list of ints, got {classes!r}")
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(arith._is_int(s) and s > 0 for s in shape):
        raise ValueError(f"{op}: input_shape must be (H, W, C) positive ints, got "
                         f"{input_shape!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"{op}: confidence must be in (0, 1), got {confidence!r}")
    low, high = value_range
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(len(targets), *shape)).astype(np.float32)
    rows = np.arange(len(targets))
    with inference(model):
        for step in range(steps + 1):
            xt = Tensor(x, requires_grad=True)
            log_p = F.log_softmax(model(xt), axis=-1)
            if log_p.ndim != 2 or targets.max() >= log_p.shape[1] or targets.min() < 0:
                raise ValueError(f"{op}: classes must be in [0, {log_p.shape[-1]}), got "
                                 f"{targets.tolist()}")
            p = np.exp(log_p.data[rows, targets])
            todo = p <= confidence
            if not todo.any() or step == steps:
                break
            log_p[rows, targets].sum().backward()
            g = xt.grad
            scale = np.abs(g).mean(axis=(1, 2, 3), keepdims=True) + 1e-12
            update = lr * (high - low) * g / scale * todo[:, None, None, None]
            x = np.clip(x + update, low, high).astype(np.float32)
    if path is not None:
        cols = len(targets)
        fig = _plot.figure(figsize=(1.5 * cols + 0.6, 2.2), layout="constrained")
        fig.suptitle(f"Fooling images grown from noise (target confidence > {confidence:.0%})",
                     fontsize=9)
        for c in range(cols):
            ax = fig.add_subplot(1, cols, c + 1)
            _image(ax, x[c])
            ax.set_title(f"class {targets[c]}\n{p[c]:.2%}", fontsize=7)
        _plot.save_figure(fig, path)
    return x, p
