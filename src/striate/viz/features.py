"""What a network learned: the filters of a convolution layer, the feature maps of any layer for
one input (low-, mid- and high-level side by side), and the receptive field of every conv and
pooling layer of a model.

Intermediate outputs are read with `Module.register_forward_hook`, attached for the duration of
a `with` block and removed afterwards, even when the forward pass raises: any model whose layers
are listed by `named_modules()` works, Sequential or not, and Grad-CAM gets the captured output
while it is still in the graph.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from .. import arith
from ..tensor import Tensor, enable_grad, no_grad
from . import _plot
from .explain import receptive_field_plot

__all__ = ["LayerWindow", "capture", "conv_filters", "feature_levels", "feature_maps",
           "model_receptive_fields"]

_BATCH = 256  # images per forward pass when a whole test set is classified


# ---------------------------------------------------------------------------------------------
# Models: layers by name, captured outputs, inference mode


def _named_modules(model, op: str) -> dict[str, object]:
    if not hasattr(model, "named_modules"):
        raise TypeError(
            f"{op}: model must be a striate.nn.Module (with named_modules()), got "
            f"{type(model).__name__}"
        )
    return dict(model.named_modules())


def find_layer(model, name: str, op: str):
    """The submodule called `name` (a dotted path as in named_modules()); a ValueError lists
    the names there are."""
    modules = _named_modules(model, op)
    if name not in modules or name == "":
        names = ", ".join(repr(n) for n in modules if n)
        raise ValueError(f"{op}: model has no layer {name!r}; its layers are {names}")
    return modules[name]


def _is_conv(module) -> bool:
    """A convolution layer: a kernel of rank >= 3 ((*k, C_in/groups, C_out)), not transposed."""
    w = getattr(module, "weight", None)
    return (hasattr(module, "kernel_size") and isinstance(w, Tensor) and w.ndim >= 3
            and "Transpose" not in type(module).__name__)


def conv_layer_names(model, op: str = "conv_layer_names") -> list[str]:
    """Names of the model's convolution layers, in registration order."""
    return [n for n, m in _named_modules(model, op).items() if n and _is_conv(m)]


@contextlib.contextmanager
def _hooked(modules: dict[str, object], make_hook) -> Iterator[None]:
    """Attach make_hook(name) as a forward hook of each named module inside the block."""
    with contextlib.ExitStack() as stack:
        for name, module in modules.items():
            stack.enter_context(module.register_forward_hook(make_hook(name)))
        yield


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
    seen: dict[str, Tensor] = {}

    def make_hook(name):
        def record(module, inputs, output):
            seen[name] = output
        return record

    with _hooked(modules, make_hook):
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


def _tile_panels(fig, panels, rows, cols, symmetric: bool) -> None:
    """Draw each (title, 2-D or RGB array) panel into a rows x cols grid of the figure;
    symmetric: a diverging colour scale centred at 0 (signed weights)."""
    for n, (title, image) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, n + 1)
        if symmetric:
            bound = float(np.abs(image).max()) or 1.0
            ax.imshow(image, cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            ax.imshow(image)
        ax.set_title(title, fontsize=7)
        ax.set_axis_off()


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
    w = module.weight.data
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
                     + ("" if rgb else " (input channel 0)"), fontsize=9)
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
    """One row per layer: the input first, then up to `limit` channels of the layer."""
    cols = 1 + limit
    fig = _plot.figure(figsize=(1.2 * cols + 0.4, 1.35 * len(rows) + 0.6), layout="constrained")
    fig.suptitle(title, fontsize=10)
    shown = image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1)
    for r, (label, act) in enumerate(rows):
        ax = fig.add_subplot(len(rows), cols, r * cols + 1)
        ax.imshow(shown, cmap="gray")
        ax.set_title(label, fontsize=7, loc="left")
        ax.set_axis_off()
        act = act.reshape(1, 1, -1) if act.ndim == 1 else act
        for c in range(min(limit, act.shape[-1])):
            ax = fig.add_subplot(len(rows), cols, r * cols + c + 2)
            ax.imshow(act[..., c], cmap="viridis")
            ax.set_title(f"ch {c} {act.shape[:-1]}" if c == 0 else f"ch {c}", fontsize=6)
            ax.set_axis_off()
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


def _window(module) -> tuple[str, object, object, object, object] | None:
    """(kind, kernel, stride, padding, dilation) of a windowed layer, None for other layers.

    Reads the Keras attribute names (kernel_size/pool_size, strides, padding, dilation_rate);
    a pooling layer's stride defaults to its window."""
    if "Transpose" in type(module).__name__:
        return None
    if getattr(module, "kernel_size", None) is not None:  # built or not yet
        kernel = module.kernel_size
        kind = "conv"
    elif getattr(module, "pool_size", None) is not None:
        kernel = module.pool_size
        kind = "pool"
    else:
        return None
    stride = getattr(module, "strides", None) or getattr(module, "stride", None) or (
        kernel if kind == "pool" else 1)
    dilation = getattr(module, "dilation_rate", None) or getattr(module, "dilation", 1)
    return kind, kernel, stride, getattr(module, "padding", "valid"), dilation


def _field(chain: tuple) -> arith.ReceptiveField:
    """The receptive field at the end of a chain of (name, kind, spec) windowed layers."""
    return arith.receptive_fields([spec for _, _, spec in chain])[-1] if chain else (
        arith.ReceptiveField(1, 1, 0.5))


def _widest_chain(tensor: Tensor, chains: dict[int, tuple]) -> tuple:
    """The chain of windowed layers behind `tensor` along the branch that sees the most input.

    Walks the autograd graph back (iteratively: deep models make long graphs) until it meets
    tensors whose chain is known (the input, outputs of windowed layers); an op with several
    inputs (a residual addition, an Inception concatenation) takes the widest of theirs.
    """
    stack = [(tensor, False)]
    while stack:
        t, expanded = stack.pop()
        if id(t) in chains:
            continue
        parents = [p for p in t.parents if p is not None and p.requires_grad]
        if not expanded:
            stack.append((t, True))
            stack.extend((p, False) for p in parents if id(p) not in chains)
            continue
        chains[id(t)] = max((chains[id(p)] for p in parents), key=lambda c: _field(c).size,
                            default=())
    return chains[id(tensor)]


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
    windows = {n: w for n, m in _named_modules(model, op).items()
               if n and (w := _window(m)) is not None}
    if not windows:
        raise ValueError(f"{op}: model has no convolution or pooling layer with a window")
    calls: list[tuple[str, Tensor, Tensor]] = []

    def make_hook(name):
        def record(module, inputs, output):
            calls.append((name, inputs[0], output))
        return record

    # The input requires a gradient so that the tape links every tensor to the ones it came
    # from; the parameters are frozen, so only those links are recorded.
    x = Tensor(np.zeros((1, *shape), dtype=np.float32), requires_grad=True)
    modules = {n: find_layer(model, n, op) for n in windows}
    with _hooked(modules, make_hook), inference(model), enable_grad():
        model(x)

    chains: dict[int, tuple] = {id(x): ()}
    result = []
    for name, inp, out in calls:
        kind, kernel, stride, padding, dilation = windows[name]
        size = tuple(inp.shape[1:-1])
        k, s, d = (arith.ntuple(v, len(size), what, op) for v, what in
                   ((kernel, "kernel"), (stride, "stride"), (dilation, "dilation")))
        _, pads = arith.conv_geometry(size, k, s, padding, d, op=op)
        spec = (k[0], s[0], pads[0][0], d[0])
        chain = (*_widest_chain(inp, chains), (name, kind, spec))
        chains[id(out)] = chain
        result.append(LayerWindow(name, kind, *spec, _field(chain)))
    if path is not None:
        receptive_field_plot([spec for _, _, spec in chain], path,
                             names=[name for name, _, _ in chain])
    return result
