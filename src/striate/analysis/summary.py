"""A model's layer table: output shapes, parameters, multiply-adds, receptive fields.

`summary(model, input_shape)` runs one forward pass of a zero batch of one (eval mode, traced
with forward hooks) and reports one row per module at the chosen depth: depth=1 gives the
model's children (one row per inception module of GoogLeNet, per stage of a ResNet), deeper
values open them up. Each row sums the parameters and multiply-adds of the layers inside it.

Multiply-adds (MACs) are counted for the layers that do the arithmetic, per sample:

- convolution: prod(output spatial) * C_out * prod(kernel) * C_in / groups (`arith.conv_macs`);
  depthwise and separable convolutions likewise per part; a transposed convolution as the
  convolution it transposes; a locally connected layer like a convolution (its weights are
  not shared, its arithmetic is the same);
- dense: in_features * units (per position, for inputs with extra axes);
- everything else (pooling, normalisation, activations, merges): 0.

FLOPs, where wanted, are 2 x MACs.

>>> from striate import nn
>>> model = nn.Sequential(nn.Conv2D(6, 5), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10))
>>> s = summary(model, (32, 32, 1))
>>> [(r.name, r.output_shape, r.params, r.macs) for r in s.rows][:3]
[('0', (28, 28, 6), 156, 117600), ('1', (28, 28, 6), 0, 0), ('2', (14, 14, 6), 0, 0)]
>>> s.total_params, s.total_macs
(11926, 129360)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from ..arith import conv_macs
from ..tensor import Tensor
from .paper_tables import PAPER_TABLES, PaperComparison, attach
from .receptive_field import Field, layer_window, propagate
from .trace import Call, default_input_shape, trace

__all__ = ["Row", "Summary", "layer_macs", "summary"]

_FLOAT32_BYTES = 4


def layer_macs(module, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one call of a leaf layer for one sample (see the module docstring).

    x_shape, y_shape: the input and output shapes, batch axis included. A layer whose cost the
    rules below do not describe (a partial connection table) says it with `macs(x_shape, y_shape)`.
    """
    if hasattr(module, "macs"):
        return module.macs(x_shape, y_shape)
    from ..nn.conv import DepthwiseConv2D, SeparableConv2D
    from ..nn.linear import Dense

    if isinstance(module, Dense):
        return math.prod(y_shape[1:-1]) * x_shape[-1] * y_shape[-1]
    if not hasattr(module, "kernel_size") or len(x_shape) < 3:
        return 0
    c_in, c_out = x_shape[-1], y_shape[-1]
    kernel = module.kernel_size
    if hasattr(module, "output_padding"):  # transposed: the adjoint of a conv y -> x
        return conv_macs(x_shape[1:-1], kernel, c_out, c_in)
    if isinstance(module, SeparableConv2D):
        hidden = c_in * module.depth_multiplier
        return (conv_macs(y_shape[1:-1], kernel, c_in, hidden, groups=c_in)
                + conv_macs(y_shape[1:-1], (1,) * len(kernel), hidden, c_out))
    groups = c_in if isinstance(module, DepthwiseConv2D) else getattr(module, "groups", 1)
    return conv_macs(y_shape[1:-1], kernel, c_in, c_out, groups=groups)


@dataclass
class Row:
    """One line of the summary.

    name: the module's dotted path; kind: its class; kernel, stride: of a convolution or pooling
    layer (None otherwise, and for rows grouping several layers); output_shape: without the batch
    axis (None for a module that did not run, e.g. an auxiliary head in eval mode); params: its
    parameters; macs: multiply-adds per sample of the layers inside; receptive_field, jump: per
    spatial axis, in input pixels; strict_fit: False when some layer's stride drops input rows.
    paper: for paper=True summaries, the matching row of the lectures' table, if any.
    """

    name: str
    kind: str
    kernel: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    params: int
    macs: int
    receptive_field: tuple[int, ...] | None
    jump: tuple[int, ...] | None
    strict_fit: bool = True
    paper: PaperComparison | None = None


@dataclass
class Summary:
    """Rows and totals of `summary`; `format()` prints the table, `to_dict()` gives JSON data.

    total_params, trainable_params: of the whole model; total_macs: multiply-adds per sample;
    activation_memory: bytes of every layer output for a batch of one in float32.
    """

    model: str
    input_shape: tuple[int, ...]
    rows: list[Row]
    total_params: int
    trainable_params: int
    total_macs: int
    activation_memory: int
    paper: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        rows = []
        for row in self.rows:
            entry = asdict(row)
            for key in ("kernel", "stride", "output_shape", "receptive_field", "jump"):
                entry[key] = None if entry[key] is None else list(entry[key])
            if row.paper is None:
                entry.pop("paper")
            else:
                entry["paper"] = row.paper.to_dict()
            rows.append(entry)
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "rows": rows,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_macs": self.total_macs,
            "activation_memory": self.activation_memory,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def format(self) -> str:
        """The table as text: thousands separators, multiply-adds labelled as such."""
        header = ["Layer", "Kind", "Patch/stride", "Output shape", "Params", "Multiply-adds",
                  "RF"]
        if self.paper:
            units = {row.paper.row.k for row in self.rows if row.paper}
            # the lectures count GoogLeNet's parameters in K of 1024, AlexNet's in thousands
            header += [f"Params (K={units.pop()})" if len(units) == 1 else "Params (K)", "paper",
                       "Mult-adds (M)", "paper", ""]
        lines = []
        for row in self.rows:
            cells = [
                row.name + ("" if row.strict_fit else " *"),
                row.kind,
                "" if row.kernel is None else f"{_volume(row.kernel)}/{_axes(row.stride)}",
                _volume(row.output_shape),
                f"{row.params:,}",
                f"{row.macs:,}",
                _axes(row.receptive_field),
            ]
            if self.paper:
                cells += row.paper.cells() if row.paper else [""] * 5
            lines.append(cells)
        widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=True)]
        numeric = {4, 5, 6, 7, 8, 9, 10}

        def render(cells):
            return "  ".join(
                c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        rule = "-" * len(render(header))
        out = [f"{self.model}, input {'x'.join(map(str, self.input_shape))}", rule,
               render(header), rule, *map(render, lines), rule]
        out.append(f"Total params: {self.total_params:,}")
        out.append(f"Trainable params: {self.trainable_params:,}")
        out.append(f"Non-trainable params: {self.total_params - self.trainable_params:,}")
        out.append(f"Multiply-adds per sample: {self.total_macs:,} "
                   f"(FLOPs = 2 x multiply-adds = {2 * self.total_macs:,})")
        out.append(f"Activation memory (batch 1, float32): {_bytes(self.activation_memory)}")
        if any(not row.strict_fit for row in self.rows):
            out.append("* a layer's stride drops input rows (the window does not fit exactly)")
        out.extend(self.notes)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


def _axes(values) -> str:
    """'7' for (7, 7), '3x1' for (3, 1), '-' for None."""
    if values is None:
        return "-"
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _volume(values) -> str:
    """'55x55x96' for (55, 55, 96), '-' for None."""
    return "-" if values is None else "x".join(map(str, values))


def _bytes(n: int) -> str:
    return f"{n:,} bytes ({n / 2**20:.2f} MiB)"


def _shape(output) -> tuple[int, ...] | None:
    while isinstance(output, (tuple, list)) and output:
        output = output[0]
    return tuple(output.shape[1:]) if isinstance(output, Tensor) else None


def _depth(path: str) -> int:
    return 0 if path == "" else path.count(".") + 1


def _is_row(path: str, module, depth: int) -> bool:
    """Rows are the modules `depth` levels down, and leaves above that level."""
    level = _depth(path)
    return level == depth or (0 < level < depth and not module._modules)


def _inside(path: str, row: str) -> bool:
    return row == "" or path == row or path.startswith(row + ".")


SCREEN_ROWS = 50  # rows that fit a terminal: deeper networks are shown by blocks


def screen_depth(model, rows: int = SCREEN_ROWS) -> int:
    """The deepest nesting level whose table has at most `rows` rows: every layer for networks
    that fit a screen (LeNet, AlexNet, VGG), blocks for deeper ones (ResNet-50: its stages'
    blocks). At least 1.

    >>> from striate import models
    >>> screen_depth(models.create("lenet5_modern"))
    1
    """
    modules = list(model.named_modules())[1:]
    deepest = max((_depth(path) for path, _ in modules), default=1)
    best = 1
    for depth in range(1, deepest + 1):
        if sum(_is_row(path, module, depth) for path, module in modules) <= rows:
            best = depth
    return best


def summary(model, input_shape=None, depth: int | None = None, paper: bool = False) -> Summary:
    """Table of the model's layers for one sample of input_shape (no batch axis; default the
    model's `default_input_shape`).

    depth: 1 (the default) lists the model's children, N lists modules N levels down (and
    shallower leaves); with paper=True the default is the depth the lectures' table describes.
    paper: add the lectures' table (seed 004's GoogLeNet, seeds 003/004's AlexNet) side by side
    in its units (params in K, multiply-adds in M), marking rows where it differs from the exact
    count; for `inception_v1` and `alexnet_paper`.
    Returns a `Summary`; see the module docstring for how multiply-adds are counted.
    """
    name = (getattr(model, "config", None) or {}).get("name", type(model).__name__)
    if paper and name not in PAPER_TABLES:
        raise ValueError(
            f"summary: paper=True has tables for {', '.join(sorted(PAPER_TABLES))}, not {name!r}"
        )
    if depth is None:
        depth = PAPER_TABLES[name][0] if paper else 1
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"summary: depth must be an int >= 1, got {depth!r}")
    shape = default_input_shape(model, input_shape, "summary")
    traced = trace(model, shape, record_graph=True)
    field_of = propagate(traced)

    leaves = [c for c in traced.calls if c.is_leaf and isinstance(c.output, Tensor)]
    macs = {id(c): layer_macs(c.module, c.inputs[0].shape, c.output.shape) for c in leaves}
    fits = {id(c): _fits(c) for c in leaves}

    # Row modules: depth-N modules, plus leaves above depth N; in the order their calls finished,
    # then any that never ran.
    row_paths: dict[str, Call | None] = {}
    for call in traced.calls:
        if _is_row(call.path, call.module, depth):
            row_paths[call.path] = call  # the last call: its output is the row's output
    for path, module in model.named_modules():
        if path not in row_paths and _is_row(path, module, depth):
            row_paths[path] = None
    modules = dict(model.named_modules())

    rows = []
    for path, call in row_paths.items():
        module = modules[path]
        inside = [c for c in leaves if _inside(c.path, path)]
        window = None
        if call is not None and call.is_leaf and isinstance(call.output, Tensor):
            window = layer_window(module, call.inputs[0].shape, call.output.shape)
        field: Field | None = None
        if call is not None and isinstance(call.output, Tensor):
            field = field_of(call.output)
        rows.append(Row(
            name=path,
            kind=type(module).__name__,
            kernel=window.kernel if window is not None and window.exact else None,
            stride=window.stride if window is not None and window.exact else None,
            output_shape=None if call is None else _shape(call.output),
            params=module.num_parameters(),
            macs=sum(macs[id(c)] for c in inside),
            receptive_field=None if field is None else field.size,
            jump=None if field is None else field.jump,
            strict_fit=all(fits[id(c)] for c in inside),
        ))
    result = Summary(
        model=name,
        input_shape=tuple(shape),
        rows=rows,
        total_params=model.num_parameters(),
        trainable_params=model.num_parameters(trainable_only=True),
        total_macs=sum(macs.values()),
        activation_memory=sum(c.output.size * _FLOAT32_BYTES for c in leaves),
        paper=paper,
    )
    if paper:
        result.notes = attach(rows, name)
    return result


def _fits(call: Call) -> bool:
    window = layer_window(call.module, call.inputs[0].shape, call.output.shape)
    return window is None or not window.exact or window.fits(call.inputs[0].shape[1:-1])
