"""Pooling: max, average, L_p-norm and Gaussian-weighted pooling over sliding windows, global and
adaptive pooling, and maxout.

Every sliding-window pool runs on one N-d core shared by the 1-D, 2-D and 3-D functions. The
window is walked offset by offset: at offset (u, v) the strided view x[:, u::sH, v::sW] holds that
element of every window at once, (N, *out, C). Forward reduces these views into the output;
backward adds each view's share of dy back at the same offset (a slice-add, never np.add.at).
Padding is never built: each offset's view is cut to the windows whose element lies inside the
input, which is what padding with -inf (max) or zeros (sums) would give. Overlapping windows
(stride < size) need nothing special. Non-overlapping windows (stride == size) take the same
loop: each view is then one plane of the (N, H_out, kH, W_out, kW, C) reshape.
NOTE: reducing that reshape with ndarray.max / ndarray.sum measured no faster than the loop (max
1.6x slower on (16, 112, 112, 64) float32), so the loop is the only path. Large batches are split
over the cores (NumPy releases the GIL in its loops).

Output sizes and 'same' padding come from `arith.conv_geometry` with dilation 1. Adaptive pooling
rearranges PyTorch's uneven windows into uniform ones and reuses the same core.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np

from .. import _parallel
from .._parallel import over_batch
from ..arith import conv_geometry, ntuple, resolve_padding
from ..tensor import Op, Tensor, as_tensor
from .shape import copy_values, packed

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "gaussian_pool1d",
    "gaussian_pool2d",
    "gaussian_pool3d",
    "global_avg_pool",
    "global_max_pool",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "maxout",
]

_AXES = {1: "L", 2: "HW", 3: "DHW"}
_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}

Pads = tuple[tuple[int, int], ...]

# Input bytes per block of samples that max pooling takes through all its steps before the next
# block (`MaxPool`): the intermediate results then stay in the (32 MiB, shared) L3 cache.
_BLOCK_BYTES = 8 << 20


# ===== validation ==============================================================================
class _Windows(NamedTuple):
    """Where the windows of a sliding-window pool lie (per spatial axis)."""

    size: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads  # (start, end) per axis
    out: tuple[int, ...]


def _fmt(values: tuple[int, ...]):
    """A per-axis tuple as users write it: a bare int in 1-D."""
    return values[0] if len(values) == 1 else values


def _check_rank(op: str, x: Tensor, n: int) -> None:
    if x.ndim != n + 2:
        raise ValueError(f"{op}: expected a {n + 2}-D input {_LAYOUTS[n]}, got shape {x.shape}")


def _geometry(op: str, x: Tensor, n: int, size, stride, padding) -> _Windows:
    """Validated windows of a sliding-window pool over x.

    Every window must hold at least one input element: a window of padding alone has no maximum
    and no average.
    """
    _check_rank(op, x, n)
    size = ntuple(size, n, "size", op)
    stride = size if stride is None else ntuple(stride, n, "stride", op)
    spatial = x.shape[1:-1]
    pads = resolve_padding(padding, spatial, size, stride, (1,) * n, op)
    for axis, i, k, (p0, p1) in zip(_AXES[n], spatial, size, pads, strict=True):
        if i + p0 + p1 < k:
            padded = f" padded by ({p0}, {p1})" if p0 or p1 else ""
            raise ValueError(
                f"{op}: size {_fmt(size)} with stride {_fmt(stride)} gives {axis}_out=0 for "
                f"{axis}={i}{padded}; pad the input or use a smaller window"
            )
    out, pads = conv_geometry(spatial, size, stride, pads, (1,) * n, op=op)
    for axis, i, k, s, (p0, _), o in zip(_AXES[n], spatial, size, stride, pads, out,
                                         strict=True):
        if p0 >= k or (o - 1) * s - p0 >= i:
            raise ValueError(
                f"{op}: padding {padding!r} leaves windows along {axis} that hold only padding "
                f"(size {_fmt(size)}, {axis}={i}); use less padding than the window size"
            )
    return _Windows(size, stride, pads, out)


def _real(op: str, name: str, value, minimum: float, inclusive: bool) -> float:
    """A real hyper-parameter as a Python float (NumPy scalars would upcast float32 data)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    value = float(value)
    if not (value >= minimum if inclusive else value > minimum) or math.isnan(value):
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{op}: {name} must be {bound} {minimum:g}, got {value!r}")
    return value


# ===== the N-d window core =====================================================================
class _Span(NamedTuple):
    """What one window offset reads: y[out] takes x[inp] (index tuples over (N, *spatial, C))."""

    index: int  # the offset's place in window (row-major) order
    out: tuple
    inp: tuple
    full: bool  # feeds every output
    tile: bool  # below the stride on every axis


def _offsets(size: Sequence[int]) -> list[tuple[int, ...]]:
    """Every position inside a window, in window (row-major) order."""
    return list(itertools.product(*map(range, size)))


def _spans(windows: _Windows, spatial: Sequence[int]) -> list[_Span]:
    """For each window offset that reaches the input, the outputs it feeds and the strided view
    of the input it reads. At offset u, output i reads x[i*s + u - p0]; reads that would fall in
    the padding are cut off, so the padding is never built."""
    spans = []
    for index, offset in enumerate(_offsets(windows.size)):
        out, inp = [slice(None)], [slice(None)]
        for u, s, o, (p0, _), n in zip(offset, windows.stride, windows.out, windows.pads,
                                       spatial, strict=True):
            lo = max(0, -((u - p0) // s))  # first i with i*s + u - p0 >= 0
            hi = min(o, (n - 1 - u + p0) // s + 1)  # past the last i with i*s + u - p0 < n
            if lo >= hi:
                break
            first = lo * s + u - p0
            out.append(slice(lo, hi))
            inp.append(slice(first, first + s * (hi - lo - 1) + 1, s))
        else:
            full = all(sl.start == 0 and sl.stop == o
                       for sl, o in zip(out[1:], windows.out, strict=True))
            tile = all(u < s for u, s in zip(offset, windows.stride, strict=True))
            spans.append(_Span(index, tuple(out), tuple(inp), full, tile))
    return spans


def _axis_slice(axis: int, index) -> tuple:
    """Index that picks `index` along `axis` and everything along the axes before it."""
    return (slice(None),) * axis + (index,)


def _is_padded(pads: Pads) -> bool:
    return any(p for pair in pads for p in pair)


def _window_sum(x: np.ndarray, windows: _Windows, spans: list[_Span], weights=None):
    """sum over offsets o of weights[o] * (element o of every window), padding adding nothing:
    (N, *out, C). weights: one per offset in window order, or None for all ones."""
    total = np.empty((x.shape[0], *windows.out, x.shape[-1]), dtype=x.dtype)

    def run(rows):
        acc, xr = total[rows], x[rows]
        if not spans[0].full:
            acc.fill(0)
        for i, span in enumerate(spans):
            view = packed(xr[span.inp])
            term = view if weights is None else view * weights[span.index]
            if i == 0 and span.full:
                np.copyto(acc, term)
            else:
                acc[span.out] += term

    over_batch(run, x.shape[0], total.size * len(spans))
    return total


def _scatter(shape, dtype, windows: _Windows, spans: list[_Span],
             parts: Callable[[slice], Iterable[np.ndarray]], out=None) -> np.ndarray:
    """Adjoint of reading the windows: the gradient (shape) of an input whose spans received
    parts(rows), one array per span shaped like y[rows][span.out], added back where each span
    read from; written into `out` when given."""
    dx = np.empty(shape, dtype=dtype) if out is None else out
    # When windows are at least as wide as the stride, the tile offsets (u < s on every axis)
    # reach each input position before O*s - p0 exactly once, and before any other offset does
    # (window order): their parts are copied in, and only the positions from O*s - p0 on need
    # zeros first. Saves a zero fill and a read per copy.
    tiled = all(k >= s for k, s in zip(windows.size, windows.stride, strict=True))
    ends = [max(o * s - p0, 0)
            for o, s, (p0, _) in zip(windows.out, windows.stride, windows.pads, strict=True)]

    def run(rows):
        dr = dx[rows]
        if tiled:
            for axis, end in enumerate(ends, start=1):
                dr[_axis_slice(axis, slice(end, None))] = 0
        else:
            dr.fill(0)
        for span, part in zip(spans, parts(rows), strict=True):
            if tiled and span.tile:
                copy_values(dr[span.inp], part)
            else:
                dr[span.inp] += part

    over_batch(run, shape[0], math.prod(windows.out) * shape[0] * shape[-1] * len(spans))
    return dx


# ===== max pooling =============================================================================
def _first_reaching(windows: _Windows, dtype) -> np.ndarray:
    """Window-order index of the first offset that reads the input, per output: (1, *out, 1).
    Along an axis it is max(0, p0 - i*s), the first offset past the start padding."""
    index = np.zeros((1,) * (len(windows.out) + 2), dtype=np.int64)
    for a, (k, s, o, (p0, _)) in enumerate(
        zip(windows.size, windows.stride, windows.out, windows.pads, strict=True)
    ):
        first = np.maximum(p0 - np.arange(o) * s, 0)
        index = index * k + first.reshape((1,) * (a + 1) + (o,) + (1,) * (len(windows.out) - a))
    return index.astype(dtype)


def _axis_windows(windows: _Windows, spatial: Sequence[int]) -> list[_Windows]:
    """The window as a sequence of one-axis windows, last axis first, leaving out axes it does
    not touch. Max pooling is separable: the maximum over the last axis, then over the one
    before, ..., is the window's maximum, and taking the first maximum at each step picks the
    window's first maximum in window (row-major) order. Each step reads its input once per
    offset along one axis only: 3 + 3 passes instead of 9 for a 3x3 window."""
    n = len(windows.size)
    stages = []
    current = list(spatial)
    for a in reversed(range(n)):
        k, s, pads, o = windows.size[a], windows.stride[a], windows.pads[a], windows.out[a]
        if k == 1 and s == 1 and pads == (0, 0):
            continue
        stages.append(_Windows(
            tuple(k if i == a else 1 for i in range(n)),
            tuple(s if i == a else 1 for i in range(n)),
            tuple(pads if i == a else (0, 0) for i in range(n)),
            tuple(o if i == a else size for i, size in enumerate(current)),
        ))
        current[a] = o
    return stages


def _max_stage(x: np.ndarray, windows: _Windows, spans: list[_Span], y=None, argmax=None):
    """Max pooling of x over `windows` (whose `_spans` are given): y (written into the given
    array, if any), and into `argmax`, when given (`_argmax_dtype`), the window-order index of
    each window's first maximum."""
    if y is None:
        y = np.empty((x.shape[0], *windows.out, x.shape[-1]), dtype=x.dtype)
    track = argmax is not None
    dtype = _argmax_dtype(windows)
    first = spans[0].full
    start = None if first else _first_reaching(windows, dtype)

    def run(rows):
        yr, xr = y[rows], x[rows]
        if first:
            copy_values(yr, xr[spans[0].inp])
        else:
            yr.fill(-np.inf)
        if track:
            # Start at the first element of the window that is not padding, as PyTorch.
            arg = argmax[rows]
            np.copyto(arg, spans[0].index if first else start)
            better = np.empty(yr.shape, dtype=bool)
            candidate = np.empty_like(arg)
        for span in spans[1:] if first else spans:
            view, target = packed(xr[span.inp]), yr[span.out]
            if track:
                # A later offset takes over only when strictly larger, so ties go to the
                # first (as PyTorch). Offsets come in window order, so the latest take-over
                # has the largest index: a running maximum of better * index tracks it
                # (fast uint8 arithmetic, where boolean-mask assignment is much slower).
                b, c, a = better[span.out], candidate[span.out], arg[span.out]
                np.greater(view, target, out=b)
                np.multiply(b, dtype.type(span.index), out=c)
                np.maximum(a, c, out=a)
            np.maximum(target, view, out=target)

    over_batch(run, x.shape[0], y.size * len(spans))
    return y


def _argmax_dtype(windows: _Windows) -> np.dtype:
    """The smallest integer type that holds a window-order index."""
    return np.min_scalar_type(math.prod(windows.size) - 1)


def _route_stage(dy: np.ndarray, argmax: np.ndarray, shape, windows: _Windows, spans,
                 out=None):
    """The gradient of a `_max_stage` input (shape): dy routed to each window's maximum;
    written into `out` when given."""

    def parts(rows):
        dyr, arg = dy[rows], argmax[rows]
        hit = np.empty(dyr.shape, dtype=bool)
        routed = np.empty_like(dyr)
        return (
            np.multiply(dyr[span.out], np.equal(arg[span.out], span.index, out=hit[span.out]),
                        out=routed[span.out])
            for span in spans
        )

    return _scatter(shape, dy.dtype, windows, spans, parts, out)


class MaxPool(Op):
    """y = max over the window of x padded with -inf; dy goes to the first maximum.

    Computed one axis at a time (`_axis_windows`); backward routes dy back through the axes in
    reverse, each step keeping the index of its winners (all backward needs, with the shapes).
    Both run block by block of samples (`_BLOCK_BYTES`), every step on one block before the
    next block, so that the intermediate results stay in cache: on (16, 112, 112, 64) 3x3/2
    that measured 1.8x faster than each step over the whole batch.
    """

    def forward(self, x, windows):
        track = self.needs_grad[0]
        self.stages, shape = [], x.shape  # (input shape, one-axis windows, spans) per step
        for stage in _axis_windows(windows, x.shape[1:-1]):
            self.stages.append((shape, stage, _spans(stage, shape[1:-1])))
            shape = (shape[0], *stage.out, shape[-1])
        if not self.stages:  # a window of one element on every axis leaves x as it is
            return x.copy()
        y = np.empty(shape, dtype=x.dtype)
        self.argmax = [np.empty((s[0], *w.out, s[-1]), _argmax_dtype(w)) if track else None
                       for s, w, _ in self.stages]
        for block in _sample_blocks(x):
            z = x[block]
            for k, (_, stage, spans) in enumerate(self.stages):
                last = k == len(self.stages) - 1
                arg = None if self.argmax[k] is None else self.argmax[k][block]
                z = _max_stage(z, stage, spans, y[block] if last else None, arg)
        return y

    def backward(self, dy):
        if not self.stages:
            return (dy.copy(),)
        dx = np.empty(self.stages[0][0], dtype=dy.dtype)
        for block in _sample_blocks(dx):
            g = dy[block]
            for k in reversed(range(len(self.stages))):
                shape, stage, spans = self.stages[k]
                shape = (g.shape[0], *shape[1:])
                g = _route_stage(g, self.argmax[k][block], shape, stage, spans,
                                 dx[block] if k == 0 else None)
        return (dx,)


def _sample_blocks(x: np.ndarray) -> list[slice]:
    """The batch of x cut into blocks of about `_BLOCK_BYTES` (at least one sample per thread,
    so that each step can still split a block over the threads)."""
    return _parallel.blocks(slice(0, x.shape[0]), x[:1].nbytes, _BLOCK_BYTES,
                            least=_parallel.THREADS)


def _max_pool(op: str, n: int, x, size, stride, padding) -> Tensor:
    x = as_tensor(x)
    return MaxPool.apply(x, windows=_geometry(op, x, n, size, stride, padding))


def max_pool1d(x, size, stride=None, padding="valid") -> Tensor:
    """1-D max pooling: the largest value in each window; padding never wins.

    y[n, i, c] = max_{u<k} xp[n, i*s + u, c]   (xp: x padded with -inf)

    x: (N, L, C); size, stride (default: size): int; padding: any form of `arith`.
    Returns (N, L_out, C), L_out = floor((L + p0 + p1 - k) / s) + 1.

    >>> max_pool1d(np.zeros((2, 9, 3)), 3, stride=2).shape
    (2, 4, 3)
    """
    return _max_pool("max_pool1d", 1, x, size, stride, padding)


def max_pool2d(x, size, stride=None, padding="valid") -> Tensor:
    """2-D max pooling: the largest value in each window; padding never wins.

    y[n, i, j, c] = max_{u<kH, v<kW} xp[n, i*sH + u, j*sW + v, c]   (xp: x padded with -inf)

    The gradient goes to the window's maximum, the first one in window order on ties.
    x: (N, H, W, C); size, stride (default: size): int or (kH, kW); padding: 'valid', 'same'
    (TensorFlow), 'full', an int, (pH, pW) or ((pH0, pH1), (pW0, pW1)).
    Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1.

    >>> max_pool2d(np.zeros((2, 8, 8, 3)), 2).shape
    (2, 4, 4, 3)
    """
    return _max_pool("max_pool2d", 2, x, size, stride, padding)


def max_pool3d(x, size, stride=None, padding="valid") -> Tensor:
    """3-D max pooling: the largest value in each window; padding never wins.

    y[n, d, i, j, c] = max_{t<kD, u<kH, v<kW} xp[n, d*sD + t, i*sH + u, j*sW + v, c]

    x: (N, D, H, W, C); size, stride (default: size): int or (kD, kH, kW).
    Returns (N, D_out, H_out, W_out, C), D_out = floor((D + pD0 + pD1 - kD) / sD) + 1.

    >>> max_pool3d(np.zeros((1, 4, 6, 6, 2)), 2).shape
    (1, 2, 3, 3, 2)
    """
    return _max_pool("max_pool3d", 3, x, size, stride, padding)


# ===== average and Gaussian-weighted pooling ===================================================
class WeightedAverage(Op):
    """y = sum_o w[o] * xp[window element o] / norm; xp is x padded with zeros.

    Average pooling has w = 1 and norm = the element count; Gaussian pooling has normalised
    distance weights. weights: one per window offset, or None for all ones; norm: a number or
    an array (1, *out, 1) when padding is excluded from it.
    """

    def forward(self, x, windows, weights, norm):
        self.spans = _spans(windows, x.shape[1:-1])
        y = _window_sum(x, windows, self.spans, weights)
        y /= norm
        self.shape, self.windows, self.weights, self.norm = x.shape, windows, weights, norm
        return y

    def backward(self, dy):
        g = dy / self.norm
        weights = self.weights

        def parts(rows):
            gr = g[rows]
            if weights is None:
                return (gr[span.out] for span in self.spans)
            return (gr[span.out] * weights[span.index] for span in self.spans)

        return (_scatter(self.shape, dy.dtype, self.windows, self.spans, parts),)


def _real_weight(axis_weights, spatial, windows: _Windows, dtype) -> np.ndarray:
    """Sum of the weights that fall on real input, per output position: (1, *out, 1).

    The weights are separable (w[u, v] = wH[u] * wW[v]) and the real part of a window is a box,
    so the sum is a product of one sum per axis.
    """
    n = len(spatial)
    norm = np.ones((1,) * (n + 2))
    for a, (w, size, s, (p0, _), o) in enumerate(
        zip(axis_weights, spatial, windows.stride, windows.pads, windows.out, strict=True)
    ):
        position = np.arange(o)[:, None] * s - p0 + np.arange(len(w))  # (o, k) input index
        axis_norm = ((position >= 0) & (position < size)) @ w  # (o,)
        norm = norm * axis_norm.reshape((1,) * (a + 1) + (o,) + (1,) * (n - a))
    return norm.astype(dtype)


def _avg_pool(op: str, n: int, x, size, stride, padding, count_include_pad) -> Tensor:
    x = as_tensor(x)
    windows = _geometry(op, x, n, size, stride, padding)
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"{op}: count_include_pad must be True or False, got {count_include_pad!r}")
    if count_include_pad or not _is_padded(windows.pads):
        norm = math.prod(windows.size)
    else:
        ones = [np.ones(k) for k in windows.size]
        norm = _real_weight(ones, x.shape[1:-1], windows, x.dtype)
    return WeightedAverage.apply(x, windows=windows, weights=None, norm=norm)


def avg_pool1d(x, size, stride=None, padding="valid", count_include_pad=False) -> Tensor:
    """1-D average pooling: the mean of each window.

    y[n, i, c] = sum_{u<k} xp[n, i*s + u, c] / count   (xp: x padded with zeros)

    count is the number of input elements in the window (k when count_include_pad, PyTorch's
    default). x: (N, L, C). Returns (N, L_out, C), L_out = floor((L + p0 + p1 - k) / s) + 1.

    >>> avg_pool1d(np.zeros((2, 9, 3)), 3, stride=2, padding="same").shape
    (2, 5, 3)
    """
    return _avg_pool("avg_pool1d", 1, x, size, stride, padding, count_include_pad)


def avg_pool2d(x, size, stride=None, padding="valid", count_include_pad=False) -> Tensor:
    """2-D average pooling: the mean of each window.

    y[n, i, j, c] = sum_{u<kH, v<kW} xp[n, i*sH + u, j*sW + v, c] / count   (xp: zero padded)

    count is the number of input elements in the window: padding is left out by default
    (TensorFlow, Keras); count_include_pad=True counts it (kH*kW, PyTorch's default).
    x: (N, H, W, C); size, stride (default: size): int or (kH, kW); padding as `max_pool2d`.
    Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1.

    >>> avg_pool2d(np.zeros((2, 8, 8, 3)), 2).shape
    (2, 4, 4, 3)
    """
    return _avg_pool("avg_pool2d", 2, x, size, stride, padding, count_include_pad)


def avg_pool3d(x, size, stride=None, padding="valid", count_include_pad=False) -> Tensor:
    """3-D average pooling: the mean of each window.

    y[n, d, i, j, c] = sum_{t, u, v} xp[n, d*sD + t, i*sH + u, j*sW + v, c] / count

    x: (N, D, H, W, C). Returns (N, D_out, H_out, W_out, C),
    D_out = floor((D + pD0 + pD1 - kD) / sD) + 1; count as `avg_pool2d`.

    >>> avg_pool3d(np.zeros((1, 4, 6, 6, 2)), 2).shape
    (1, 2, 3, 3, 2)
    """
    return _avg_pool("avg_pool3d", 3, x, size, stride, padding, count_include_pad)


def _gaussian_pool(op: str, n: int, x, size, stride, padding, sigma) -> Tensor:
    x = as_tensor(x)
    windows = _geometry(op, x, n, size, stride, padding)
    sigma = _real(op, "sigma", sigma, 0, inclusive=False)
    # exp(-d^2 / 2 sigma^2) of the distance d from the window centre factors into one Gaussian
    # per axis; each is normalised to sum 1, so their product is too.
    axis_weights = []
    for k in windows.size:
        w = np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * sigma**2))
        axis_weights.append(w / w.sum())
    # (kH*kW,) in window order
    weights = functools.reduce(np.multiply.outer, axis_weights).ravel().astype(x.dtype)
    norm = 1
    if _is_padded(windows.pads):
        norm = _real_weight(axis_weights, x.shape[1:-1], windows, x.dtype)
    return WeightedAverage.apply(x, windows=windows, weights=weights, norm=norm)


def gaussian_pool1d(x, size, stride=None, padding="valid", sigma=1.0) -> Tensor:
    """1-D Gaussian-weighted average pooling (weights fall with the distance from the centre).

    y[n, i, c] = sum_u w[u] xp[n, i*s + u, c] / sum_{u on input} w[u],
    w[u] = exp(-(u - (k-1)/2)^2 / (2 sigma^2)); padding carries no weight.

    x: (N, L, C). Returns (N, L_out, C), L_out = floor((L + p0 + p1 - k) / s) + 1.

    >>> gaussian_pool1d(np.zeros((2, 9, 3)), 3, stride=2).shape
    (2, 4, 3)
    """
    return _gaussian_pool("gaussian_pool1d", 1, x, size, stride, padding, sigma)


def gaussian_pool2d(x, size, stride=None, padding="valid", sigma=1.0) -> Tensor:
    """2-D Gaussian-weighted average pooling: a weighted average based on the distance from the
    central pixel (Goodfellow et al., ch. 9.3).

    y[n, i, j, c] = sum_{u,v} w[u, v] xp[n, i*sH + u, j*sW + v, c] / sum_{(u,v) on input} w[u, v]
    w[u, v] = exp(-((u - (kH-1)/2)^2 + (v - (kW-1)/2)^2) / (2 sigma^2))

    Weights on padding are left out of the normalisation, so sigma -> inf gives `avg_pool2d`.
    x: (N, H, W, C). Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1.

    >>> gaussian_pool2d(np.zeros((2, 8, 8, 3)), 3, stride=2, padding="same").shape
    (2, 4, 4, 3)
    """
    return _gaussian_pool("gaussian_pool2d", 2, x, size, stride, padding, sigma)


def gaussian_pool3d(x, size, stride=None, padding="valid", sigma=1.0) -> Tensor:
    """3-D Gaussian-weighted average pooling.

    y = sum_{t,u,v} w[t, u, v] xp[window] / sum_{on input} w, w = exp(-d^2 / (2 sigma^2)) with
    d the distance of (t, u, v) from the window centre.

    x: (N, D, H, W, C). Returns (N, D_out, H_out, W_out, C),
    D_out = floor((D + pD0 + pD1 - kD) / sD) + 1.

    >>> gaussian_pool3d(np.zeros((1, 5, 5, 5, 2)), 3).shape
    (1, 1, 1, 1, 2)
    """
    return _gaussian_pool("gaussian_pool3d", 3, x, size, stride, padding, sigma)


# ===== L_p-norm pooling ========================================================================
class LpPool(Op):
    """y = (sum over the window of |x|^p)^(1/p); padding adds nothing to the sum."""

    def forward(self, x, p, windows):
        powered = x * x if p == 2 else np.abs(x) ** p
        self.spans = _spans(windows, x.shape[1:-1])
        total = _window_sum(powered, windows, self.spans)
        y = np.sqrt(total) if p == 2 else total ** (1 / p)
        self.windows, self.x, self.y, self.p = windows, x, y, p
        return y

    def backward(self, dy):
        # y = S^(1/p) with S = sum |x|^p, so dy/dx = (1/p) S^(1/p - 1) * p |x|^(p-1) sign(x)
        # = y^(1-p) * |x|^(p-1) sign(x). A window of zeros (y = 0) gets the subgradient 0
        # instead of inf * 0.
        x, y, p = self.x, self.y, self.p
        g = np.divide(dy, y if p == 2 else y ** (p - 1), out=np.zeros_like(dy), where=y > 0)
        dx = _scatter(x.shape, dy.dtype, self.windows, self.spans,
                      lambda rows: (g[rows][span.out] for span in self.spans))
        return (dx * x if p == 2 else dx * (np.abs(x) ** (p - 1) * np.sign(x)),)


def _lp_pool(op: str, n: int, x, p, size, stride, padding) -> Tensor:
    x = as_tensor(x)
    windows = _geometry(op, x, n, size, stride, padding)
    p = _real(op, "p", p, 1, inclusive=True)
    if math.isinf(p):
        raise ValueError(f"{op}: p must be finite, got {p!r}; use max pooling for p = inf")
    return LpPool.apply(x, p=p, windows=windows)


def lp_pool1d(x, p, size, stride=None, padding="valid") -> Tensor:
    """1-D L_p-norm pooling: the p-norm of each window.

    y[n, i, c] = (sum_{u<k} |xp[n, i*s + u, c]|^p)^(1/p)   (xp: x padded with zeros; p >= 1)

    x: (N, L, C). Returns (N, L_out, C), L_out = floor((L + p0 + p1 - k) / s) + 1.

    >>> lp_pool1d(np.ones((2, 9, 3)), 2, 3).shape
    (2, 3, 3)
    """
    return _lp_pool("lp_pool1d", 1, x, p, size, stride, padding)


def lp_pool2d(x, p, size, stride=None, padding="valid") -> Tensor:
    """2-D L_p-norm pooling; p = 2 is the L2-norm pooling of Goodfellow et al., ch. 9.3.

    y[n, i, j, c] = (sum_{u<kH, v<kW} |xp[n, i*sH + u, j*sW + v, c]|^p)^(1/p)   (p >= 1)

    NOTE: PyTorch's lp_pool2d sums x^p without the absolute value; the two agree for p = 2 and
    for non-negative input. A window of zeros gets the gradient 0.
    x: (N, H, W, C). Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1.

    >>> lp_pool2d(np.ones((2, 8, 8, 3)), 2, 2).shape
    (2, 4, 4, 3)
    """
    return _lp_pool("lp_pool2d", 2, x, p, size, stride, padding)


def lp_pool3d(x, p, size, stride=None, padding="valid") -> Tensor:
    """3-D L_p-norm pooling: the p-norm of each window.

    y[n, d, i, j, c] = (sum_{t,u,v} |xp[n, d*sD + t, i*sH + u, j*sW + v, c]|^p)^(1/p)

    x: (N, D, H, W, C). Returns (N, D_out, H_out, W_out, C),
    D_out = floor((D + pD0 + pD1 - kD) / sD) + 1.

    >>> lp_pool3d(np.ones((1, 4, 6, 6, 2)), 2, 2).shape
    (1, 2, 3, 3, 2)
    """
    return _lp_pool("lp_pool3d", 3, x, p, size, stride, padding)


# ===== maxima along one axis: global max pooling and maxout ====================================
class AxisMax(Op):
    """x viewed as `shape`, maximum along `axis`; dy goes to the first maximum."""

    def forward(self, x, shape, axis):
        self.shape, self.axis = x.shape, axis
        grouped = x.reshape(shape)
        self.argmax = np.expand_dims(grouped.argmax(axis=axis), axis)
        self.grouped_shape = grouped.shape
        return np.take_along_axis(grouped, self.argmax, axis=axis).squeeze(axis)

    def backward(self, dy):
        dx = np.zeros(self.grouped_shape, dtype=dy.dtype)
        np.put_along_axis(dx, self.argmax, np.expand_dims(dy, self.axis), axis=self.axis)
        return (dx.reshape(self.shape),)


def _check_global(op: str, x: Tensor) -> None:
    if x.ndim < 3:
        raise ValueError(
            f"{op}: expected an input (N, *spatial, C) with at least one spatial axis, "
            f"got shape {x.shape}"
        )


def global_avg_pool(x) -> Tensor:
    """Global average pooling: the mean of each channel over every spatial position.

    y[n, c] = mean_{positions p} x[n, p, c]

    x: (N, *spatial, C) with any number of spatial axes. Returns (N, C).

    >>> global_avg_pool(np.zeros((2, 7, 7, 512))).shape
    (2, 512)
    """
    x = as_tensor(x)
    _check_global("global_avg_pool", x)
    return x.mean(axis=tuple(range(1, x.ndim - 1)))


def global_max_pool(x) -> Tensor:
    """Global max pooling: the maximum of each channel over every spatial position.

    y[n, c] = max_{positions p} x[n, p, c]; the gradient goes to the first maximum (row-major).

    x: (N, *spatial, C) with any number of spatial axes. Returns (N, C).

    >>> global_max_pool(np.zeros((2, 7, 7, 512))).shape
    (2, 512)
    """
    x = as_tensor(x)
    _check_global("global_max_pool", x)
    return AxisMax.apply(x, shape=(x.shape[0], -1, x.shape[-1]), axis=1)


def maxout(x, pieces: int) -> Tensor:
    """Maxout (Goodfellow et al., 2013): the maximum over each group of `pieces` consecutive
    channels, a max pooling over features that lets the network learn its invariances.

    y[..., c] = max_{j < pieces} x[..., c*pieces + j]

    x: (..., C) with C divisible by pieces. Returns (..., C / pieces).

    >>> maxout(np.zeros((2, 5, 5, 12)), 3).shape
    (2, 5, 5, 4)
    """
    x = as_tensor(x)
    (pieces,) = ntuple(pieces, 1, "pieces", "maxout")
    if x.ndim < 1 or x.shape[-1] % pieces:
        channels = x.shape[-1] if x.ndim else None
        raise ValueError(
            f"maxout: the {channels} channels of input shape {x.shape} do not split into "
            f"groups of pieces={pieces}; use a divisor of the channel count"
        )
    return AxisMax.apply(x, shape=(*x.shape[:-1], x.shape[-1] // pieces, pieces), axis=-1)


# ===== adaptive pooling ========================================================================
def _adaptive_windows(size: int, out: int) -> tuple[list[int], list[int]]:
    """PyTorch's windows: output i pools [floor(i*I/O), ceil((i+1)*I/O))."""
    starts = [i * size // out for i in range(out)]
    ends = [-(-(i + 1) * size // out) for i in range(out)]
    return starts, ends


def _output_size(op: str, x: Tensor, n: int, output_size) -> tuple[int, ...]:
    """output_size as n ints; None entries keep the input's size (as PyTorch)."""
    _check_rank(op, x, n)
    if 0 in x.shape[1:-1]:
        raise ValueError(f"{op}: input shape {x.shape} has an empty spatial axis")
    if isinstance(output_size, (tuple, list)) and len(output_size) == n:
        output_size = tuple(
            size if o is None else o for o, size in zip(output_size, x.shape[1:-1], strict=True)
        )
    return ntuple(output_size, n, "output_size", op)


def _uniform_windows(x: np.ndarray, out, fill: float):
    """x rearranged so that PyTorch's adaptive windows become uniform, non-overlapping ones.

    Along each axis every window is copied out to the width K of the widest, shorter windows
    filled up with `fill` (-inf for max, 0 for a sum), so window i is elements [i*K, (i+1)*K).
    When O divides I the windows already are uniform and the axis is left alone.
    Returns the array, its windows, and per axis (starts, ends, K) for `_from_uniform`.
    """
    bounds = []
    for axis, (size, o) in enumerate(zip(x.shape[1:-1], out, strict=True), start=1):
        starts, ends = _adaptive_windows(size, o)
        width = max(e - s for s, e in zip(starts, ends, strict=True))
        bounds.append((starts, ends, width))
        if size == o * width:
            continue
        # Element u of window i, or `size` (a slab of fill appended) past the window's end.
        index = [
            s + u if s + u < e else size
            for s, e in zip(starts, ends, strict=True) for u in range(width)
        ]
        slab = np.full(x.shape[:axis] + (1,) + x.shape[axis + 1:], fill, dtype=x.dtype)
        x = np.take(np.concatenate([x, slab], axis=axis), index, axis=axis)
    size = tuple(width for *_, width in bounds)
    return x, _Windows(size, size, ((0, 0),) * len(size), tuple(out)), bounds


def _from_uniform(dg: np.ndarray, shape: tuple[int, ...], bounds) -> np.ndarray:
    """Adjoint of `_uniform_windows`: each window's gradient added back where it came from
    (windows may overlap by one element); the fill's gradient is dropped."""
    for axis, (starts, ends, width) in enumerate(bounds, start=1):
        if shape[axis] == len(starts) * width:
            continue
        dx = np.zeros(dg.shape[:axis] + (shape[axis],) + dg.shape[axis + 1:], dtype=dg.dtype)
        for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
            dx[_axis_slice(axis, slice(s, e))] += dg[_axis_slice(axis, slice(i * width,
                                                                           i * width + e - s))]
        dg = dx
    return dg


class AdaptiveAvgPool(WeightedAverage):
    """Mean over PyTorch's adaptive windows: the sum over uniform windows (padded with zeros)
    divided by each window's true element count."""

    def forward(self, x, out):
        uniform, windows, self.bounds = _uniform_windows(x, out, 0)
        self.input_shape = x.shape
        widths = [np.subtract(ends, starts) for starts, ends, _ in self.bounds]
        count = functools.reduce(np.multiply.outer, widths).reshape((1, *out, 1))
        return super().forward(uniform, windows, None, count.astype(x.dtype))

    def backward(self, dy):
        (dg,) = super().backward(dy)
        return (_from_uniform(dg, self.input_shape, self.bounds),)


class AdaptiveMaxPool(MaxPool):
    """Maximum over PyTorch's adaptive windows: max pooling over uniform windows padded with
    -inf. The fill comes after a window's own elements, so the first maximum in window order
    is the same element as in PyTorch's window."""

    def forward(self, x, out):
        uniform, windows, self.bounds = _uniform_windows(x, out, -np.inf)
        self.input_shape = x.shape
        return super().forward(uniform, windows)

    def backward(self, dy):
        (dg,) = super().backward(dy)
        return (_from_uniform(dg, self.input_shape, self.bounds),)


def _adaptive(op_class, op: str, n: int, x, output_size) -> Tensor:
    x = as_tensor(x)
    out = _output_size(op, x, n, output_size)
    return op_class.apply(x, out=out)


def adaptive_avg_pool1d(x, output_size) -> Tensor:
    """1-D adaptive average pooling: L_out windows that tile the input as evenly as possible.

    y[n, i, c] = mean of x[n, floor(i*L/L_out) : ceil((i+1)*L/L_out), c]

    x: (N, L, C); output_size: int. Returns (N, L_out, C).

    >>> adaptive_avg_pool1d(np.zeros((2, 10, 3)), 4).shape
    (2, 4, 3)
    """
    return _adaptive(AdaptiveAvgPool, "adaptive_avg_pool1d", 1, x, output_size)


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    """2-D adaptive average pooling: a fixed output size for any input size (PyTorch's windows).

    y[n, i, j, c] = mean of x[n, floor(i*H/H_out) : ceil((i+1)*H/H_out),
                              floor(j*W/W_out) : ceil((j+1)*W/W_out), c]

    x: (N, H, W, C); output_size: int or (H_out, W_out), None keeping that input size.
    Returns (N, H_out, W_out, C).

    >>> adaptive_avg_pool2d(np.zeros((2, 13, 9, 3)), (6, None)).shape
    (2, 6, 9, 3)
    """
    return _adaptive(AdaptiveAvgPool, "adaptive_avg_pool2d", 2, x, output_size)


def adaptive_avg_pool3d(x, output_size) -> Tensor:
    """3-D adaptive average pooling (windows as `adaptive_avg_pool2d`, along D, H and W).

    x: (N, D, H, W, C); output_size: int or (D_out, H_out, W_out), None keeping that input size.
    Returns (N, D_out, H_out, W_out, C).

    >>> adaptive_avg_pool3d(np.zeros((1, 5, 7, 7, 2)), 2).shape
    (1, 2, 2, 2, 2)
    """
    return _adaptive(AdaptiveAvgPool, "adaptive_avg_pool3d", 3, x, output_size)


def adaptive_max_pool1d(x, output_size) -> Tensor:
    """1-D adaptive max pooling: L_out windows that tile the input as evenly as possible.

    y[n, i, c] = max of x[n, floor(i*L/L_out) : ceil((i+1)*L/L_out), c]

    x: (N, L, C); output_size: int. Returns (N, L_out, C).

    >>> adaptive_max_pool1d(np.zeros((2, 10, 3)), 4).shape
    (2, 4, 3)
    """
    return _adaptive(AdaptiveMaxPool, "adaptive_max_pool1d", 1, x, output_size)


def adaptive_max_pool2d(x, output_size) -> Tensor:
    """2-D adaptive max pooling: a fixed output size for any input size (PyTorch's windows).

    y[n, i, j, c] = max of x[n, floor(i*H/H_out) : ceil((i+1)*H/H_out),
                             floor(j*W/W_out) : ceil((j+1)*W/W_out), c]

    The gradient goes to the first maximum in window order. x: (N, H, W, C); output_size: int
    or (H_out, W_out), None keeping that input size. Returns (N, H_out, W_out, C).

    >>> adaptive_max_pool2d(np.zeros((2, 13, 9, 3)), 6).shape
    (2, 6, 6, 3)
    """
    return _adaptive(AdaptiveMaxPool, "adaptive_max_pool2d", 2, x, output_size)


def adaptive_max_pool3d(x, output_size) -> Tensor:
    """3-D adaptive max pooling (windows as `adaptive_max_pool2d`, along D, H and W).

    x: (N, D, H, W, C); output_size: int or (D_out, H_out, W_out), None keeping that input size.
    Returns (N, D_out, H_out, W_out, C).

    >>> adaptive_max_pool3d(np.zeros((1, 5, 7, 7, 2)), (1, 2, 3)).shape
    (1, 1, 2, 3, 2)
    """
    return _adaptive(AdaptiveMaxPool, "adaptive_max_pool3d", 3, x, output_size)
