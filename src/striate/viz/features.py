"""What a network learned: the filters of a convolution layer, the feature maps of any layer for
one input (low-, mid- and high-level side by side), and the receptive field of every conv and
pooling layer of a model.

Intermediate outputs are read with forward hooks (`analysis.trace.hooked`), attached for the
duration of a `with` block and removed afterwards, even when the forward pass raises: any model
whose layers are listed by `named_modules()` works, Sequential or not, and Grad-CAM gets the
captured output while it is still in the graph. Receptive fields come from
`analysis.receptive_field`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from .. import arith
from ..analysis.receptive_field import receptive_field
from ..analysis.trace import find_layer, hooked, named_modules
from ..tensor import Tensor, no_grad
from . import _plot
from .explain import receptive_field_plot

__all__ = ["LayerWindow", "capture", "conv_filters", "feature_levels", "feature_maps",
           "model_receptive_fields"]

_BATCH = 256  # images per forward pass when a whole test set is classified


# ---------------------------------------------------------------------------------------------
# Models: layers by name, captured outputs, inference mode


def _kernel(module) -> np.ndarray | None:
    """A layer's convolution kernel (*k, C_in/groups, C_out): `kernel()` where the layer packs
    its weights (LeNet-5's C3 and its connection table), else `weight`; None if it has none."""
    w = module.kernel() if callable(getattr(module, "kernel", None)) else \
        getattr(module, "weight", None)
    return w.data if isinstance(w, Tensor) else None


def _is_conv(module) -> bool:
    """A convolution layer: a kernel of rank >= 3 ((*k, C_in/groups, C_out)), not transposed."""
    if not hasattr(module, "kernel_size") or "Transpose" in type(module).__name__:
        return False
    w = _kernel(module)
    return w is not None and w.ndim >= 3


def conv_layer_names(model, op: str = "conv_layer_names") -> list[str]:
    """Names of the model's convolution layers, in registration order."""
    return [n for n, m in named_modules(model, op).items() if n and _is_conv(m)]


@contextlib.contextmanager
def capture(model, names: Sequence[str], op: str = "capture") -> Iterator[dict[str, Tensor]]:
    """Record the output Tensor of each named layer during the forward passes run inside the
    block: yields a dict name -> output of that layer's latest call (still in the graph, so
    `retain_grad()` on it keeps its gradient).

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> with capture(lenet, ["pool1"]) as seen:
    ...     _ = lenet(np.zeros((2, 28, 28, 1), np.float32))
    >>> seen["pool1"].shape
    (2, 14, 14, 6)
    """
    modules = {n: find_layer(model, n, op) for n in names}
    names_of: dict[int, list[str]] = {}
    for name, module in modules.items():
        names_of.setdefault(id(module), []).append(name)
    seen: dict[str, Tensor] = {}

    def record(module, inputs, output):
        for name in names_of[id(module)]:
            seen[name] = output

    with hooked(modules.values(), record):
        yield seen


@contextlib.contextmanager
def inference(model) -> Iterator[None]:
    """Eval mode (dropout off, batch norm on running statistics) with the parameters frozen, so
    that a backward pass computes the input's gradient only; both restored afterwards."""
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    flags = [p.requires_grad for p in params]
    training = getattr(model, "training", None)
    if hasattr(model, "eval"):
        model.eval()
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad = flag
        if training is not None and hasattr(model, "train"):
            model.train(training)


def as_images(images, op: str) -> np.ndarray:
    """A float batch (N, H, W, C) from images: uint8 is scaled to [0, 1]; (H, W) and (H, W, C)
    with C in (1, 3) are one image; (N, H, W) is a greyscale batch."""
    x = images.data if isinstance(images, Tensor) else np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255)
    elif x.dtype.kind != "f":
        x = x.astype(np.float32)
    if x.ndim == 2:
        x = x[None, :, :, None]
    elif x.ndim == 3:
        x = x[None] if x.shape[-1] in (1, 3) else x[..., None]
    if x.ndim != 4:
        raise ValueError(
            f"{op}: images must be (H, W), (H, W, C), (N, H, W) or (N, H, W, C), got shape "
            f"{np.shape(x)}"
        )
    return x


def predict_logits(model, images: np.ndarray) -> np.ndarray:
    """The model's outputs (N, classes) for a float batch, in eval mode, in chunks."""
    with inference(model), no_grad():
        return np.concatenate([model(Tensor(images[i:i + _BATCH])).data
                               for i in range(0, len(images), _BATCH)])


def _layer_outputs(model, x: np.ndarray, names: Sequence[str], op: str) -> dict[str, np.ndarray]:
    with inference(model), no_grad(), capture(model, names, op) as seen:
        model(Tensor(x))
    missing = [n for n in names if n not in seen]
    if missing:
        raise ValueError(f"{op}: layers {missing} were not called by the model's forward pass")
    return {n: seen[n].data for n in names}


# ---------------------------------------------------------------------------------------------
# Filters and feature maps


def _grid_shape(count: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def _tile_panels(fig, panels, rows, cols, symmetric: bool, label: str = "weight") -> None:
    """Draw each (title, 2-D or RGB array) panel into a rows x cols grid of the figure;
    symmetric: one diverging colour scale centred at 0 for all panels (signed weights), shown
    by a colour bar labelled `label`."""
    bound = max((float(np.abs(image).max()) for _, image in panels), default=0.0) or 1.0
    axes, drawn = [], None
    for n, (title, image) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, n + 1)
        if symmetric:
            drawn = ax.imshow(image, cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            ax.imshow(image)
        ax.set_title(title, fontsize=7)
        ax.set_axis_off()
        axes.append(ax)
    if symmetric and drawn is not None:
        bar = fig.colorbar(drawn, ax=axes, shrink=0.8)
        bar.set_label(f"{label} (red positive, blue negative, white 0)", fontsize=8)


def conv_filters(model, layer: str | None = None, path: str | os.PathLike | None = None,
                 limit: int = 64) -> np.ndarray:
    """The kernel of one convolution layer (the first by default), drawn one filter per panel.

    w: (kH, kW, C_in/groups, C_out). A panel shows filter f as an RGB image when C_in is 3
    (each filter scaled to [0, 1] on its own), else channel 0 on a diverging scale centred at 0.
    Returns the kernel; with path, writes a PNG of at most `limit` filters.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> conv_filters(lenet, "conv2").shape
    (5, 5, 6, 16)
    """
    op = "conv_filters"
    names = conv_layer_names(model, op)
    if not names:
        raise ValueError(f"{op}: model has no convolution layer (is it built? call "
                         f"model.build(input_shape) first)")
    name = names[0] if layer is None else layer
    module = find_layer(model, name, op)
    if not _is_conv(module):
        raise ValueError(f"{op}: layer {name!r} is a {type(module).__name__}, not a "
                         f"convolution; convolution layers: {names}")
    w = _kernel(module)
    if path is not None:
        if w.ndim != 4:
            raise ValueError(f"{op}: drawing needs a 2-D convolution kernel (kH, kW, C_in, "
                             f"C_out), layer {name!r} has shape {w.shape}")
        count = min(w.shape[-1], limit)
        rgb = w.shape[2] == 3
        panels = []
        for f in range(count):
            if rgb:
                k = w[..., f]
                span = float(k.max() - k.min()) or 1.0
                panels.append((f"{f}", (k - k.min()) / span))
            else:
                panels.append((f"{f}", w[:, :, 0, f]))
        rows, cols = _grid_shape(count)
        fig = _plot.figure(figsize=(1.3 * cols + 0.4, 1.3 * rows + 0.6), layout="constrained")
        fig.suptitle(f"{name}: {w.shape[-1]} filters of {w.shape[0]}x{w.shape[1]}x{w.shape[2]}"
                     + ("\n(colours: each filter's RGB weights, scaled to [0, 1] per filter)"
                        if rgb else "\n(weights on input channel 0; panel = filter number)"),
                     fontsize=9)
        _tile_panels(fig, panels, rows, cols, symmetric=not rgb)
        _plot.save_figure(fig, path)
    return w


def feature_maps(model, image, layers: Sequence[str] | None = None,
                 path: str | os.PathLike | None = None, limit: int = 16) -> dict[str, np.ndarray]:
    """The activations of the named layers (every convolution layer by default) for one input.

    image: (H, W), (H, W, C) or a batch of one; uint8 is scaled to [0, 1]. Returns name ->
    output of that layer for the image (the batch axis dropped): (H_l, W_l, C_l) for spatial
    layers, (units,) for dense ones. With path, writes a PNG with one row per layer showing up
    to `limit` channels.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> feature_maps(lenet, np.zeros((28, 28)))["conv2"].shape
    (10, 10, 16)
    """
    op = "feature_maps"
    x = as_images(image, op)[:1]
    names = conv_layer_names(model, op) if layers is None else list(layers)
    if not names:
        raise ValueError(f"{op}: give layers; model has no convolution layer to default to")
    maps = {n: a[0] for n, a in _layer_outputs(model, x, names, op).items()}
    if path is not None:
        _plot_levels(x[0], [(n, maps[n]) for n in names], limit, path,
                     "Feature maps for one input")
    return maps


def feature_levels(model, image, path: str | os.PathLike | None = None,
                   limit: int = 8) -> dict[str, np.ndarray]:
    """Low-, mid- and high-level features side by side: the outputs of the first, the middle
    and the last convolution layer (fewer when the model has fewer) for one input.

    Returns {'low': (H_1, W_1, C_1), 'mid': ..., 'high': ...} keyed by level ('low' and 'high'
    for two convolution layers, 'low' for one); with path, writes
    a PNG with one row per level (layer name and shape in the row's label).

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> {k: v.shape for k, v in feature_levels(lenet, np.zeros((28, 28))).items()}
    {'low': (28, 28, 6), 'high': (10, 10, 16)}
    """
    op = "feature_levels"
    names = conv_layer_names(model, op)
    if not names:
        raise ValueError(f"{op}: model has no convolution layer")
    chosen = sorted({names[0], names[len(names) // 2], names[-1]}, key=names.index)
    levels_named = {1: ("low",), 2: ("low", "high"), 3: ("low", "mid", "high")}[len(chosen)]
    picks = dict(zip(levels_named, chosen, strict=True))
    x = as_images(image, op)[:1]
    outputs = _layer_outputs(model, x, list(picks.values()), op)
    levels = {level: outputs[n][0] for level, n in picks.items()}
    if path is not None:
        _plot_levels(x[0], [(f"{level}: {picks[level]}", levels[level]) for level in levels],
                     limit, path, "Low-, mid- and high-level features of one input")
    return levels


def _plot_levels(image: np.ndarray, rows: list[tuple[str, np.ndarray]], limit: int, path,
                 title: str) -> None:
    """One row per layer: the input first, then up to `limit` channels of the layer on one
    colour scale per row, with a colour bar. A layer whose maps are 1x1 (LeNet-5's C5) or
    that has no spatial axes (a dense layer) is drawn as a bar chart of its channels' values,
    labelled by channel: as squares they would all look alike."""
    cols = 2 + limit  # the input, the channels, the colour bar
    fig = _plot.figure(figsize=(1.2 * cols + 0.4, 1.5 * len(rows) + 0.7), layout="constrained")
    fig.suptitle(f"{title} (colour: the layer's output value, dark low, bright high)",
                 fontsize=10)
    fig_grid = fig.add_gridspec(len(rows), cols, width_ratios=[1] * (cols - 1) + [0.15])
    shown = image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1)
    for r, (label, act) in enumerate(rows):
        ax = fig.add_subplot(fig_grid[r, 0])
        ax.imshow(shown, cmap="gray")
        ax.set_title(label, fontsize=7, loc="left")
        ax.set_axis_off()
        values = act.reshape(-1) if act.ndim == 1 or act.shape[:-1] == (1, 1) else None
        if values is not None:
            ax = fig.add_subplot(fig_grid[r, 1:])
            channels = np.arange(values.size)
            ax.bar(channels, values, color=np.where(values >= 0, "tab:blue", "tab:red"))
            ax.axhline(0, color="black", linewidth=0.6)
            ax.set_xlabel("channel", fontsize=7)
            ax.set_ylabel("activation", fontsize=7)
            step = max(1, values.size // 20)
            ax.set_xticks(channels[::step])
            ax.tick_params(labelsize=6)
            ax.set_title(f"{label}: {values.size} channels of 1x1 maps, one bar each"
                         if act.ndim > 1 else f"{label}: {values.size} units, one bar each",
                         fontsize=7, loc="left")
            continue
        shown_channels = act[..., :limit]
        low, high = float(shown_channels.min()), float(shown_channels.max())
        drawn = None
        for c in range(shown_channels.shape[-1]):
            ax = fig.add_subplot(fig_grid[r, c + 1])
            drawn = ax.imshow(act[..., c], cmap="viridis", vmin=low, vmax=high or low + 1)
            ax.set_title(f"ch {c} {act.shape[0]}x{act.shape[1]}" if c == 0 else f"ch {c}",
                         fontsize=6)
            ax.set_axis_off()
        bar = fig.colorbar(drawn, cax=fig.add_subplot(fig_grid[r, cols - 1]))
        bar.set_label("activation", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    _plot.save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Receptive fields of a model


class LayerWindow(NamedTuple):
    """One conv or pooling layer's window along the height axis, as `arith.receptive_fields`
    takes it, plus the field it gives."""

    name: str
    kind: str
    kernel: int
    stride: int
    padding_start: int
    dilation: int
    field: arith.ReceptiveField


def _spec(window) -> tuple[int, int, int, int]:
    """(kernel, stride, padding_start, dilation) of a window along the height axis, as
    `arith.receptive_fields` takes a layer."""
    return window.kernel[0], window.stride[0], window.pads[0][0], window.dilation[0]


def model_receptive_fields(model, input_shape: Sequence[int],
                           path: str | os.PathLike | None = None) -> list[LayerWindow]:
    """The receptive field after every convolution and pooling layer of a model, in the order
    the forward pass calls them.

    size_out = size_in + d*(K-1)*jump_in; jump_out = jump_in*S (`arith.receptive_fields`,
    height axis), along the widest branch into each layer: where branches meet (a residual
    addition, an Inception concatenation) the field is the largest of theirs.
    input_shape: one input without the batch axis, e.g. (28, 28, 1); a batch of zeros of that
    shape is run once to find the order, the branches, and each layer's input size (which sets
    its 'same' padding). With path, writes the `receptive_field_plot` PNG of the chain of
    layers that ends at the last one.

    >>> from striate import models
    >>> lenet = models.create("lenet5_modern")
    >>> [w.field.size for w in model_receptive_fields(lenet, (28, 28, 1))]
    [5, 6, 14, 16]
    """
    op = "model_receptive_fields"
    shape = tuple(input_shape)
    if len(shape) < 2 or not all(arith._is_int(s) and s > 0 for s in shape):
        raise ValueError(f"{op}: input_shape must be positive ints without the batch axis, "
                         f"e.g. (28, 28, 1); got {input_shape!r}")
    modules = named_modules(model, op)
    # Exact windows are those of layers with a kernel or pool size (not global or adaptive
    # pooling, Flatten).
    rows = [r for r in receptive_field(model, shape) if r.window is not None and r.window.exact]
    if not rows:
        raise ValueError(f"{op}: model has no convolution or pooling layer with a window")
    result = []
    for row in rows:
        specs = [_spec(window) for _, window in row.chain]
        kind = "conv" if hasattr(modules[row.name], "kernel_size") else "pool"
        result.append(LayerWindow(row.name, kind, *specs[-1],
                                  arith.receptive_fields(specs)[-1]))
    if path is not None:
        chain = rows[-1].chain
        receptive_field_plot([_spec(window) for _, window in chain], path,
                             names=[name for name, _ in chain])
    return result
