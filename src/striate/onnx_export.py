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
from .tensor import Tensor

__all__ = ["OPSET", "export_onnx"]

OPSET = 17


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs the onnx package: install onnx "
                          "(pip install onnx)") from None
    return onnx


def _to_onnx_axis(axis: int, rank: int) -> int:
    """An axis of our channels-last tensor, in the channels-first layout ONNX sees."""
    axis %= rank
    if rank < 3 or axis == 0:
        return axis
    return 1 if axis == rank - 1 else axis + 1


def _first(rank: int) -> list[int]:
    """Permutation channels-last -> channels-first: (N, *S, C) -> (N, C, *S)."""
    return [0, rank - 1, *range(1, rank - 1)]


def _last(rank: int) -> list[int]:
    """Permutation channels-first -> channels-last."""
    return [0, *range(2, rank), 1]


class _Graph:
    """ONNX nodes and initializers under construction, and the ONNX name of each Tensor."""

    def __init__(self, onnx, write: bool = True):
        self.onnx, self.helper = onnx, onnx.helper
        # (where, array) of every initializer; write=False only collects them (the second
        # trace of the constants check).
        self.arrays: list[tuple[str, np.ndarray]] = []
        self.write = write
        self.embeddings: list = []
        # Initializers go straight into the model: copying hundreds of MB of weights between
        # protobuf messages (make_graph, make_model) costs seconds for VGG.
        self.model = onnx.ModelProto()
        self.nodes, self.names, self.dependent = [], {}, {}
        # the integer input of a model that embeds token ids, and its traced shape
        self.ids, self.ids_shape = None, None
        self.count = 0
        self.where = "model"  # what is being translated, for error messages

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def node(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def const(self, value, hint: str, dtype=np.float32) -> str:
        name = self.fresh(hint)
        array = np.asarray(value, dtype=np.dtype(dtype).newbyteorder("<"))
        self.arrays.append((self.where, array))
        if not self.write:
            return name
        tensor = self.model.graph.initializer.add()
        tensor.name, tensor.dims[:] = name, array.shape
        tensor.data_type = self.helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.raw_data = array.tobytes()
        return name

    # ----- tensors reached through the autograd graph ------------------------------------------
    def depends_on_input(self, tensor) -> bool:
        """Whether the model's input reaches `tensor`; anything else (a kernel computed from
        parameters: a masked or standardised one) is exported as its traced value."""
        key = id(tensor)
        if key not in self.dependent:
            op = tensor.op
            # Embedding reads the integer ids, which are no Tensor of the graph.
            self.dependent[key] = op is not None and (
                type(op).__name__ == "Embedding"
                or any(p is not None and self.depends_on_input(p) for p in tensor.parents)
            )
        return self.dependent[key]

    def value(self, tensor, what: str) -> np.ndarray:
        """The value of a tensor that must not depend on the input (a kernel, a bias)."""
        if self.depends_on_input(tensor):
            raise NotImplementedError(
                f"export_onnx: {self.where} computes its {what} from the input; ONNX export "
                f"needs it fixed"
            )
        return tensor.data

    def name_of(self, tensor) -> str:
        """The ONNX name of a Tensor, translating the operations that made it if needed."""
        key = id(tensor)
        if key not in self.names:
            if self.depends_on_input(tensor):
                self.names[key] = self._operation(tensor)
            else:
                self.names[key] = self.constant(tensor.data, tensor.ndim)
        return self.names[key]

    def operand(self, tensor, rank: int) -> str:
        """`tensor` as an operand of an element-wise op whose result has `rank` axes: our
        broadcasting aligns trailing axes, so a shorter operand gets leading 1s first."""
        if not self.depends_on_input(tensor):
            return self.constant(tensor.data, rank)
        name = self.name_of(tensor)
        if tensor.ndim == rank:
            return name
        axes = self.const(list(range(rank - tensor.ndim)), "axes", np.int64)
        wide = self.node("Unsqueeze", [self.channels_last(name, tensor.ndim), axes])
        return self.channels_first(wide, rank)

    def constant(self, value, rank: int) -> str:
        """A channels-last array as an initializer in ONNX's layout at `rank` axes."""
        data = np.asarray(value)
        data = data.reshape((1,) * (rank - data.ndim) + data.shape)
        if rank >= 3:
            data = data.transpose(_first(rank))
        return self.const(data, "const")

    def _operation(self, tensor) -> str:
        op = tensor.op
        kind = type(op).__name__
        translate = _OPERATIONS.get(kind)
        if translate is None:
            raise NotImplementedError(
                f"export_onnx: {self.where} uses the operation {kind}, which has no ONNX "
                f"translation"
            )
        return translate(self, op, tensor.parents, tensor)

    # ----- layout helpers ----------------------------------------------------------------------
    def channels_last(self, name: str, rank: int) -> str:
        return name if rank < 3 else self.node("Transpose", [name], perm=_last(rank))

    def channels_first(self, name: str, rank: int) -> str:
        return name if rank < 3 else self.node("Transpose", [name], perm=_first(rank))

    def reshape(self, name: str, in_rank: int, shape: tuple[int, ...]) -> str:
        """Our reshape (in channels-last order) of a tensor stored in ONNX's layout."""
        flat = self.channels_last(name, in_rank)
        target = self.const([0, *shape[1:]], "shape", np.int64)  # 0 keeps the batch axis
        return self.channels_first(self.node("Reshape", [flat, target]), len(shape))


# ===== operations of the autograd graph ==========================================================
def _unary(op_type: str, **attrs) -> Callable:
    def translate(g: _Graph, op, parents, out) -> str:
        return g.node(op_type, [g.name_of(parents[0])], **attrs)
    return translate


def _binary(op_type: str) -> Callable:
    def translate(g: _Graph, op, parents, out) -> str:
        # Python numbers and parameters (a per-channel or per-position bias) are initializers.
        return g.node(op_type, [g.operand(p, out.ndim) for p in parents])
    return translate


def _relu6(g: _Graph, op, parents, out) -> str:
    return g.node("Clip", [g.name_of(parents[0]), g.const(0.0, "zero"), g.const(6.0, "six")])


def _silu(g: _Graph, op, parents, out) -> str:
    x = g.name_of(parents[0])
    return g.node("Mul", [x, g.node("Sigmoid", [x])])


def _softmax(g: _Graph, op, parents, out) -> str:
    kind = type(op).__name__
    return g.node(kind, [g.name_of(parents[0])], axis=_to_onnx_axis(op.axis, out.ndim))


def _concatenate(g: _Graph, op, parents, out) -> str:
    return g.node("Concat", [g.name_of(p) for p in parents], axis=_to_onnx_axis(op.axis, out.ndim))


def _reshape(g: _Graph, op, parents, out) -> str:
    return g.reshape(g.name_of(parents[0]), parents[0].ndim, out.shape)


def _reduce(op_type: str) -> Callable:
    """Sum/Mean/Max over our axes: reduce in channels-last order, then restore the layout."""

    def translate(g: _Graph, op, parents, out) -> str:
        x = parents[0]
        axes = range(x.ndim) if op.axis is None else np.atleast_1d(op.axis)
        axes = sorted(int(a) % x.ndim for a in axes)
        keep = int(bool(op.keepdims))
        data = g.channels_last(g.name_of(x), x.ndim)
        if op_type == "ReduceSum":  # since opset 13 its axes are an input
            y = g.node(op_type, [data, g.const(axes, "axes", np.int64)], keepdims=keep)
        else:
            y = g.node(op_type, [data], axes=axes, keepdims=keep)
        return g.channels_first(y, out.ndim)
    return translate


def _pads(pairs) -> list[int]:
    """(start, end) per axis -> ONNX's [starts..., ends...]."""
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _onnx_kernel(w: np.ndarray) -> np.ndarray:
    """(*k, C_in/groups, C_out) -> ONNX's (C_out, C_in/groups, *k) (ConvTranspose reads the
    same array as (C_in, C_out/groups, *k): the adjoint swaps the roles)."""
    n = w.ndim - 2
    return w.transpose(n + 1, n, *range(n))


def _conv_inputs(g: _Graph, x, w, b, flip: bool = False, scale=None) -> list[str]:
    """x, the kernel and the bias of an ONNX Conv, a per-filter scale folded into the kernel."""
    kernel = g.value(w, "kernel")
    if flip:
        kernel = kernel[(slice(None, None, -1),) * (kernel.ndim - 2)]
    if scale is not None:  # y = conv(x, w) * scale + b = conv(x, w * scale) + b
        kernel = kernel * g.value(scale, "scale")
    inputs = [g.name_of(x), g.const(_onnx_kernel(kernel), "weight")]
    return inputs + ([] if b is None else [g.const(g.value(b, "bias"), "bias")])


def _conv_node(g: _Graph, op, x, w, b, scale=None) -> str:
    geo = op.geometry  # kernel, stride, dilation and the (start, end) padding it resolved
    return g.node("Conv", _conv_inputs(g, x, w, b, op.flip, scale), "conv",
                  kernel_shape=list(geo.kernel), strides=list(geo.stride),
                  dilations=list(geo.dilation), pads=_pads(geo.pads), group=int(op.groups))


def _conv(g: _Graph, op, parents, out) -> str:
    return _conv_node(g, op, *parents)


def _conv_affine(g: _Graph, op, parents, out) -> str:
    """`fused.conv_affine`: relu?(conv(x, w) * scale + shift + residual), the scale folded into
    the kernel and the shift as the bias."""
    x, w, scale, shift, residual = parents
    y = _conv_node(g, op, x, w, shift, scale)
    if residual is not None:
        y = g.node("Add", [y, g.name_of(residual)])
    return g.node("Relu", [y]) if op.relu else y


def _batch_norm_op(g: _Graph, op, parents, out) -> str:
    """A batch norm run as an op (`fused.bn_relu`, `batch_norm_add_relu`), in evaluation."""
    x, gamma, beta, residual = parents
    c, s = x.shape[-1], op.saved
    inputs = [g.name_of(x), g.const(np.ones(c) if gamma is None else g.value(gamma, "gamma"),
                                    "gamma"),
              g.const(np.zeros(c) if beta is None else g.value(beta, "beta"), "beta"),
              g.const(s.mean, "mean"), g.const(s.var, "var")]
    y = g.node("BatchNormalization", inputs, "bn", epsilon=float(s.eps))
    if residual is not None:
        y = g.node("Add", [y, g.name_of(residual)])
    return g.node("Relu", [y]) if op.relu else y


def _conv_transpose(g: _Graph, op, parents, out) -> str:
    # geometry is that of the convolution this op is the adjoint of: its in_size is our output
    # size, which ONNX reaches by adding output_padding at the end of each axis.
    geo = op.geometry
    extra = [i - (s * (o - 1) + d * (k - 1) + 1 - p0 - p1) for i, o, k, s, d, (p0, p1) in
             zip(geo.in_size, geo.out_size, geo.kernel, geo.stride, geo.dilation, geo.pads,
                 strict=True)]
    return g.node("ConvTranspose", _conv_inputs(g, *parents), "convt",
                  kernel_shape=list(geo.kernel), strides=list(geo.stride),
                  dilations=list(geo.dilation), pads=_pads(geo.pads), output_padding=extra,
                  group=int(op.groups))


def _weighted_average(g: _Graph, op, parents, out) -> str:
    """Average (and Gaussian) pooling: a depthwise convolution of the zero-padded input with the
    window's weights, divided by the op's norm (the count, or per-position real counts)."""
    x, win = parents[0], op.windows
    weights = np.ones(win.size) if op.weights is None else op.weights.reshape(win.size)
    c = x.shape[-1]
    kernel = np.broadcast_to(weights, (c, 1, *win.size))  # (C, 1, *k): one filter per channel
    y = g.node("Conv", [g.name_of(x), g.const(kernel, "window")], "pool",
               kernel_shape=list(win.size), strides=list(win.stride), pads=_pads(win.pads),
               group=int(c))
    return g.node("Div", [y, g.constant(op.norm, out.ndim)])


def _gather(g: _Graph, table: np.ndarray, ids_shape: tuple[int, ...], out: Tensor) -> str:
    """A lookup of the model's input ids in `table` (input_dim, output_dim)."""
    if g.ids is None or tuple(ids_shape) != g.ids_shape:
        raise NotImplementedError(
            f"export_onnx: {g.where} looks up ids that are not the model's input; only a model "
            f"whose input is the token ids (N, L) is supported"
        )
    y = g.node("Gather", [g.const(table, "table"), g.ids], "embedding")
    return g.channels_first(y, out.ndim)


def _embedding(g: _Graph, op, parents, out) -> str:
    """F.embedding called in a forward with a table that requires a gradient."""
    return _gather(g, g.value(parents[0], "table"), op.ids.shape, out)


def _axis_max(g: _Graph, op, parents, out) -> str:
    """Max over one axis of a regrouped view (global max pooling, maxout)."""
    x = parents[0]
    grouped = g.const([0, *op.grouped_shape[1:]], "shape", np.int64)  # 0 keeps the batch axis
    data = g.node("Reshape", [g.channels_last(g.name_of(x), x.ndim), grouped])
    axis = op.axis % len(op.grouped_shape)
    y = g.node("ReduceMax", [data], axes=[axis], keepdims=0)
    return g.channels_first(y, out.ndim)


def _pad(g: _Graph, op, parents, out) -> str:
    x = parents[0]
    pairs = [(s.start, n - s.stop) for s, n in zip(op.inside, out.shape, strict=True)]
    if x.ndim >= 3:
        pairs = [pairs[a] for a in _first(x.ndim)]
    # The op keeps no fill value: read it off a padded entry of the traced output.
    outside = np.ones(out.shape, dtype=bool)
    outside[op.inside] = False
    value = out.data[outside][0] if outside.any() else 0.0
    return g.node("Pad", [g.name_of(x), g.const(_pads(pairs), "pads", np.int64),
                          g.const(value, "value")])


_OPERATIONS: dict[str, Callable] = {
    "Sum": _reduce("ReduceSum"),
    "Mean": _reduce("ReduceMean"),
    "Max": _reduce("ReduceMax"),
    "Add": _binary("Add"),
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "Div": _binary("Div"),
    "Neg": _unary("Neg"),
    "Exp": _unary("Exp"),
    "Log": _unary("Log"),
    "Abs": _unary("Abs"),
    "ReLU": _unary("Relu"),
    "ReLU6": _relu6,
    "Sigmoid": _unary("Sigmoid"),
    "Tanh": _unary("Tanh"),
    "SiLU": _silu,
    "Hardswish": _unary("HardSwish"),
    "Hardsigmoid": _unary("HardSigmoid", alpha=1 / 6, beta=0.5),
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "LeakyReLU": lambda g, op, p, out: g.node("LeakyRelu", [g.name_of(p[0])],
                                              alpha=float(op.negative_slope)),
    "ELU": lambda g, op, p, out: g.node("Elu", [g.name_of(p[0])], alpha=float(op.alpha)),
    "Concatenate": _concatenate,
    "Reshape": _reshape,
    "Conv": _conv,
    "ConvAffine": _conv_affine,
    "BatchNorm": _batch_norm_op,
    "ConvTranspose": _conv_transpose,
    "WeightedAverage": _weighted_average,
    "Embedding": _embedding,
    "AxisMax": _axis_max,
    "Pad": _pad,
}


# ===== layers ====================================================================================
def _core_output(module, out: Tensor) -> Tensor:
    """The tensor before a layer's own activation (the activation is translated as an op)."""
    if getattr(module, "_activation", None) is not None:
        return out.parents[0]
    return out


def _embedding_layer(g: _Graph, module, ids: Tensor, out: Tensor) -> tuple[Tensor, str]:
    # A frozen table records no op (neither it nor the integer ids need a gradient), so the
    # layer, trainable or not, is translated from its table.
    return out, _gather(g, module.table, ids.shape, out)


def _dense(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
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


def _batch_norm(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    c = x.shape[-1]
    scale = module.weight.data if module.weight is not None else np.ones(c)
    shift = module.bias.data if module.bias is not None else np.zeros(c)
    inputs = [g.name_of(x), g.const(scale, "gamma"), g.const(shift, "beta"),
              g.const(module.running_mean, "mean"), g.const(module.running_var, "var")]
    return out, g.node("BatchNormalization", inputs, "bn", epsilon=float(module.eps))


def _lrn(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    return out, g.node("LRN", [g.name_of(x)], "lrn", size=int(module.size),
                       alpha=float(module.alpha), beta=float(module.beta), bias=float(module.k))


def _pool(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    """Max and L_p pooling layers (average pooling is translated from its op)."""
    n = x.ndim - 2
    kernel = ntuple(module.pool_size, n, "pool_size", type(module).__name__)
    stride = ntuple(module.strides, n, "strides", type(module).__name__)
    pads = resolve_padding(module.padding, x.shape[1:-1], kernel, stride, (1,) * n)
    if getattr(module, "ceil_mode", False):
        # PyTorch's ceil mode: more end padding; a max never takes a padded value.
        pads = tuple(ceil_mode_padding(i, k, s, p) for i, k, s, p in
                     zip(x.shape[1:-1], kernel, stride, pads, strict=True))
    attrs = {"kernel_shape": list(kernel), "strides": list(stride), "pads": _pads(pads)}
    if isinstance(module, (nn.LPPool1D, nn.LPPool2D, nn.LPPool3D)):
        if module.p != int(module.p):
            raise NotImplementedError(f"export_onnx: {g.where}: ONNX's LpPool needs an integer "
                                      f"p, got {module.p}")
        return out, g.node("LpPool", [g.name_of(x)], "lppool", p=int(module.p), **attrs)
    return out, g.node("MaxPool", [g.name_of(x)], "maxpool", **attrs)


def _affine(g: _Graph, module, y: str, rank: int) -> str:
    """y * weight + bias per channel (ONNX layout), for the norms that leave them out."""
    if module.weight is not None:
        y = g.node("Mul", [y, g.constant(module.weight.data, rank)])
    if module.bias is not None:
        y = g.node("Add", [y, g.constant(module.bias.data, rank)])
    return y


def _layer_norm(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    c = x.shape[-1]
    scale = module.weight.data if module.weight is not None else np.ones(c)
    shift = module.bias.data if module.bias is not None else np.zeros(c)
    data = g.channels_last(g.name_of(x), x.ndim)  # statistics over the last (channel) axis
    y = g.node("LayerNormalization", [data, g.const(scale, "gamma"), g.const(shift, "beta")],
               "layernorm", axis=-1, epsilon=float(module.eps))
    return out, g.channels_first(y, x.ndim)


def _group_norm(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    # (N, C, *S) -> (N, G, C/G * prod(S)): instance normalisation of that is group norm.
    data = g.name_of(x)
    groups = int(module.groups)
    grouped = g.node("Reshape", [data, g.const([0, groups, -1], "shape", np.int64)])
    ones, zeros = g.const(np.ones(groups), "ones"), g.const(np.zeros(groups), "zeros")
    y = g.node("InstanceNormalization", [grouped, ones, zeros], "groupnorm",
               epsilon=float(module.eps))
    y = g.node("Reshape", [y, g.node("Shape", [data])])
    return out, _affine(g, module, y, x.ndim)


def _global_pool(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    kind = "GlobalMaxPool" if isinstance(module, nn.GlobalMaxPooling) else "GlobalAveragePool"
    y = g.node(kind, [g.name_of(x)])  # (N, C, 1, ..., 1): our keepdims layout
    return out, (y if module.keepdims else g.node("Flatten", [y], axis=1))


def _adaptive_pool(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
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


def _reshape_layer(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    return out, g.reshape(g.name_of(x), x.ndim, out.shape)


def _zero_pad(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
    (top, bottom), (left, right) = module.padding
    pads = g.const([0, 0, top, left, 0, 0, bottom, right], "pads", np.int64)
    return out, g.node("Pad", [g.name_of(x), pads])


def _passthrough(g: _Graph, module, x: Tensor, out: Tensor) -> tuple[Tensor, str]:
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


def _translate_layer(g: _Graph, module, call) -> None:
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
    g = _Graph(onnx, write)
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


def _other_input(g: _Graph, x: Tensor) -> np.ndarray:
    """A second input, unlike the zeros of the first trace: ids within every table, or noise."""
    if g.ids is not None:
        vocab = min(m.input_dim for m in g.embeddings)
        return (np.arange(x.size) % vocab).reshape(x.shape[1:])
    return np.random.default_rng(0).standard_normal(x.shape[1:])


def _check_constants(g: _Graph, again: _Graph) -> None:
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
    onnx = _require_onnx()
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


