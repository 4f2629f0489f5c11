"""The ONNX graph `onnx_export` builds, and the translation of each autograd op striate
records (convolutions, pooling, activations, arithmetic, reshapes) into ONNX nodes.

Inside the graph every tensor with spatial axes is channels-first, as ONNX's Conv and pooling
operators want it; `Graph` inserts the Transposes at the model's input and output.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .tensor import Tensor


def require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs the onnx package: install onnx "
                          "(pip install onnx)") from None
    return onnx


def onnx_axis(axis: int, rank: int) -> int:
    """An axis of our channels-last tensor, in the channels-first layout ONNX sees."""
    axis %= rank
    if rank < 3 or axis == 0:
        return axis
    return 1 if axis == rank - 1 else axis + 1


def channels_first_axes(rank: int) -> list[int]:
    """Permutation channels-last -> channels-first: (N, *S, C) -> (N, C, *S)."""
    return [0, rank - 1, *range(1, rank - 1)]


def channels_last_axes(rank: int) -> list[int]:
    """Permutation channels-first -> channels-last."""
    return [0, *range(2, rank), 1]


class Graph:
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
            data = data.transpose(channels_first_axes(rank))
        return self.const(data, "const")

    def _operation(self, tensor) -> str:
        op = tensor.op
        kind = type(op).__name__
        translate = OPERATIONS.get(kind)
        if translate is None:
            raise NotImplementedError(
                f"export_onnx: {self.where} uses the operation {kind}, which has no ONNX "
                f"translation"
            )
        return translate(self, op, tensor.parents, tensor)

    # ----- layout helpers ----------------------------------------------------------------------
    def channels_last(self, name: str, rank: int) -> str:
        return name if rank < 3 else self.node("Transpose", [name], perm=channels_last_axes(rank))

    def channels_first(self, name: str, rank: int) -> str:
        return name if rank < 3 else self.node("Transpose", [name], perm=channels_first_axes(rank))

    def reshape(self, name: str, in_rank: int, shape: tuple[int, ...]) -> str:
        """Our reshape (in channels-last order) of a tensor stored in ONNX's layout."""
        flat = self.channels_last(name, in_rank)
        target = self.const([0, *shape[1:]], "shape", np.int64)  # 0 keeps the batch axis
        return self.channels_first(self.node("Reshape", [flat, target]), len(shape))


# ===== operations of the autograd graph ==========================================================
def _unary(op_type: str, **attrs) -> Callable:
    def translate(g: Graph, op, parents, out) -> str:
        return g.node(op_type, [g.name_of(parents[0])], **attrs)
    return translate


def _binary(op_type: str) -> Callable:
    def translate(g: Graph, op, parents, out) -> str:
        # Python numbers and parameters (a per-channel or per-position bias) are initializers.
        return g.node(op_type, [g.operand(p, out.ndim) for p in parents])
    return translate


def _relu6(g: Graph, op, parents, out) -> str:
    return g.node("Clip", [g.name_of(parents[0]), g.const(0.0, "zero"), g.const(6.0, "six")])


def _silu(g: Graph, op, parents, out) -> str:
    x = g.name_of(parents[0])
    return g.node("Mul", [x, g.node("Sigmoid", [x])])


def _softmax(g: Graph, op, parents, out) -> str:
    kind = type(op).__name__
    return g.node(kind, [g.name_of(parents[0])], axis=onnx_axis(op.axis, out.ndim))


def _concatenate(g: Graph, op, parents, out) -> str:
    return g.node("Concat", [g.name_of(p) for p in parents], axis=onnx_axis(op.axis, out.ndim))


def _reshape(g: Graph, op, parents, out) -> str:
    return g.reshape(g.name_of(parents[0]), parents[0].ndim, out.shape)


def _reduce(op_type: str) -> Callable:
    """Sum/Mean/Max over our axes: reduce in channels-last order, then restore the layout."""

    def translate(g: Graph, op, parents, out) -> str:
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


def onnx_pads(pairs) -> list[int]:
    """(start, end) per axis -> ONNX's [starts..., ends...]."""
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _onnx_kernel(w: np.ndarray) -> np.ndarray:
    """(*k, C_in/groups, C_out) -> ONNX's (C_out, C_in/groups, *k) (ConvTranspose reads the
    same array as (C_in, C_out/groups, *k): the adjoint swaps the roles)."""
    n = w.ndim - 2
    return w.transpose(n + 1, n, *range(n))


def _conv_inputs(g: Graph, x, w, b, flip: bool = False, scale=None) -> list[str]:
    """x, the kernel and the bias of an ONNX Conv, a per-filter scale folded into the kernel."""
    kernel = g.value(w, "kernel")
    if flip:
        kernel = kernel[(slice(None, None, -1),) * (kernel.ndim - 2)]
    if scale is not None:  # y = conv(x, w) * scale + b = conv(x, w * scale) + b
        kernel = kernel * g.value(scale, "scale")
    inputs = [g.name_of(x), g.const(_onnx_kernel(kernel), "weight")]
    return inputs + ([] if b is None else [g.const(g.value(b, "bias"), "bias")])


def _conv_node(g: Graph, op, x, w, b, scale=None) -> str:
    geo = op.geometry  # kernel, stride, dilation and the (start, end) padding it resolved
    return g.node("Conv", _conv_inputs(g, x, w, b, op.flip, scale), "conv",
                  kernel_shape=list(geo.kernel), strides=list(geo.stride),
                  dilations=list(geo.dilation), pads=onnx_pads(geo.pads), group=int(op.groups))


def _conv(g: Graph, op, parents, out) -> str:
    return _conv_node(g, op, *parents)


def _conv_affine(g: Graph, op, parents, out) -> str:
    """`fused.conv_affine`: relu?(conv(x, w) * scale + shift + residual), the scale folded into
    the kernel and the shift as the bias."""
    x, w, scale, shift, residual = parents
    y = _conv_node(g, op, x, w, shift, scale)
    if residual is not None:
        y = g.node("Add", [y, g.name_of(residual)])
    return g.node("Relu", [y]) if op.relu else y


def _batch_norm_op(g: Graph, op, parents, out) -> str:
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


def _conv_transpose(g: Graph, op, parents, out) -> str:
    # geometry is that of the convolution this op is the adjoint of: its in_size is our output
    # size, which ONNX reaches by adding output_padding at the end of each axis.
    geo = op.geometry
    extra = [i - (s * (o - 1) + d * (k - 1) + 1 - p0 - p1) for i, o, k, s, d, (p0, p1) in
             zip(geo.in_size, geo.out_size, geo.kernel, geo.stride, geo.dilation, geo.pads,
                 strict=True)]
    return g.node("ConvTranspose", _conv_inputs(g, *parents), "convt",
                  kernel_shape=list(geo.kernel), strides=list(geo.stride),
                  dilations=list(geo.dilation), pads=onnx_pads(geo.pads), output_padding=extra,
                  group=int(op.groups))


def _weighted_average(g: Graph, op, parents, out) -> str:
    """Average (and Gaussian) pooling: a depthwise convolution of the zero-padded input with the
    window's weights, divided by the op's norm (the count, or per-position real counts)."""
    x, win = parents[0], op.windows
    weights = np.ones(win.size) if op.weights is None else op.weights.reshape(win.size)
    c = x.shape[-1]
    kernel = np.broadcast_to(weights, (c, 1, *win.size))  # (C, 1, *k): one filter per channel
    y = g.node("Conv", [g.name_of(x), g.const(kernel, "window")], "pool",
               kernel_shape=list(win.size), strides=list(win.stride), pads=onnx_pads(win.pads),
               group=int(c))
    return g.node("Div", [y, g.constant(op.norm, out.ndim)])


def gather(g: Graph, table: np.ndarray, ids_shape: tuple[int, ...], out: Tensor) -> str:
    """A lookup of the model's input ids in `table` (input_dim, output_dim)."""
    if g.ids is None or tuple(ids_shape) != g.ids_shape:
        raise NotImplementedError(
            f"export_onnx: {g.where} looks up ids that are not the model's input; only a model "
            f"whose input is the token ids (N, L) is supported"
        )
    y = g.node("Gather", [g.const(table, "table"), g.ids], "embedding")
    return g.channels_first(y, out.ndim)


def _embedding(g: Graph, op, parents, out) -> str:
    """F.embedding called in a forward with a table that requires a gradient."""
    return gather(g, g.value(parents[0], "table"), op.ids.shape, out)


def _axis_max(g: Graph, op, parents, out) -> str:
    """Max over one axis of a regrouped view (global max pooling, maxout)."""
    x = parents[0]
    grouped = g.const([0, *op.grouped_shape[1:]], "shape", np.int64)  # 0 keeps the batch axis
    data = g.node("Reshape", [g.channels_last(g.name_of(x), x.ndim), grouped])
    axis = op.axis % len(op.grouped_shape)
    y = g.node("ReduceMax", [data], axes=[axis], keepdims=0)
    return g.channels_first(y, out.ndim)


def _pad(g: Graph, op, parents, out) -> str:
    x = parents[0]
    pairs = [(s.start, n - s.stop) for s, n in zip(op.inside, out.shape, strict=True)]
    if x.ndim >= 3:
        pairs = [pairs[a] for a in channels_first_axes(x.ndim)]
    # The op keeps no fill value: read it off a padded entry of the traced output.
    outside = np.ones(out.shape, dtype=bool)
    outside[op.inside] = False
    value = out.data[outside][0] if outside.any() else 0.0
    return g.node("Pad", [g.name_of(x), g.const(onnx_pads(pairs), "pads", np.int64),
                          g.const(value, "value")])


OPERATIONS: dict[str, Callable] = {
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
