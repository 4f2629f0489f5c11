"""Where a convolution's kernel lands: the geometry every convolution kernel shares.

A convolution of x (N, *in, C_in) with w (*k, C_in/groups, C_out) is described once, by a
`Geometry` (sizes, stride, dilation and padding per spatial axis, resolved by `striate.arith`).
Walking the kernel offset by offset, at offset (u, v) the strided slice
x[:, u*dH - pH0 :: sH, v*dW - pW0 :: sW] is what that tap of the kernel sees at every output
position (`taps`): this is the sum of `striate.reference.conv.conv`, one slice per tap.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import numpy as np

from ...tensor import sum_leading


class Geometry(NamedTuple):
    """Where a convolution's kernel lands (one entry per spatial axis)."""

    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  # (start, end)

    @property
    def pointwise(self) -> bool:
        """A 1x1 kernel without padding: the patches are the (strided) input itself."""
        return all(k == 1 for k in self.kernel) and not any(p for pair in self.pads for p in pair)


class Tap(NamedTuple):
    """One kernel offset: output positions `out` read input positions `inp` (slices per axis)."""

    offset: tuple[int, ...]
    out: tuple[slice, ...]
    inp: tuple[slice, ...]


@functools.lru_cache(maxsize=512)
def taps(g: Geometry) -> tuple[tuple[Tap, ...], bool]:
    """The taps of every kernel offset that lands inside the input for some output, and whether
    every tap covers every output (else the patches of the uncovered ones must stay zero)."""
    per_axis = []
    for size, out, k, s, d, (p0, _) in zip(*g, strict=True):
        axis = []
        for u in range(k):
            shift = u * d - p0  # input index read by output 0 at this offset
            lo = max(0, -(shift // s))  # first output reading index >= 0
            hi = min(out, (size - 1 - shift) // s + 1)  # past the last reading index < size
            if hi > lo:
                axis.append((u, slice(lo, hi), slice(lo * s + shift, (hi - 1) * s + shift + 1, s)))
        per_axis.append(axis)
    taps = tuple(
        Tap(*(tuple(part) for part in zip(*combo, strict=True)))
        for combo in itertools.product(*per_axis)
    )
    full = len(taps) == math.prod(g.kernel) and all(
        sl.start == 0 and sl.stop == o for tap in taps for sl, o in zip(tap.out, g.out_size,
                                                                        strict=True)
    )
    return taps, full


def row_band(g: Geometry, lo: int, hi: int) -> tuple[Geometry, slice]:
    """The geometry of output rows [lo, hi) along the first axis, and the input rows they read
    (padding beyond the input becomes the piece's own padding)."""
    size, k, s, d, (p0, _) = g.in_size[0], g.kernel[0], g.stride[0], g.dilation[0], g.pads[0]
    start = lo * s - p0
    stop = (hi - 1) * s + d * (k - 1) - p0 + 1
    a, b = max(start, 0), min(stop, size)
    piece = g._replace(
        in_size=(b - a, *g.in_size[1:]),
        out_size=(hi - lo, *g.out_size[1:]),
        pads=((a - start, stop - b), *g.pads[1:]),
    )
    return piece, slice(a, b)


@functools.lru_cache(maxsize=512)
def crop(g: Geometry) -> tuple[Geometry, tuple[slice, ...]] | None:
    """The kernel cut down to the span of taps that read the input for some output, as slices
    of its spatial axes, and the geometry of that smaller kernel (the padding the cut taps
    would have read goes too); None when every tap reads the input. On small maps most of a
    padded kernel reads only padding: of a 3x3 kernel padded by 1 on a 1x1 map (ResNet's last
    stage on 32x32 images), only the centre, and the other 8 taps' products would multiply
    zeros. The output is the same: each kept tap reads what it read before."""
    reached = [sorted({tap.offset[a] for tap in taps(g)[0]}) for a in range(len(g.kernel))]
    if any(not r for r in reached) or all(
        (r[0], r[-1] + 1) == (0, k) for r, k in zip(reached, g.kernel, strict=True)
    ):
        return None
    spans = [slice(r[0], r[-1] + 1) for r in reached]
    pads = tuple((p0 - sl.start * d, p1 - (k - sl.stop) * d)
                 for sl, k, d, (p0, p1) in zip(spans, g.kernel, g.dilation, g.pads, strict=True))
    if any(p < 0 for pair in pads for p in pair):
        return None
    return g._replace(kernel=tuple(sl.stop - sl.start for sl in spans), pads=pads), tuple(spans)


def adjoint_geometry(g: Geometry) -> Geometry | None:
    """For a stride-1 convolution, the geometry of the convolution of dy that gives its input
    gradient: input and output sizes swapped, padded by d*(k-1) - p on each side; None at
    another stride or when a pad exceeds d*(k-1) (that would be a crop)."""
    reach = [d * (k - 1) for k, d in zip(g.kernel, g.dilation, strict=True)]
    if any(s != 1 for s in g.stride) or any(
        p > r for pair, r in zip(g.pads, reach, strict=True) for p in pair
    ):
        return None
    pads = tuple((r - p0, r - p1) for (p0, p1), r in zip(g.pads, reach, strict=True))
    return Geometry(g.out_size, g.in_size, g.kernel, g.stride, g.dilation, pads)


def adjoint_kernel(w: np.ndarray, groups: int) -> np.ndarray:
    """w' with dx = conv(dy, w') at stride 1: w flipped, C_in and C_out swapped in each group.
    (*k, C_in/G, C_out) -> (*k, C_out/G, C_in)."""
    n = w.ndim - 2
    c_in_g, c_out = w.shape[-2], w.shape[-1]
    flipped = flip(w, n).reshape(*w.shape[:n], c_in_g, groups, c_out // groups)
    # (*k, C_in/G, G, C_out/G) -> (*k, C_out/G, G, C_in/G) -> (*k, C_out/G, C_in)
    return np.ascontiguousarray(np.swapaxes(flipped, n, n + 2)).reshape(
        *w.shape[:n], c_out // groups, c_in_g * groups)


def flip(w: np.ndarray, n: int) -> np.ndarray:
    """The kernel reversed along its n spatial axes (true convolution <-> cross-correlation)."""
    return w[(slice(None, None, -1),) * n]


def sum_shares(parts: list):
    """The sum of the shares' partial results (None when there are none)."""
    return None if parts[0] is None else functools.reduce(np.add, parts)


def channel_sum(dy: np.ndarray) -> np.ndarray:
    """db: dy summed over every axis but the channels (`tensor.sum_leading`)."""
    return sum_leading(dy, 1)


def split_groups(a: np.ndarray, groups: int) -> np.ndarray:
    """(..., C) -> (..., G, C/G), a view."""
    return a.reshape(*a.shape[:-1], groups, a.shape[-1] // groups)


def group_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """(*k, C_in/G, C_out) -> (G, K*C_in/G, C_out/G): group g's filters as one matrix."""
    return w.reshape(-1, groups, w.shape[-1] // groups).transpose(1, 0, 2)


def is_depthwise(x_shape, groups: int) -> bool:
    """One group per input channel (groups == C_in > 1)."""
    return groups > 1 and groups == x_shape[-1]
