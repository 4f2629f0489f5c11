"""Convolution arithmetic explained: the output-size formula filled in, and the sliding window
animated in the manner of the conv_arithmetic figures (github.com/vdumoulin/conv_arithmetic).

Every size and padding comes from `striate.arith`; every number shown in a cell comes from the
real `striate.functional` op. A 1-D case is drawn as a grid one row high.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import arith
from .. import functional as F
from . import _plot
from .explain_frames import GAP, INPUT, PAD, lift, render

__all__ = ["ConvExplanation", "explain_conv", "receptive_field_plot", "LECTURE_1D", "LECTURE_2D"]

_OP = "explain_conv"
_KINDS = ("conv", "pool", "transpose")
_POOLS = ("max", "avg")

# Lecture 000's worked examples: (input, kernel). The 1-D valid output is [1, 7, 9, 8, -1, 6];
# the first 2-D output row is 3, 0, 0, 1 (the slide prints 2 for the last one, a slip: its own
# dot product gives 1).
LECTURE_1D = (
    np.array([1, 0, 2, 3, 5, 1, 2, 3], dtype=np.float64),
    np.array([-1, 2, 1], dtype=np.float64),
)
LECTURE_2D = (
    np.array(
        [
            [1, 0, 2, 1, -1, 1],
            [0, 1, -1, 1, 0, 2],
            [1, 0, 0, 0, -1, 1],
            [0, -1, -1, 0, 2, 0],
            [1, 1, 0, -2, 1, 0],
            [0, 0, 1, -1, 0, 1],
        ],
        dtype=np.float64,
    ),
    np.array([[-1, 0, 1], [0, 2, 1], [1, 0, -1]], dtype=np.float64),
)

_AXIS_WORDS = {"H": ("row", "rows"), "W": ("column", "columns"), "L": ("element", "elements")}
_MAX_FRAMES = 2500


@dataclass(frozen=True)
class ConvExplanation:
    """What `explain_conv` worked out: sizes, padding, fit, the explanation text, the numbers.

    grid: the drawn input grid, (H_grid, W_grid) cell kinds (0 input, 1 zero inserted between
    input cells by a transposed convolution's stride, 2 padding); a 1-D case is one row high.
    fits: per axis, `arith.fits_exactly` (for 'transpose', of the convolution it transposes).
    windows: for each output position in row-major order, the (row, column) grid cells under the
    kernel, (K_total, 2). grid_values and shown_kernel hold what the cells display when values
    were asked for: the output equals sum(grid_values[window] * shown_kernel) (conv, transpose)
    or the max/mean of the window's non-padding cells (pool).
    """

    kind: str
    dims: int
    input_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: object
    pads: tuple[tuple[int, int], ...]
    output_size: tuple[int, ...]
    fits: tuple[bool, ...]
    text: str
    pool: str | None = None
    output_padding: tuple[int, ...] | None = None
    input: np.ndarray | None = None
    weights: np.ndarray | None = None
    output: np.ndarray | None = None
    grid: np.ndarray = field(default=None, repr=False)
    grid_values: np.ndarray | None = field(default=None, repr=False)
    shown_kernel: np.ndarray | None = field(default=None, repr=False)
    windows: tuple[np.ndarray, ...] = field(default=(), repr=False)
    gif_path: Path | None = None

    @property
    def fits_exactly(self) -> bool:
        """True when the stride uses every row of the padded input on every axis."""
        return all(self.fits)

    @property
    def frames(self) -> int:
        """Frames of the animation: one per output position."""
        return math.prod(self.output_size)

    def as_dict(self) -> dict:
        """Plain JSON-ready numbers (lists instead of arrays)."""
        def plain(a):
            return None if a is None else np.asarray(a).tolist()

        return {
            "kind": self.kind,
            "pool": self.pool,
            "dims": self.dims,
            "input_size": list(self.input_size),
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "dilation": list(self.dilation),
            "padding": self.padding if isinstance(self.padding, str) else plain(self.pads),
            "pads": [list(p) for p in self.pads],
            "output_padding": plain(self.output_padding),
            "output_size": list(self.output_size),
            "fits": list(self.fits),
            "fits_exactly": self.fits_exactly,
            "input": plain(self.input),
            "weights": plain(self.weights),
            "output": plain(self.output),
            "text": self.text,
            "gif_path": None if self.gif_path is None else str(self.gif_path),
        }

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------
# The numbers


def _size_text(sizes) -> str:
    return "x".join(map(str, sizes))


def _padding_text(kind, padding, pads, axes, kernel, dilation, stride, input_size, output_size):
    """The padding rule in words with this case's numbers."""
    split = ", ".join(f"{a} {p}" for a, p in zip(axes, pads, strict=True))
    if isinstance(padding, str) and padding.lower() == "valid":
        return "padding 'valid': none; the window stays inside the input"
    if isinstance(padding, str) and padding.lower() == "same":
        if kind == "transpose":
            rule = "X = I*S, padded as the convolution it transposes"
            return f"padding 'same' (TensorFlow's rule: {rule}, odd pixel at the end): {split}"
        sizes = ", ".join(
            f"{a}: O = ceil({i} / {s}) = {o}, total {p0 + p1}"
            for a, i, s, o, (p0, p1) in zip(axes, input_size, stride, output_size, pads,
                                             strict=True)
        )
        return (
            "padding 'same' (TensorFlow's rule): O = ceil(I / S); the total padding "
            "(O - 1)*S + d*(K-1) + 1 - I is split with the odd pixel at the end\n"
            f"  {sizes}; (start, end): {split}"
        )
    if isinstance(padding, str):
        each = ", ".join(
            f"{a} {d}*({k}-1) = {p0}" for a, k, d, (p0, _) in zip(axes, kernel, dilation, pads,
                                                                 strict=True)
        )
        return f"padding 'full': d*(K-1) on both sides: {each}"
    return f"padding given explicitly, (start, end): {split}"


def _formula_lines(kind, axes, input_size, kernel, stride, dilation, pads, output_size,
                   output_padding):
    lines = []
    for n, a in enumerate(axes):
        i, k, s, d, (p0, p1), o = (input_size[n], kernel[n], stride[n], dilation[n], pads[n],
                                   output_size[n])
        if kind == "transpose":
            e = output_padding[n]
            lines.append(f"{a}: X = (I - 1)*S - P_start - P_end + d*(K-1) + 1 + output_padding")
            lines.append(f"   X = ({i} - 1)*{s} - {p0} - {p1} + {d}*({k}-1) + 1 + {e} = {o}")
        else:
            lines.append(f"{a}: O = floor((I + P_start + P_end - d*(K-1) - 1) / S) + 1")
            lines.append(f"   O = floor(({i} + {p0} + {p1} - {d}*({k}-1) - 1) / {s}) + 1 = {o}")
    return lines


def _fit_warnings(name, axes, input_size, kernel, stride, dilation, pads, output_size):
    """Whether the stride fits: one line when the windows tile the padded input exactly,
    else one warning per axis whose stride leaves the last rows of the padded input unused."""
    lines = []
    for n, a in enumerate(axes):
        i, k, s, d, pad, o = (input_size[n], kernel[n], stride[n], dilation[n], pads[n],
                              output_size[n])
        try:
            arith.output_size(i, k, s, pad, d, strict=True, op=name, axis=a)
        except ValueError as error:
            # Cells of the padded input past the last window: the rows the stride drops.
            dropped = i + sum(pad) - ((o - 1) * s + arith.dilated(k, d))
            one, many = _AXIS_WORDS[a]
            tail = (f"the last {one} is dropped" if dropped == 1
                    else f"the last {dropped} {many} are dropped")
            lines.append(f"warning ({a}): {error}; {tail}")
    return lines or ["the stride fits: the last window ends on the last cell of the padded "
                     "input (nothing is dropped)"]


# ---------------------------------------------------------------------------------------------
# The drawn grid: which cells each output position reads


@dataclass(frozen=True)
class _Axis:
    """One axis of the drawn input grid."""

    kinds: np.ndarray  # (length,) cell kinds along the axis
    first: int  # drawn index of input element 0 (negative when padding crops it)
    step: int  # drawn distance between neighbouring input elements
    hop: int  # drawn distance between the windows of neighbouring outputs
    reach: int  # drawn distance between neighbouring kernel taps: the dilation


def _axis(kind, size, kernel, stride, dilation, pad, extra) -> _Axis:
    """conv/pool: the padded input; output o reads cells o*S + k*d.

    transpose: the same sum as a stride-1 convolution of the flipped kernel over the input with
    S - 1 zeros between elements and d*(K-1) - P zeros around it (a negative amount crops).
    """
    p0, p1 = pad
    if kind == "transpose":
        spread = (size - 1) * stride + 1  # input with S - 1 zeros between elements
        around = dilation * (kernel - 1)
        full = np.full(spread + 2 * around + extra, PAD, np.int8)
        full[around:around + spread] = GAP
        full[around:around + spread:stride] = INPUT
        return _Axis(full[p0:full.size - p1], around - p0, stride, 1, dilation)
    kinds = np.full(size + p0 + p1, PAD, np.int8)
    kinds[p0:p0 + size] = INPUT
    return _Axis(kinds, p0, 1, stride, dilation)


def _windows(axes, kernel, output_size) -> tuple[np.ndarray, ...]:
    """Grid cells under the kernel for each output position (row-major), each (K_total, 2)."""
    taps = np.stack(
        np.meshgrid(*(np.arange(k) * a.reach for k, a in zip(kernel, axes, strict=True)),
                    indexing="ij"),
        axis=-1,
    ).reshape(-1, 2)  # (kH*kW, 2)
    hops = np.array([a.hop for a in axes])
    return tuple(taps + hops * np.array(o) for o in np.ndindex(*output_size))


def _place(values: np.ndarray, axes, fill: float) -> np.ndarray:
    """The drawn grid filled with `fill`, holding the input values at their cells."""
    grid = np.full(tuple(a.kinds.size for a in axes), fill, dtype=np.float64)
    index, keep = [], []
    for n, a in enumerate(axes):
        cells = a.first + a.step * np.arange(values.shape[n])
        inside = (cells >= 0) & (cells < a.kinds.size)
        index.append(cells[inside])
        keep.append(np.flatnonzero(inside))
    grid[np.ix_(*index)] = values[np.ix_(*keep)]
    return grid


# ---------------------------------------------------------------------------------------------
# The real ops


def _op_name(kind, pool, dims) -> str:
    if kind == "pool":
        return f"{pool}_pool{dims}d"
    return f"conv_transpose{dims}d" if kind == "transpose" else f"conv{dims}d"


def _run_op(name, kind, x, w, kernel, stride, padding, dilation, pads, output_padding):
    """The output of the real striate.functional op `name` on one single-channel input."""
    op = getattr(F, name)
    # Explicit pads are passed resolved, so the op sees exactly the geometry that is drawn.
    pad_arg = padding if isinstance(padding, str) else pads
    xb = x[None, ..., None]  # (1, *spatial, 1)
    if kind == "pool":
        y = op(xb, kernel, stride, padding=pad_arg)
    elif kind == "conv":
        y = op(xb, w[..., None, None], stride=stride, padding=pad_arg, dilation=dilation)
    else:
        y = op(xb, w[..., None, None], stride=stride, padding=pad_arg,
               output_padding=output_padding, dilation=dilation)
    return y.data[0, ..., 0]  # (*out,)


def _example(values, weights, kind, input_size, kernel, dims):
    """The input and kernel numbers to show: given, the lecture's when the sizes match, or
    small random integers (a fixed seed, so the same call draws the same picture)."""
    lecture_x, lecture_w = LECTURE_1D if dims == 1 else LECTURE_2D
    rng = np.random.default_rng(0)
    if values is True:
        if input_size == lecture_x.shape:
            x = lecture_x
        else:
            x = rng.integers(0, 10 if kind == "pool" else 5, size=input_size).astype(np.float64)
    else:
        x = np.asarray(values, dtype=np.float64)
        if x.shape != input_size:
            raise ValueError(
                f"{_OP}: values must have the input's shape {input_size}, got {x.shape}"
            )
    if kind == "pool":
        if weights is not None:
            raise ValueError(f"{_OP}: pooling has no weights; got weights with kind='pool'")
        return x, None
    if weights is None:
        if kernel == lecture_w.shape:
            return x, lecture_w
        return x, rng.integers(-1, 2, size=kernel).astype(np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != kernel:
        raise ValueError(f"{_OP}: weights must have the kernel's shape {kernel}, got {w.shape}")
    return x, w


def explain_conv(
    input_size: int | Sequence[int],
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding="valid",
    dilation: int | Sequence[int] = 1,
    dims: int = 2,
    kind: str = "conv",
    values: bool | np.ndarray | None = None,
    gif_path: str | os.PathLike | None = None,
    *,
    pool: str = "max",
    weights: np.ndarray | None = None,
    output_padding: int | Sequence[int] | None = None,
) -> ConvExplanation:
    """Explain one convolution, pooling or transposed convolution: sizes, padding, the filled
    formula, and (with gif_path) an animation with one frame per output position.

    O = floor((I + P_start + P_end - d*(K-1) - 1) / S) + 1 per axis (conv, pool);
    X = (I - 1)*S - P_start - P_end + d*(K-1) + 1 + output_padding (transpose).

    input_size, kernel, stride, dilation: an int or `dims` ints (kernel is the kernel's size);
    padding: any form `striate.arith.resolve_padding` takes. kind: 'conv', 'pool' (`pool` picks
    'max' or 'avg') or 'transpose' (input_size is then the transposed convolution's input).
    values: None for a picture without numbers; True for numbers (lecture 000's example when the
    sizes match: the 1-D series [1, 0, 2, 3, 5, 1, 2, 3] with kernel [-1, 2, 1], or the 6x6 input
    with its 3x3 kernel; otherwise small integers); or an array of shape input_size. weights: the
    kernel's numbers, shape kernel. The output numbers come from the real striate.functional op.

    Returns a ConvExplanation: output_size, pads ((start, end) per axis), fits (per axis,
    `arith.fits_exactly`), text, and input/weights/output arrays when values were asked for.

    >>> explain_conv(7, 3, stride=3).output_size
    (2, 2)
    """
    if dims not in (1, 2):
        raise ValueError(f"{_OP}: dims must be 1 or 2, got {dims!r}")
    if kind not in _KINDS:
        raise ValueError(f"{_OP}: kind must be one of {_KINDS}, got {kind!r}")
    if kind == "pool" and pool not in _POOLS:
        raise ValueError(f"{_OP}: pool must be 'max' or 'avg', got {pool!r}")
    size = arith.ntuple(input_size, dims, "input_size", _OP)
    kernel = arith.ntuple(kernel, dims, "kernel", _OP)
    stride = arith.ntuple(stride, dims, "stride", _OP)
    dilation = arith.ntuple(dilation, dims, "dilation", _OP)
    if kind == "pool" and dilation != (1,) * dims:
        raise ValueError(f"{_OP}: pooling windows have no dilation; got dilation={dilation}")
    if output_padding is not None and kind != "transpose":
        raise ValueError(f"{_OP}: output_padding applies to kind='transpose' only, got "
                         f"kind={kind!r}")
    axes = ("L",) if dims == 1 else ("H", "W")

    if kind == "transpose":
        out, pads = arith.transpose_geometry(size, kernel, stride, padding, dilation,
                                             output_padding, op=_OP)
        # The output padding that 'same' implies: what the formula needs to reach X.
        extra = tuple(
            x - (i - 1) * s + p0 + p1 - arith.dilated(k, d)
            for x, i, s, (p0, p1), k, d in zip(out, size, stride, pads, kernel, dilation,
                                                strict=True)
        )
        fits = tuple(arith.fits_exactly(x, k, s, p, d)
                     for x, k, s, p, d in zip(out, kernel, stride, pads, dilation, strict=True))
    else:
        out, pads = arith.conv_geometry(size, kernel, stride, padding, dilation, op=_OP)
        extra = None
        fits = tuple(arith.fits_exactly(i, k, s, p, d)
                     for i, k, s, p, d in zip(size, kernel, stride, pads, dilation, strict=True))

    name = _op_name(kind, pool, dims)
    header = (
        f"{name}: input {_size_text(size)}, kernel {_size_text(kernel)}, stride "
        f"{_size_text(stride)}, dilation {_size_text(dilation)}, padding {padding!r} -> output "
        f"{_size_text(out)}"
    )
    lines = [header, _padding_text(kind, padding, pads, axes, kernel, dilation, stride, size,
                                   out)]
    lines += _formula_lines(kind, axes, size, kernel, stride, dilation, pads, out, extra)
    if kind == "pool":
        lines.append("max pooling: padding cells never win the max (they act as -inf)"
                     if pool == "max" else
                     "average pooling: padding cells are left out of the count")
    if kind == "transpose":
        gaps = ", ".join(f"{a} {s - 1}" for a, s in zip(axes, stride, strict=True))
        lines.append(
            "each input cell is scattered into the output through the kernel: input i adds "
            "x[i]*w[k] to output i*S + k*d - P_start. Drawn as the same sum gathered: a "
            f"stride-1 convolution of the flipped kernel over the input with S - 1 zeros "
            f"between cells ({gaps}) and d*(K-1) - P zeros around it"
        )
    else:
        lines += _fit_warnings(name, axes, size, kernel, stride, dilation, pads, out)

    grid_axes = [
        _axis(kind, i, k, s, d, p, 0 if extra is None else e)
        for i, k, s, d, p, e in zip(lift(size, 1), lift(kernel, 1), lift(stride, 1),
                                    lift(dilation, 1), lift(pads, (0, 0)),
                                    lift(extra or (0,) * dims, 0), strict=True)
    ]
    grid = np.maximum.outer(grid_axes[0].kinds, grid_axes[1].kinds)  # (H_grid, W_grid)
    windows = _windows(grid_axes, lift(kernel, 1), lift(out, 1))

    x = w = y = grid_values = shown = None
    if values is not None and values is not False:
        x, w = _example(values, weights, kind, size, kernel, dims)
        y = _run_op(name, kind, x, w, kernel, stride, padding, dilation, pads, output_padding)
        assert y.shape == out, f"{name} returned {y.shape}, arith says {out}"
        # Padding holds zeros for a convolution; for pooling it holds nothing (never counted).
        fill = np.nan if kind == "pool" else 0.0
        grid_values = _place(x.reshape(lift(size, 1)), grid_axes, fill)
        shown = None if w is None else (np.flip(w) if kind == "transpose" else w)
    elif weights is not None:
        raise ValueError(f"{_OP}: weights need values=True or an input array")

    result = ConvExplanation(
        kind=kind, dims=dims, input_size=size, kernel_size=kernel, stride=stride,
        dilation=dilation, padding=padding, pads=pads, output_size=out, fits=fits,
        text="\n".join(lines), pool=pool if kind == "pool" else None, output_padding=extra,
        input=x, weights=w, output=y, grid=grid, grid_values=grid_values, shown_kernel=shown,
        windows=windows,
    )
    if gif_path is None:
        return result
    if result.frames > _MAX_FRAMES:
        raise ValueError(
            f"{_OP}: {result.frames} output positions would make a {result.frames}-frame GIF "
            f"(at most {_MAX_FRAMES}); use a smaller input_size"
        )
    _plot.save_gif(render(result, header), gif_path, duration_ms=700)
    return dataclasses.replace(result, gif_path=Path(gif_path))


def receptive_field_plot(
    layers: Sequence[tuple], path: str | os.PathLike, names: Sequence[str] | None = None
) -> list[arith.ReceptiveField]:
    """Plot how far each layer's units see: receptive field size (bars) and jump (line).

    size_out = size_in + d*(K-1)*jump_in; jump_out = jump_in*S (`arith.receptive_fields`).

    layers: (kernel, stride[, padding_start[, dilation]]) per layer, one spatial axis;
    names: one label per layer (default 'layer 1', ...). Writes a PNG at path and returns the
    ReceptiveField of every layer.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "rf.png")
    >>> [rf.size for rf in receptive_field_plot([(3, 1), (3, 1), (2, 2)], path)]
    [3, 5, 6]
    """
    layers = list(layers)
    if not layers:
        raise ValueError("receptive_field_plot: layers is empty; give at least one "
                         "(kernel, stride) spec")
    names = [f"layer {n + 1}" for n in range(len(layers))] if names is None else list(names)
    if len(names) != len(layers):
        raise ValueError(f"receptive_field_plot: names has {len(names)} entries for "
                         f"{len(layers)} layers")
    fields = arith.receptive_fields(layers)
    sizes = [rf.size for rf in fields]
    jumps = [rf.jump for rf in fields]

    fig = _plot.figure(figsize=(max(5.0, 0.7 * len(layers) + 2.5), 4.0), layout="constrained")
    ax = fig.add_subplot()
    at = np.arange(len(layers))
    bars = ax.bar(at, sizes, color="#3f7cc0", label="receptive field size (input pixels)")
    ax.bar_label(bars, labels=[str(s) for s in sizes], fontsize=8)
    ax.set_xticks(at, names, rotation=45 if len(layers) > 6 else 0, ha="right"
                  if len(layers) > 6 else "center")
    ax.set_ylabel("receptive field size (pixels)")
    ax.set_title("Receptive field per layer: deeper units see more of the input")
    twin = ax.twinx()
    twin.plot(at, jumps, "o-", color="#c0504d", label="jump (input pixels between units)")
    twin.set_ylabel("jump (pixels)")
    twin.set_ylim(0, max(jumps) * 1.15 + 1)
    handles = [bars, *twin.get_lines()]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
    _plot.save_figure(fig, path)
    return fields
