"""Export a model to ONNX, for onnxruntime and every other ONNX consumer.

`export_onnx(model, input_shape, path)` traces one forward pass (a zero batch of one) and writes
the graph it ran. The ONNX input keeps striate's channels-last layout, (N, H, W, C) with a
dynamic batch N; a Transpose turns it into the channels-first layout of ONNX's Conv and pooling
operators, every tensor with spatial axes stays channels-first inside the graph, and a spatial
output is transposed back.

Two levels of translation. Layers with their own: Dense, Embedding (Gather; a frozen
table, `trainable=False`, records no operation to follow), BatchNorm, LayerNorm
(LayerNormalization), GroupNorm (InstanceNormalization over reshaped groups),
LocalResponseNorm, max and L_p pooling (any padding, PyTorch's ceil mode), global and adaptive
pooling, Flatten, Reshape, ZeroPadding2D, Dropout and Identity. Every other layer, and whatever
a forward computes itself (a residual `+`, a concatenation), is translated operation by operation
from the autograd graph: convolutions of any rank (groups, depthwise, flip, dilation; separable
layers are their two convolutions), transposed convolutions (ConvTranspose), average and
Gaussian pooling (a depthwise Conv divided by the window's count or weight), `F.embedding`
lookups (Gather), activations, arithmetic, reductions, reshapes, concatenation and padding.

Extension point: a value that the model's input does not reach is exported as the value it had
in the trace. A layer that builds its kernel from its parameters (LeNet's connection-table C3
masks a packed kernel, NF-ResNet's WSConv2D standardises its kernel) and then calls `F.conv2d`
is therefore exported as a plain Conv with that kernel, with no code here; a custom layer gets
the same by computing its weights from parameters and calling the functional ops. An operation
without a translation (locally connected layers, for one) raises NotImplementedError naming
the layer and the operation. The converse is not checked: a value computed from the input
outside the recorded graph (numpy on `x.data`, `F.embedding` of the ids in a table that needs no
gradient) would be exported as its traced value, so a forward must reach such values through
operations on Tensors or through layers (an `nn.Embedding`, trainable or frozen, is one).

A model whose leaves include an `nn.Embedding` takes token ids: its ONNX input is int64
(N, L), the ids its embeddings look up.

Needs the optional `onnx` package (`pip install onnx`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from . import nn
from .analysis.trace import _input_shapes, default_input_shape, trace
from .arith import ceil_mode_padding, ntuple, resolve_padding
from .onnx_ops import (
    Graph,
    gather,
    onnx_pads,
    require_onnx,
)
from .tensor import Tensor

__all__ = ["OPSET", "export_onnx"]

OPSET = 17


# ===== layers ====================================================================================
def _core_output(module, out: Tensor) -> Tensor:
    """The tensor before a layer's own activation (the activation is translated as an op)."""
    if getattr(module, "_activation", None) is not None:
        return out.parents[0]
    return out


def _embedding_layer(g: Graph, module, ids: Tensor, out: Tensor) -> tuple[Tensor, str]:
    # A frozen table records no op (neither it nor the integer ids need a gradient), so the
    # layer, trainable or not, is translated from its table.
    return out, gather(g, module.table, ids.shape, out)


def _dense(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    weight = g.const(module.weight.data, "weight")
    if x.ndim == 2:
        inputs = [g.name_of(x), weight] + ([g.const(module.bias.data, "bias")]
                                           if module.bias is not None else [])
        return _core_output(module, out), g.node("Gemm", inputs, "dense")
    # (N, ..., in): a matrix product over the last axis, in channels-last order.
    y = g.node("MatMul", [g.channels_last(g.name_of(x), x.ndim), weight])
    if module.bias is not None:
        y = g.node("Add", [y, g.const(module.bias.data, "bias")])
    return _core_output(module, out), g.channels_first(y, x.ndim)


def _batch_norm(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    c = x.shape[-1]
    scale = module.weight.data if module.weight is not None else np.ones(c)
    shift = module.bias.data if module.bias is not None else np.zeros(c)
    inputs = [g.name_of(x), g.const(scale, "gamma"), g.const(shift, "beta"),
              g.const(module.running_mean, "mean"), g.const(module.running_var, "var")]
    return out, g.node("BatchNormalization", inputs, "bn", epsilon=float(module.eps))


def _lrn(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    return out, g.node("LRN", [g.name_of(x)], "lrn", size=int(module.size),
                       alpha=float(module.alpha), beta=float(module.beta), bias=float(module.k))


def _pool(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    """Max and L_p pooling layers (average pooling is translated from its op)."""
    n = x.ndim - 2
    kernel = ntuple(module.pool_size, n, "pool_size", type(module).__name__)
    stride = ntuple(module.strides, n, "strides", type(module).__name__)
    pads = resolve_padding(module.padding, x.shape[1:-1], kernel, stride, (1,) * n)
    if getattr(module, "ceil_mode", False):
        # PyTorch's ceil mode: more end padding; a max never takes a padded value.
        pads = tuple(ceil_mode_padding(i, k, s, p) for i, k, s, p in
                     zip(x.shape[1:-1], kernel, stride, pads, strict=True))
    attrs = {"kernel_shape": list(kernel), "strides": list(stride), "pads": onnx_pads(pads)}
    if isinstance(module, (nn.LPPool1D, nn.LPPool2D, nn.LPPool3D)):
        if module.p != int(module.p):
            raise NotImplementedError(f"export_onnx: {g.where}: ONNX's LpPool needs an integer "
                                      f"p, got {module.p}")
        return out, g.node("LpPool", [g.name_of(x)], "lppool", p=int(module.p), **attrs)
    return out, g.node("MaxPool", [g.name_of(x)], "maxpool", **attrs)


def _affine(g: Graph, module, y: str, rank: int) -> str:
    """y * weight + bias per channel (ONNX layout), for the norms that leave them out."""
    if module.weight is not None:
        y = g.node("Mul", [y, g.constant(module.weight.data, rank)])
    if module.bias is not None:
        y = g.node("Add", [y, g.constant(module.bias.data, rank)])
    return y


def _layer_norm(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    c = x.shape[-1]
    scale = module.weight.data if module.weight is not None else np.ones(c)
    shift = module.bias.data if module.bias is not None else np.zeros(c)
    data = g.channels_last(g.name_of(x), x.ndim)  # statistics over the last (channel) axis
    y = g.node("LayerNormalization", [data, g.const(scale, "gamma"), g.const(shift, "beta")],
               "layernorm", axis=-1, epsilon=float(module.eps))
    return out, g.channels_first(y, x.ndim)


def _group_norm(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    # (N, C, *S) -> (N, G, C/G * prod(S)): instance normalisation of that is group norm.
    data = g.name_of(x)
    groups = int(module.groups)
    grouped = g.node("Reshape", [data, g.const([0, groups, -1], "shape", np.int64)])
    ones, zeros = g.const(np.ones(groups), "ones"), g.const(np.zeros(groups), "zeros")
    y = g.node("InstanceNormalization", [grouped, ones, zeros], "groupnorm",
               epsilon=float(module.eps))
    y = g.node("Reshape", [y, g.node("Shape", [data])])
    return out, _affine(g, module, y, x.ndim)


def _global_pool(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    kind = "GlobalMaxPool" if isinstance(module, nn.GlobalMaxPooling) else "GlobalAveragePool"
    y = g.node(kind, [g.name_of(x)])  # (N, C, 1, ..., 1): our keepdims layout
    return out, (y if module.keepdims else g.node("Flatten", [y], axis=1))


def _adaptive_pool(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    is_max = "Max" in type(module).__name__
    size, target = x.shape[1:-1], out.shape[1:-1]
    data = g.name_of(x)
    if all(o == 1 for o in target):
        return out, g.node("GlobalMaxPool" if is_max else "GlobalAveragePool", [data])
    if not any(i % o for i, o in zip(size, target, strict=True)):
        window = [i // o for i, o in zip(size, target, strict=True)]
        return out, g.node("MaxPool" if is_max else "AveragePool", [data],
                           kernel_shape=window, strides=window)
    # Uneven windows [floor(j*I/O), ceil((j+1)*I/O)): each output reads a box, so reduce one
    # axis at a time (a max or mean over a box is one over each of its sides in turn), each
    # window a Slice and a reduction, concatenated along the axis.
    reduce = "ReduceMax" if is_max else "ReduceMean"
    for axis, (i, o) in enumerate(zip(size, target, strict=True), start=2):
        if i == o:
            continue
        windows = []
        for j in range(o):
            bounds = [g.const([v], "bound", np.int64) for v in (j * i // o, -(-(j + 1) * i // o))]
            piece = g.node("Slice", [data, *bounds, g.const([axis], "axis", np.int64)])
            windows.append(g.node(reduce, [piece], axes=[axis], keepdims=1))
        data = g.node("Concat", windows, axis=axis)
    return out, data


def _reshape_layer(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    return out, g.reshape(g.name_of(x), x.ndim, out.shape)


def _zero_pad(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    (top, bottom), (left, right) = module.padding
    pads = g.const([0, 0, top, left, 0, 0, bottom, right], "pads", np.int64)
    return out, g.node("Pad", [g.name_of(x), pads])


def _passthrough(g: Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    return out, g.name_of(x)  # inference: dropout is the identity


def _layer_translations() -> list[tuple[tuple[type, ...], Callable]]:
    return [
        ((nn.Dense,), _dense),
        ((nn.Embedding,), _embedding_layer),
        ((nn.BatchNorm,), _batch_norm),
        ((nn.LayerNorm,), _layer_norm),
        ((nn.GroupNorm,), _group_norm),
        ((nn.LocalResponseNorm,), _lrn),
        ((nn.MaxPool1D, nn.MaxPool2D, nn.MaxPool3D, nn.LPPool1D, nn.LPPool2D, nn.LPPool3D),
         _pool),
        ((nn.GlobalAveragePooling, nn.GlobalMaxPooling), _global_pool),
        ((nn.AdaptiveAvgPool1D, nn.AdaptiveAvgPool2D, nn.AdaptiveAvgPool3D,
          nn.AdaptiveMaxPool1D, nn.AdaptiveMaxPool2D, nn.AdaptiveMaxPool3D), _adaptive_pool),
        ((nn.Flatten, nn.Reshape), _reshape_layer),
        ((nn.ZeroPadding2D,), _zero_pad),
        ((nn.Dropout, nn.SpatialDropout, nn.DropPath, nn.Identity), _passthrough),
    ]


def _translate_layer(g: Graph, module, call) -> None:
    """A layer with its own translation above, else the operations its forward ran (done now,
    so that an error names the layer)."""
    out = call.output
    translate = next(
        (t for classes, t in _layer_translations() if isinstance(module, classes)), None
    )
    if translate is not None:
        tensor, name = translate(g, module, *call.inputs, out=out)
        g.names[id(tensor)] = name
        g.dependent[id(tensor)] = True  # computed by the graph, whether recorded or not
    elif isinstance(out, Tensor) and g.depends_on_input(out):
        g.name_of(out)


def _translate(onnx, model, shape, fill=None, write: bool = True):
    """Trace `model` (on zeros, or on `fill`) and translate it: (graph, the traced inputs, the
    traced output, the ONNX name of the channels-last output)."""
    traced = trace(model, shape, record_graph=True, fill=fill)  # weights are written as float32
    g = Graph(onnx, write)
    (x,) = traced.inputs
    leaves = [call for call in traced.calls if call.is_leaf]
    g.embeddings = [call.module for call in leaves if isinstance(call.module, nn.Embedding)]
    if g.embeddings:
        # A model that embeds its input takes token ids: Gather reads them as they come.
        g.ids, g.ids_shape = "input", x.shape
    else:
        g.names[id(x)] = g.channels_first("input", x.ndim)
        g.dependent[id(x)] = True
    for call in leaves:
        name = type(call.module).__name__
        g.where = f"layer '{call.path}' ({name})" if call.path else name
        _translate_layer(g, call.module, call)
    g.where = "the model's forward"
    output = traced.output
    if not isinstance(output, Tensor):
        raise NotImplementedError(
            f"export_onnx: the model returns a {type(output).__name__}; only single-Tensor "
            f"outputs are supported"
        )
    return g, traced.inputs, output, g.channels_last(g.name_of(output), output.ndim)


def _other_input(g: Graph, x: Tensor) -> np.ndarray:
    """A second input, unlike the zeros of the first trace: ids within every table, or noise."""
    if g.ids is not None:
        vocab = min(m.input_dim for m in g.embeddings)
        return (np.arange(x.size) % vocab).reshape(x.shape[1:])
    return np.random.default_rng(0).standard_normal(x.shape[1:])


def _check_constants(g: Graph, again: Graph) -> None:
    """Every initializer of `g` must come out the same when traced on another input (`again`):
    one that changes was computed from the input outside the recorded graph, and a constant
    would silently give the values of the zero input."""
    for (where, a), (_, b) in zip(g.arrays, again.arrays, strict=False):
        if a is not b and (a.shape != b.shape or not np.array_equal(a, b, equal_nan=True)):
            raise NotImplementedError(
                f"export_onnx: {where} computes a value from the input outside the recorded "
                f"graph (numpy on .data, or a lookup that records nothing), so ONNX would get "
                f"its value for one input; compute it with Tensor operations or layers"
            )
    if len(g.arrays) != len(again.arrays):
        raise NotImplementedError(
            "export_onnx: the model's graph changes with its input; only a forward that runs "
            "the same operations for every input can be exported"
        )


def export_onnx(model, input_shape=None, path: str | os.PathLike | None = None,
                opset: int = OPSET):
    """Write `model` as an ONNX graph to `path` (and return the onnx ModelProto).

    input_shape: one sample without the batch axis (default the model's default_input_shape);
    the ONNX input "input" is (N, *input_shape) float32, channels-last, N dynamic; the output
    "output" is what the model returns (channels-last where it has spatial axes). The model is
    traced in eval mode: dropout is the identity, batch norm uses its running statistics.
    Raises NotImplementedError naming a layer or operation that ONNX export does not cover.

    >>> from striate import models
    >>> proto = export_onnx(models.create("lenet5_modern"))
    >>> [d.dim_value or d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    ['N', 28, 28, 1]
    """
    onnx = require_onnx()
    shape = default_input_shape(model, input_shape, "export_onnx")
    if len(_input_shapes(shape)) != 1:
        raise NotImplementedError("export_onnx: models with several inputs are not supported")
    g, (x,), output, result = _translate(onnx, model, shape)
    _check_constants(g, _translate(onnx, model, shape, [_other_input(g, x)], write=False)[0])
    input_type = onnx.TensorProto.FLOAT if g.ids is None else onnx.TensorProto.INT64
    g.nodes.append(g.helper.make_node("Identity", [result], ["output"]))
    proto, make = g.model, g.helper.make_tensor_value_info
    proto.graph.name = type(model).__name__
    proto.graph.node.extend(g.nodes)
    proto.graph.input.append(make("input", input_type, ["N", *x.shape[1:]]))
    proto.graph.output.append(make("output", onnx.TensorProto.FLOAT, ["N", *output.shape[1:]]))
    proto.opset_import.append(g.helper.make_opsetid("", opset))
    proto.producer_name = "striate"
    proto.ir_version = min(onnx.IR_VERSION, 9)  # readable by onnxruntime releases since 1.16
    data = proto.SerializeToString()
    onnx.checker.check_model(data)
    if path is not None:
        from ._files import atomic_open

        with atomic_open(path) as f:
            f.write(data)
    return proto


