"""Pooling kernels: sliding windows walked offset by offset, for every pooling of
`striate.reference.pool` (max, average, Gaussian-weighted, L_p, adaptive).

At window offset (u, v) the strided view x[:, u - pH0 :: sH, v - pW0 :: sW] holds that element
of every window at once, (N, *out, C) (`spans`). Forward reduces these views into the output
(`window_sum`, `max_stage`); backward adds each view's share of dy back at the same offset
(`scatter`: a slice-add, never np.add.at). Padding is never built: each offset's view is cut to
the windows whose element lies inside the input, which is what padding with -inf (max) or zeros
(sums) would give. Max pooling is separable and runs one axis at a time (`axis_windows`), block
by block of samples so that the intermediate results stay in cache. Adaptive pooling rearranges
PyTorch's uneven windows into uniform ones (`uniform_windows`) and reuses the same core.
NOTE: reducing the (N, H_out, kH, W_out, kW, C) reshape of non-overlapping windows with
ndarray.max / ndarray.sum measured no faster than the loop (max 1.6x slower on
(16, 112, 112, 64) float32), so the loop is the only NumPy path. Large batches are split over the
cores (NumPy releases the GIL in its loops).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np

from .. import _parallel
from .._parallel import over_batch
from . import native, switch
from .copies import copy_values, packed

Pads = tuple[tuple[int, int], ...]

# Input bytes per block of samples that max pooling takes through all its steps before the next
# block (`max_pool`): the intermediate results then stay in the (32 MiB, shared) L3 cache.
BLOCK_BYTES = 8 << 20


class Windows(NamedTuple):
    """Where the windows of a sliding-window pool lie (per spatial axis)."""

    size: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads  # (start, end) per axis
    out: tuple[int, ...]


# ===== the N-d window core =====================================================================
class Span(NamedTuple):
    """What one window offset reads: y[out] takes x[inp] (index tuples over (N, *spatial, C))."""

    index: int  # the offset's place in window (row-major) order
    out: tuple
    inp: tuple
    full: bool  # feeds every output
    tile: bool  # below the stride on every axis


def offsets(size: Sequence[int]) -> list[tuple[int, ...]]:
    """Every position inside a window, in window (row-major) order."""
    return list(itertools.product(*map(range, size)))


def spans(windows: Windows, spatial: Sequence[int]) -> list[Span]:
    """For each window offset that reaches the input, the outputs it feeds and the strided view
    of the input it reads. At offset u, output i reads x[i*s + u - p0]; reads that would fall in
    the padding are cut off, so the padding is never built."""
    spans = []
    for index, offset in enumerate(offsets(windows.size)):
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
            spans.append(Span(index, tuple(out), tuple(inp), full, tile))
    return spans


def axis_slice(axis: int, index) -> tuple:
    """Index that picks `index` along `axis` and everything along the axes before it."""
    return (slice(None),) * axis + (index,)


def is_padded(pads: Pads) -> bool:
    return any(p for pair in pads for p in pair)


def window_sum(x: np.ndarray, windows: Windows, spans: list[Span], weights=None):
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


def scatter(shape, dtype, windows: Windows, spans: list[Span],
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
                dr[axis_slice(axis, slice(end, None))] = 0
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
def first_reaching(windows: Windows, dtype) -> np.ndarray:
    """Window-order index of the first offset that reads the input, per output: (1, *out, 1).
    Along an axis it is max(0, p0 - i*s), the first offset past the start padding."""
    index = np.zeros((1,) * (len(windows.out) + 2), dtype=np.int64)
    for a, (k, s, o, (p0, _)) in enumerate(
        zip(windows.size, windows.stride, windows.out, windows.pads, strict=True)
    ):
        first = np.maximum(p0 - np.arange(o) * s, 0)
        index = index * k + first.reshape((1,) * (a + 1) + (o,) + (1,) * (len(windows.out) - a))
    return index.astype(dtype)


def axis_windows(windows: Windows, spatial: Sequence[int]) -> list[Windows]:
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
        stages.append(Windows(
            tuple(k if i == a else 1 for i in range(n)),
            tuple(s if i == a else 1 for i in range(n)),
            tuple(pads if i == a else (0, 0) for i in range(n)),
            tuple(o if i == a else size for i, size in enumerate(current)),
        ))
        current[a] = o
    return stages


def max_stage(x: np.ndarray, windows: Windows, spans: list[Span], y=None, argmax=None):
    """Max pooling of x over `windows` (whose `spans` are given): y (written into the given
    array, if any), and into `argmax`, when given (`argmax_dtype`), the window-order index of
    each window's first maximum."""
    if y is None:
        y = np.empty((x.shape[0], *windows.out, x.shape[-1]), dtype=x.dtype)
    track = argmax is not None
    dtype = argmax_dtype(windows)
    first = spans[0].full
    start = None if first else first_reaching(windows, dtype)

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


def argmax_dtype(windows: Windows) -> np.dtype:
    """The smallest integer type that holds a window-order index."""
    return np.min_scalar_type(math.prod(windows.size) - 1)


def route_stage(dy: np.ndarray, argmax: np.ndarray, shape, windows: Windows, spans,
                 out=None):
    """The gradient of a `max_stage` input (shape): dy routed to each window's maximum;
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

    return scatter(shape, dy.dtype, windows, spans, parts, out)


class MaxState(NamedTuple):
    """What the backward of `max_pool` needs: per one-axis step, its input shape, windows,
    spans and the window-order index of each window's winner."""

    stages: list
    argmax: list


def max_pool(x: np.ndarray, windows: Windows, track: bool):
    """y = max over each window (padding never wins), and, when track, what `max_pool_dx`
    needs. 2-D windows take the compiled kernel (`choose`); others run one axis at a time
    (`axis_windows`), block by block of samples (`BLOCK_BYTES`), every step on one block before
    the next, so that the intermediate results stay in cache: on (16, 112, 112, 64) 3x3/2 that
    measured 1.8x faster than each step over the whole batch."""
    if choose(windows) == "direct":
        y, argmax = native.max_pool2d(np.ascontiguousarray(x), windows.size, windows.stride,
                                      windows.pads)
        return y, DirectMax(argmax, x.shape, windows)
    stages, shape = [], x.shape  # (input shape, one-axis windows, spans) per step
    for stage in axis_windows(windows, x.shape[1:-1]):
        stages.append((shape, stage, spans(stage, shape[1:-1])))
        shape = (shape[0], *stage.out, shape[-1])
    if not stages:  # a window of one element on every axis leaves x as it is
        return x.copy(), MaxState(stages, [])
    y = np.empty(shape, dtype=x.dtype)
    argmax = [np.empty((s[0], *w.out, s[-1]), argmax_dtype(w)) if track else None
              for s, w, _ in stages]
    for block in sample_blocks(x):
        z = x[block]
        for k, (_, stage, stage_spans) in enumerate(stages):
            last = k == len(stages) - 1
            arg = None if argmax[k] is None else argmax[k][block]
            z = max_stage(z, stage, stage_spans, y[block] if last else None, arg)
    return y, MaxState(stages, argmax)


def max_pool_dx(dy: np.ndarray, state: MaxState) -> np.ndarray:
    """dx of `max_pool`: dy routed back through the steps in reverse to each window's first
    maximum (window order)."""
    if isinstance(state, DirectMax):
        w = state.windows
        return native.max_pool2d_backward(np.ascontiguousarray(dy), state.argmax, state.x_shape,
                                          w.size, w.stride, w.pads)
    if not state.stages:
        return dy.copy()
    dx = np.empty(state.stages[0][0], dtype=dy.dtype)
    for block in sample_blocks(dx):
        g = dy[block]
        for k in reversed(range(len(state.stages))):
            shape, stage, stage_spans = state.stages[k]
            shape = (g.shape[0], *shape[1:])
            g = route_stage(g, state.argmax[k][block], shape, stage, stage_spans,
                            dx[block] if k == 0 else None)
    return dx


def sample_blocks(x: np.ndarray) -> list[slice]:
    """The batch of x cut into blocks of about `BLOCK_BYTES` (at least one sample per thread,
    so that each step can still split a block over the threads)."""
    return _parallel.blocks(slice(0, x.shape[0]), x[:1].nbytes, BLOCK_BYTES,
                            least=_parallel.THREADS)


def real_weight(axis_weights, spatial, windows: Windows, dtype) -> np.ndarray:
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


# ===== adaptive pooling ========================================================================
def adaptive_windows(size: int, out: int) -> tuple[list[int], list[int]]:
    """PyTorch's windows: output i pools [floor(i*I/O), ceil((i+1)*I/O))."""
    starts = [i * size // out for i in range(out)]
    ends = [-(-(i + 1) * size // out) for i in range(out)]
    return starts, ends


def uniform_windows(x: np.ndarray, out, fill: float):
    """x rearranged so that PyTorch's adaptive windows become uniform, non-overlapping ones.

    Along each axis every window is copied out to the width K of the widest, shorter windows
    filled up with `fill` (-inf for max, 0 for a sum), so window i is elements [i*K, (i+1)*K).
    When O divides I the windows already are uniform and the axis is left alone.
    Returns the array, its windows, and per axis (starts, ends, K) for `from_uniform`.
    """
    bounds = []
    for axis, (size, o) in enumerate(zip(x.shape[1:-1], out, strict=True), start=1):
        starts, ends = adaptive_windows(size, o)
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
    return x, Windows(size, size, ((0, 0),) * len(size), tuple(out)), bounds


def from_uniform(dg: np.ndarray, shape: tuple[int, ...], bounds) -> np.ndarray:
    """Adjoint of `uniform_windows`: each window's gradient added back where it came from
    (windows may overlap by one element); the fill's gradient is dropped."""
    for axis, (starts, ends, width) in enumerate(bounds, start=1):
        if shape[axis] == len(starts) * width:
            continue
        dx = np.zeros(dg.shape[:axis] + (shape[axis],) + dg.shape[axis + 1:], dtype=dg.dtype)
        for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
            dx[axis_slice(axis, slice(s, e))] += dg[axis_slice(axis, slice(i * width,
                                                                           i * width + e - s))]
        dg = dx
    return dg


# ===== dispatch ================================================================================
# One NumPy algorithm (the window offsets above); "reference" runs `striate.reference.pool`.
# "direct": the compiled 2-D max and average pooling of `striate.kernels.native` (one pass over
# the input per output row, the argmax kept as int32): (128, 28, 28, 6) 2x2 max pooling forward
# 0.5 ms against PyTorch's 3.4 ms on one thread each; the windows above for everything else.
ALGORITHMS = ("direct", "windows")
switch.register("pool", ALGORITHMS)


def choose(windows: Windows | None = None) -> str:
    """The algorithm a pooling over `windows` runs now ("reference" under
    `kernels.use("reference")`; "direct" for 2-D windows where the compiled kernels are there
    and allowed), recorded for `kernels.record`."""
    if switch.reference():
        name = "reference"
    elif (windows is not None and len(windows.size) == 2 and native.available
          and switch.compiled_allowed() and switch.preferred() in (None, "direct")):
        name = "direct"
    else:
        name = "windows"
    return switch.ran("pool", name)


class DirectMax(NamedTuple):
    """What the backward of the compiled max pooling needs."""

    argmax: np.ndarray  # int32, the window-order index of each window's first maximum
    x_shape: tuple[int, ...]
    windows: Windows


def average(x: np.ndarray, windows: Windows, count_include_pad: bool) -> np.ndarray:
    """The compiled 2-D average pooling (padding counted or not)."""
    return native.avg_pool2d(np.ascontiguousarray(x), windows.size, windows.stride, windows.pads,
                             count_include_pad)


def average_dx(dy: np.ndarray, x_shape, windows: Windows, count_include_pad: bool):
    return native.avg_pool2d_backward(np.ascontiguousarray(dy), x_shape, windows.size,
                                      windows.stride, windows.pads, count_include_pad)
