"""Where a network looks and what excites it: saliency maps (Simonyan et al. 2014), Grad-CAM
(Selvaraju et al. 2017) and activation maximisation by regularised gradient ascent on the input
(Erhan et al. 2009; Yosinski et al. 2015 for the blur and jitter regularisers).

All three differentiate a score (a class's logit, or a channel's mean activation) with respect
to the input through the real autograd, in eval mode with the parameters frozen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .. import arith
from ..tensor import Tensor
from . import _plot
from .features import as_images, capture, conv_layer_names, find_layer, inference

__all__ = ["grad_cam", "maximize_activation", "saliency_map"]


def _class_score(out: Tensor, target: int | None, op: str) -> tuple[Tensor, int]:
    """The logit of `target` (the predicted class when None) of a batch of one."""
    if out.ndim != 2:
        raise ValueError(f"{op}: the model must return class scores (N, classes), got shape "
                         f"{out.shape}")
    if target is None:
        target = int(np.argmax(out.data[0]))
    if not arith._is_int(target) or not 0 <= target < out.shape[1]:
        raise ValueError(f"{op}: target must be a class in [0, {out.shape[1]}), got {target!r}")
    return out[0, int(target)], int(target)


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (h, w) map to size (H, W), pixel centres aligned."""
    for axis, n in enumerate(size):
        m = a.shape[axis]
        at = np.clip((np.arange(n) + 0.5) * m / n - 0.5, 0, m - 1)
        a = np.apply_along_axis(lambda v, at=at, m=m: np.interp(at, np.arange(m), v), axis, a)
    return a


def _shown(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An (H, W, C) image as matplotlib shows it: grey maps get a colour map."""
    if image.shape[-1] == 1:
        return image[..., 0], "gray"
    return np.clip(image, 0, 1), None


def _plot_pair(image, heat, titles, path, overlay: bool, label: str) -> None:
    """The input beside a heat map in [0, 1] (over the input if overlay), with a colour bar
    labelled `label`."""
    fig = _plot.figure(figsize=(7.0, 3.6), layout="constrained")
    shown, cmap = _shown(image)
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(shown, cmap=cmap)
    ax.set_title(titles[0], fontsize=9)
    ax.set_axis_off()
    ax = fig.add_subplot(1, 2, 2)
    if overlay:
        ax.imshow(shown, cmap=cmap)
        drawn = ax.imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
    else:
        drawn = ax.imshow(heat, cmap="hot", vmin=0, vmax=1)
    ax.set_title(titles[1], fontsize=9)
    ax.set_axis_off()
    bar = fig.colorbar(drawn, ax=ax, shrink=0.85)
    bar.set_label(label, fontsize=8)
    _plot.save_figure(fig, path)


def saliency_map(model, image, target: int | None = None,
                 path: str | os.PathLike | None = None) -> np.ndarray:
    """How much each pixel moves the class score: the gradient's magnitude, max over channels.

    S[i, j] = max_c |d y_target / d x[i, j, c]|   (y: the logits; target: predicted class if None)

    image: (H, W), (H, W, C) or a batch of one (uint8 scaled to [0, 1]). Returns S (H, W); with
    path, writes a PNG of the image beside its saliency map.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> saliency_map(lenet, np.zeros((28, 28))).shape
    (28, 28)
    """
    op = "saliency_map"
    x = Tensor(as_images(image, op)[:1], requires_grad=True)
    with inference(model):
        score, target = _class_score(model(x), target, op)
        score.backward()
    s = np.abs(x.grad[0]).max(axis=-1)  # (H, W)
    if path is not None:
        _plot_pair(x.data[0], s / (s.max() or 1),
                   ("input", f"saliency: which pixels move the score of class {target}"),
                   path, overlay=False,
                   label="|gradient of the class score| (1 = the largest)")
    return s


def grad_cam(model, image, target: int | None = None, layer: str | None = None,
             path: str | os.PathLike | None = None) -> np.ndarray:
    """Grad-CAM: the layer's channels weighted by their mean gradient, rectified, upsampled.

    alpha_c = mean_{i,j} d y_target / d A[i, j, c];  L = ReLU(sum_c alpha_c A[:, :, c]),
    resized bilinearly to the input and scaled to [0, 1]. layer: a layer with a spatial output
    (N, H_l, W_l, C) (by default the last convolution layer whose output is larger than 1x1).
    Returns L (H, W); with path, writes a PNG of the image and the map overlaid on it.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> grad_cam(lenet, np.zeros((28, 28)), target=3).shape
    (28, 28)
    """
    op = "grad_cam"
    x = as_images(image, op)[:1]
    candidates = conv_layer_names(model, op) if layer is None else [layer]
    if not candidates:
        raise ValueError(f"{op}: model has no convolution layer; give layer=")
    for name in candidates:
        find_layer(model, name, op)
    with inference(model), capture(model, candidates, op) as seen:
        out = model(Tensor(x, requires_grad=True))
        if layer is None:
            # the last convolution whose output is still a map (LeNet-5's C5 is 1x1)
            maps = [n for n in candidates if n in seen and seen[n].ndim == 4
                    and seen[n].shape[1] * seen[n].shape[2] > 1]
            layer = maps[-1] if maps else candidates[-1]
        if layer not in seen:
            raise ValueError(f"{op}: layer {layer!r} was not called by the forward pass")
        activation = seen[layer].retain_grad()
        if activation.ndim != 4:
            raise ValueError(f"{op}: layer {layer!r} must have a spatial output (N, H, W, C), "
                             f"got shape {activation.shape}")
        score, target = _class_score(out, target, op)
        score.backward()
    a, g = activation.data[0], activation.grad[0]  # (H_l, W_l, C) each
    cam = np.maximum((a * g.mean(axis=(0, 1))).sum(axis=-1), 0)  # (H_l, W_l)
    cam = _resize(cam.astype(np.float64), x.shape[1:3])
    cam = (cam / (cam.max() or 1)).astype(x.dtype)
    if path is not None:
        _plot_pair(x[0], cam, ("input", f"Grad-CAM: class {target}, layer '{layer}'"), path,
                   overlay=True, label=f"importance for class {target} (1 = the most)")
    return cam


def _blur(x: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur ([1, 2, 1]/4 on each axis) of (N, H, W, C), edges replicated."""
    for axis in (1, 2):
        p = np.pad(x, [(1, 1) if a == axis else (0, 0) for a in range(4)], mode="edge")
        n = x.shape[axis]
        x = (0.25 * p.take(range(0, n), axis) + 0.5 * p.take(range(1, n + 1), axis)
             + 0.25 * p.take(range(2, n + 2), axis))
    return x


def maximize_activation(
    model,
    input_shape: Sequence[int],
    target: int,
    layer: str | None = None,
    steps: int = 100,
    lr: float = 0.05,
    l2: float = 1e-2,
    blur_every: int = 4,
    jitter: int = 1,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    path: str | os.PathLike | None = None,
) -> tuple[np.ndarray, float]:
    """Activation maximisation: the input that excites one class or one channel most, by
    regularised gradient ascent from
    uniform noise in the middle half of value_range.

    score = y[target] (the class's logit) or mean_{i,j} A_layer[i, j, target] (a channel);
    each step: shift x by a random jitter in [-jitter, jitter] pixels, then
    x <- clip(x + lr * g / mean|g| - lr * l2 * x) (g = d score/dx of the jittered image,
    shifted back), blurred every `blur_every` steps (0: never), clipped to value_range.

    input_shape: one input without the batch axis, e.g. (28, 28, 1). Returns (image (H, W, C),
    final score); with path, writes a PNG of the image.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> maximize_activation(lenet, (28, 28, 1), target=3, steps=2)[0].shape
    (28, 28, 1)
    """
    op = "maximize_activation"
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(arith._is_int(s) and s > 0 for s in shape):
        raise ValueError(f"{op}: input_shape must be (H, W, C) positive ints, got "
                         f"{input_shape!r}")
    if not arith._is_int(steps) or steps < 1:
        raise ValueError(f"{op}: steps must be an int >= 1, got {steps!r}")
    if not arith._is_int(jitter) or jitter < 0:
        raise ValueError(f"{op}: jitter must be an int >= 0, got {jitter!r}")
    low, high = value_range
    rng = np.random.default_rng(seed)
    x = (low + (high - low) * rng.uniform(0.25, 0.75, size=(1, *shape))).astype(np.float32)
    if layer is not None:
        find_layer(model, layer, op)
    names = [] if layer is None else [layer]
    score = float("nan")
    with inference(model):
        for step in range(steps + 1):
            dy, dx = rng.integers(-jitter, jitter + 1, size=2) if step < steps else (0, 0)
            moved = Tensor(np.roll(x, (dy, dx), axis=(1, 2)), requires_grad=True)
            with capture(model, names, op) as seen:
                out = model(moved)
                if layer is None:
                    s, target = _class_score(out, target, op)
                else:
                    a = seen[layer]
                    if not arith._is_int(target) or not 0 <= target < a.shape[-1]:
                        raise ValueError(f"{op}: target must be a channel of {layer!r} in "
                                         f"[0, {a.shape[-1]}), got {target!r}")
                    s = a[..., int(target)].mean()
            score = s.item()
            if step == steps:  # the last pass only measures the finished image
                break
            s.backward()
            g = np.roll(moved.grad, (-dy, -dx), axis=(1, 2))
            x = x + lr * (high - low) * g / (np.abs(g).mean() + 1e-12) - lr * l2 * (x - low)
            if blur_every and (step + 1) % blur_every == 0:
                x = _blur(x)
            x = np.clip(x, low, high).astype(np.float32)
    if path is not None:
        fig = _plot.figure(figsize=(3.4, 3.6), layout="constrained")
        ax = fig.add_subplot()
        shown, cmap = _shown(x[0])
        ax.imshow(shown, cmap=cmap)
        what = f"class {target}" if layer is None else f"{layer} channel {target}"
        ax.set_title(f"maximises {what}\nscore {score:.3g}", fontsize=9)
        ax.set_axis_off()
        _plot.save_figure(fig, path)
    return x[0], score
