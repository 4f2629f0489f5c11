"""Receptive fields of a model's layers: how many input pixels one unit of each layer sees.

The field is followed tensor by tensor through one traced forward pass: the input has size 1 and
jump 1 on every spatial axis; a convolution or pooling window of K taps (dilation d) at stride S
turns (size, jump) into (size + d*(K - 1)*jump, jump*S) (`arith.receptive_fields`); a global or
adaptive pool, and a Flatten feeding a Dense layer, sees its whole input volume; layers without a
window (activations, batch norm, dense layers on vectors) keep it; a merge (a residual sum, a
concatenation) takes the largest field over its inputs, per axis. Sizes are not clipped to the
image: a deep unit's field can be larger than the (padded) input.

>>> from striate import nn
>>> model = nn.Sequential(nn.Conv2D(4, 3), nn.Conv2D(4, 3), nn.MaxPool2D(2), nn.Conv2D(4, 3))
>>> [(f.name, f.size, f.jump) for f in receptive_field(model, (16, 16, 1))]
[('0', (3, 3), (1, 1)), ('1', (5, 5), (1, 1)), ('2', (6, 6), (2, 2)), ('3', (10, 10), (2, 2))]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..arith import (
    ceil_mode_padding,
    fits_exactly,
    ntuple,
    receptive_fields,
    resolve_padding,
)
from ..nn.module import Parameter
from ..tensor import Tensor
from .trace import Trace, default_input_shape, trace

__all__ = ["Field", "LayerField", "Window", "layer_window", "propagate", "receptive_field"]


class Window(NamedTuple):
    """The sliding window of a layer over its input, per spatial axis.

    exact: False for windows that only approximate the layer (adaptive pooling's variable
    windows); strict_fit is checked only on exact windows.
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    exact: bool = True

    def fits(self, size: tuple[int, ...]) -> bool:
        """False when the stride leaves input rows unused on some axis (`arith.fits_exactly`)."""
        return all(
            fits_exactly(i, k, s, p, d)
            for i, k, s, p, d in zip(size, self.kernel, self.stride, self.pads, self.dilation,
                                     strict=True)
        )


def _whole(size: tuple[int, ...]) -> Window:
    """One window over the whole volume (global pooling, flatten)."""
    n = len(size)
    return Window(tuple(size), tuple(size), (1,) * n, ((0, 0),) * n, exact=False)


def layer_window(module, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> Window | None:
    """The window of a convolution or pooling layer on an input of x_shape (batch axis
    included), the whole volume for global pooling and Flatten, None for other layers (and for
    transposed convolutions, which spread rather than gather)."""
    from ..nn.linear import Flatten
    from ..nn.pool import GlobalAveragePooling, GlobalMaxPooling

    size = tuple(x_shape[1:-1])
    if not size:
        return None
    if hasattr(module, "kernel_size") and not hasattr(module, "output_padding"):
        kernel = module.kernel_size
        stride = getattr(module, "strides", 1)
        dilation = getattr(module, "dilation_rate", 1)
    elif hasattr(module, "pool_size"):
        kernel, stride, dilation = module.pool_size, getattr(module, "strides", None), 1
        stride = kernel if stride is None else stride
    elif hasattr(module, "output_size") and len(y_shape) == len(x_shape):
        # Adaptive pooling: PyTorch's windows vary in size; ceil(I/O) wide at stride floor(I/O)
        # bounds them (exact when O divides I).
        out = y_shape[1:-1]
        kernel = tuple(-(-i // o) for i, o in zip(size, out, strict=True))
        stride = tuple(max(i // o, 1) for i, o in zip(size, out, strict=True))
        return Window(kernel, stride, (1,) * len(size), ((0, 0),) * len(size), exact=False)
    elif isinstance(module, (GlobalAveragePooling, GlobalMaxPooling, Flatten)):
        return _whole(size)
    else:
        return None
    layer, n = type(module).__name__, len(size)
    if not all(isinstance(v, int) or len(v) == n for v in (kernel, stride, dilation)):
        return None  # a layer over fewer axes than its input has (e.g. 1-D over a sequence)
    kernel, stride = ntuple(kernel, n, "kernel", layer), ntuple(stride, n, "stride", layer)
    dilation = ntuple(dilation, n, "dilation", layer)
    pads = resolve_padding(getattr(module, "padding", 0), size, kernel, stride, dilation, layer)
    if getattr(module, "ceil_mode", False):  # PyTorch's ceil mode grows the end padding
        pads = tuple(ceil_mode_padding(i, k, s, p) for i, k, s, p in
                     zip(size, kernel, stride, pads, strict=True))
    return Window(kernel, stride, dilation, pads)


class Field(NamedTuple):
    """Receptive field per spatial axis of the input: size and jump (both in input pixels).

    chain: the windows met along the widest branch into the tensor, as (layer path, Window)
    pairs in order; `arith.receptive_fields` over their first axis gives the field again.
    """

    size: tuple[int, ...]
    jump: tuple[int, ...]
    chain: tuple[tuple[str, Window], ...] = ()

    def through(self, window: Window, path: str = "") -> Field:
        """The field after `window` of the layer at `path` (each axis composed with
        `arith.receptive_fields`)."""
        sizes, jumps = [], []
        for size, jump, k, s, d in zip(self.size, self.jump, window.kernel, window.stride,
                                       window.dilation, strict=True):
            (layer,) = receptive_fields([(k, s, 0, d)])  # the window alone: 1 + d(K-1), S
            sizes.append(size + (layer.size - 1) * jump)
            jumps.append(jump * layer.jump)
        return Field(tuple(sizes), tuple(jumps), (*self.chain, (path, window)))

    @staticmethod
    def merge(fields: list[Field]) -> Field:
        """The largest size and jump per axis; the chain of the widest input."""
        return Field(
            tuple(max(s) for s in zip(*(f.size for f in fields), strict=True)),
            tuple(max(j) for j in zip(*(f.jump for f in fields), strict=True)),
            max(fields, key=lambda f: f.size).chain,
        )


def _gate(parent: Tensor, tensor: Tensor) -> bool:
    """True when `parent` is broadcast over `tensor`'s spatial axes (a squeeze-and-excitation
    gate of shape (N, 1, 1, C) scaling an (N, H, W, C) map): each output unit takes one value
    of it, so it does not widen the field (else every unit after the gate would see the whole
    volume at the gate's jump)."""
    inner = parent.shape[1:-1]
    return (parent.ndim == tensor.ndim and bool(inner) and all(d == 1 for d in inner)
            and any(d > 1 for d in tensor.shape[1:-1]))


def propagate(traced: Trace) -> Callable[[Tensor], Field | None]:
    """Follow the receptive field through a trace recorded with record_graph=True; returns a
    function giving the field of any tensor of the pass (None for parameters and constants).
    Values computed outside modules are followed through the autograd graph."""
    spatial = traced.inputs[0].ndim - 2
    fields: dict[int, Field] = {
        id(x): Field((1,) * spatial, (1,) * spatial) for x in traced.inputs
    }

    def field_of(tensor) -> Field | None:
        key = id(tensor)
        if key not in fields:
            # An operation outside any module (x + shortcut, concatenation): merge its inputs'
            # fields. Parameters, constants and broadcast gates add none.
            parents = [] if isinstance(tensor, Parameter) else [
                field_of(p) for p in tensor.parents
                if isinstance(p, Tensor) and not _gate(p, tensor)
            ]
            parents = [f for f in parents if f is not None]
            fields[key] = Field.merge(parents) if parents else None
        return fields[key]

    for call in traced.calls:
        if not call.is_leaf or not isinstance(call.output, Tensor):
            continue
        inputs = [f for f in map(field_of, call.inputs) if f is not None]
        if not inputs:
            continue
        field = Field.merge(inputs)
        window = layer_window(call.module, call.inputs[0].shape, call.output.shape)
        if window is not None and len(window.kernel) == spatial:
            field = field.through(window, call.path)
        fields[id(call.output)] = field
    return field_of


class LayerField(NamedTuple):
    """One layer's receptive field: per spatial axis, its size and jump in input pixels.

    window: the layer's own window on its input (None for layers without one); chain: the
    (layer path, Window) pairs along the widest branch from the input to this layer's output.
    """

    name: str
    kind: str
    size: tuple[int, ...]
    jump: tuple[int, ...]
    window: Window | None = None
    chain: tuple[tuple[str, Window], ...] = ()


def receptive_field(model, input_shape=None) -> list[LayerField]:
    """Receptive field (size, jump per spatial axis) of every layer, in execution order.

    input_shape: one sample without the batch axis, default the model's default_input_shape.
    Layers are the leaf modules that ran (a layer run twice is listed twice).
    """
    shape = default_input_shape(model, input_shape, "receptive_field")
    traced = trace(model, shape, record_graph=True)
    field_of = propagate(traced)
    result = []
    for call in traced.calls:
        if call.is_leaf and isinstance(call.output, Tensor):
            field = field_of(call.output)
            if field is not None:
                # A windowed layer's own window ends its chain; no other layer's path can.
                ends = bool(field.chain) and field.chain[-1][0] == call.path
                own = field.chain[-1][1] if ends else None
                result.append(LayerField(call.path, type(call.module).__name__, field.size,
                                         field.jump, own, field.chain))
    return result

