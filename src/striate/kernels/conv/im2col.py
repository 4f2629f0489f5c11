"""im2col: a convolution as matrix products over copied patches (the general algorithm).

Computes `striate.reference.conv.conv` and its gradients for any geometry and groups. The
patches of x are copied into a matrix `cols` (M, G, K*C_in/G), M = N*H_out*W_out output
positions, G groups, K = kH*kW taps, and one BLAS product per group gives y = cols @ w:

- forward: the copy goes box by box (`boxes`): the outputs that see the same taps (the
  interior, then each edge) are copied at once from a strided view of x. The batch is cut into
  cache-sized pieces (`pieces`) so that each piece's patches are still in cache when the
  product reads them. When a patch row is shorter than an output row (a first layer on one or
  three channels), the patches are copied tap-major instead (`im2col_taps`).
- stride 1 (`stride1_backward`): both gradients from the patches of dy, copied once per piece
  and read by two products: dx = conv(dy, w') with w' the flipped kernel, and
  dw = x^T @ dycols (the patches of dy through the mirrored taps are the outputs that read
  each input, so the patches of x are never rebuilt).
- other strides (`backward`): dw = cols^T @ dy, the patches of x rebuilt piece by piece; col2im
  for dx: dcols = dy @ w^T, then each tap's slice is added back where it was read (a slice-add
  per offset, never np.add.at). This is also the forward of the transposed convolution.

Wins where products are wide (many filters) or nothing else applies; see `table.py`.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import numpy as np

from .geometry import (
    Geometry,
    adjoint_kernel,
    flip,
    group_weights,
    row_band,
    split_groups,
    sum_shares,
    taps,
)
from .scratch import Buffers, tap_major
from .table import over_batch

# Patches of one piece of the batch: small enough to stay in the cache between the copy that
# builds them and the product that reads them. Measured on (32, 56, 56, 64) 3x3 forward and
# forward+backward, each of two threads working on its own pieces, against 0.5, 1, 4 and 8 MiB
# (1 MiB L2 per core, 32 MiB L3 shared): 2 MiB fastest, 0.5 MiB 25% slower.
PIECE_BYTES = 2 << 20


class Piece(NamedTuple):
    """A piece of the work: samples `batch`, input rows `inp` and output rows `out` (first
    spatial axis), with its own geometry."""

    batch: slice
    geometry: Geometry
    inp: slice
    out: slice


def pieces(g: Geometry, rows: slice, bytes_per_position: int) -> list[Piece]:
    """Cut the work on samples `rows` into pieces whose patches fit `PIECE_BYTES`: several
    samples per piece, or bands of output rows of one sample when a sample alone is too big."""
    sample = math.prod(g.out_size) * bytes_per_position
    if sample <= PIECE_BYTES or g.out_size[0] == 1:
        step = max(1, PIECE_BYTES // max(sample, 1))
        return [Piece(slice(i, min(i + step, rows.stop)), g, slice(None), slice(None))
                for i in range(rows.start, rows.stop, step)]
    height = max(1, PIECE_BYTES // (sample // g.out_size[0]))
    bands = [(lo, min(lo + height, g.out_size[0])) for lo in range(0, g.out_size[0], height)]
    bands = [(*row_band(g, lo, hi), slice(lo, hi)) for lo, hi in bands]
    return [Piece(slice(i, i + 1), piece, inp, out)
            for i in range(rows.start, rows.stop) for piece, inp, out in bands]


class Box(NamedTuple):
    """Outputs that all see the same range of taps along every axis (slices per axis), and the
    input read by the first of them through the first of those taps."""

    out: tuple[slice, ...]
    taps: tuple[slice, ...]
    start: tuple[int, ...]


@functools.lru_cache(maxsize=512)
def boxes(g: Geometry) -> tuple[Box, ...]:
    """The output positions cut into boxes of equal tap ranges: along an axis, output j sees
    the taps u with 0 <= j*s + u*d - p0 < size, a range that changes only near the edges (3
    boxes per axis for a 3-wide kernel with padding 1: left edge, interior, right edge)."""
    per_axis = []
    for size, out, k, s, d, (p0, _) in zip(*g, strict=True):
        segments = []  # [first output, past the last, (first tap, past the last tap)]
        for j in range(out):
            lo = max(0, -((j * s - p0) // d))  # ceil((p0 - j*s) / d)
            taps = (lo, min(k, (size - 1 + p0 - j * s) // d + 1))
            if taps[1] <= taps[0]:
                continue
            if segments and segments[-1][1] == j and segments[-1][2] == taps:
                segments[-1][1] = j + 1
            else:
                segments.append([j, j + 1, taps])
        per_axis.append([(slice(j0, j1), slice(*t), j0 * s + t[0] * d - p0)
                         for j0, j1, t in segments])
    return tuple(Box(*(tuple(part) for part in zip(*combo, strict=True)))
                 for combo in itertools.product(*per_axis))


def im2col(x: np.ndarray, g: Geometry, cols: np.ndarray) -> None:
    """Copy the patches of x (n, *in, G, C_in/G) into cols (n, *out, G, *k, C_in/G).

    One copy per box of outputs that see the same taps, from a strided view of x holding those
    outputs' patches (no copy per tap: fewer, longer copies, with the kW*C_in values of a patch
    row contiguous at dilation 1). Positions no tap reaches (padding) are left as they are: the
    caller passes zeros there (the Toeplitz matrix, locally connected layers); convolutions pad
    their pieces first (`Buffers.padded`), so that every position is written.
    """
    n, stride, dilation = x.shape[0], g.stride, g.dilation
    axes = range(1, x.ndim - 2)  # the spatial axes of x
    for box in boxes(g):
        first = x[(slice(None), *(slice(i, None) for i in box.start))]
        # (n, *out box, G, *taps, C_in/G): patch [j, u] at input j*s + u*d of this box's start
        patches = np.lib.stride_tricks.as_strided(
            first,
            (n, *(sl.stop - sl.start for sl in box.out), x.shape[-2],
             *(sl.stop - sl.start for sl in box.taps), x.shape[-1]),
            (x.strides[0], *(s * x.strides[a] for s, a in zip(stride, axes, strict=True)),
             x.strides[-2], *(d * x.strides[a] for d, a in zip(dilation, axes, strict=True)),
             x.strides[-1]),
            writeable=False)
        cols[(slice(None), *box.out, slice(None), *box.taps)] = patches


def col2im(dcols: np.ndarray, g: Geometry, dx: np.ndarray) -> None:
    """Add each tap's patch gradient dcols (n, *out, G, *k, C_in/G) back where the tap read:
    dx (n, *in, G, C_in/G) += ... (the adjoint of im2col)."""
    every = (slice(None),)
    for tap in taps(g)[0]:
        dx[every + tap.inp] += dcols[every + tap.out + every + tap.offset]


def grouped_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[g] = a[g] @ b[g] for each group g (a plain product when there is one group)."""
    if a.shape[0] == 1:
        np.matmul(a[0], b[0], out=out[0])
    else:
        np.matmul(a, b, out=out)


def im2col_taps(x: np.ndarray, g: Geometry, cols: np.ndarray) -> None:
    """Copy the patches of x (n, *in, G, C_in/G) tap-major into cols (G, *k, C_in/G, n, *out):
    one copy per tap and channel of the slice that tap reads, W_out values in a row (g without
    padding: pad first, `Buffers.padded`)."""
    xt = x.transpose(x.ndim - 2, x.ndim - 1, *range(x.ndim - 2))  # (G, C_in/G, n, *in)
    every = (slice(None),)
    for tap in taps(g)[0]:
        cols[every + tap.offset + every * 2 + tap.out] = xt[every * 3 + tap.inp]


def patch_matrix(x: np.ndarray, g: Geometry, groups: int, buffer) -> np.ndarray:
    """Patches of x (n, *in, G, C_in/G) as a (G, M, K*C_in/G) view, M = n*prod(out)."""
    n, m = x.shape[0], x.shape[0] * math.prod(g.out_size)
    if g.pointwise:
        patches = x[(slice(None), *(slice(None, None, s) for s in g.stride))]
        return patches.reshape(m, groups, -1).transpose(1, 0, 2)
    if any(p for pair in g.pads for p in pair):
        x, g = buffer.padded(x, g)
    if tap_major(g, x.shape[-1]):
        patches = buffer(g, n)
        im2col_taps(x, g, patches)
        return patches.reshape(groups, -1, m).transpose(0, 2, 1)
    patches = buffer(g, n)
    im2col(x, g, patches)
    return patches.reshape(m, groups, -1).transpose(1, 0, 2)


def forward(x, w, g: Geometry, groups: int, y, finish=None) -> None:
    """y = the convolution of x with w, piece by piece: the patches of each piece copied into
    cache-sized buffers, one product per group, then finish on that piece of y if given."""
    n, c_out = x.shape[0], w.shape[-1]
    xg = split_groups(x, groups)
    wg = group_weights(w, groups)
    item = x.dtype.itemsize * math.prod(g.kernel) * x.shape[-1]

    def run(rows):
        buffers = Buffers(x.shape, groups, x.dtype)
        for p in pieces(g, rows, item):
            cols = patch_matrix(xg[p.batch, p.inp], p.geometry, groups, buffers)
            out = y[p.batch, p.out].reshape(-1, groups, c_out // groups).transpose(1, 0, 2)
            grouped_matmul(cols, wg, out)
            if finish is not None:
                finish(y, y, (p.batch, p.out))

    copy = 0 if g.pointwise else n * math.prod(g.out_size) * item
    over_batch(run, n, w.shape, groups, copy, y.size * math.prod(g.kernel),
                n * math.prod(g.out_size))


def stride1_backward(dy, x, w, ga: Geometry, groups: int, x_shape, w_shape, need_dx,
                      need_dw):
    """(dx, dw) of a stride-1 convolution from the patches of dy under the adjoint geometry
    `ga`, copied once per piece and read by both products while still in cache:

    - dx = conv(dy, w') = dycols @ w', written once (col2im would add every tap into dx);
    - dw = dycols^T @ x, taps mirrored: dycols[p, k-1-u, f] is dy at the output that read
      x[p] through tap u, so the patches of x are never built. The product is taken with the
      longer side of dw as its rows (x^T @ dycols when C_in/G > K*C_out/G): BLAS measured
      15-35% faster that way round.
    """
    n, c_in, c_out = x_shape[0], x_shape[-1], w_shape[-1]
    c_in_g, dtype = c_in // groups, dy.dtype
    k_cout = math.prod(ga.kernel) * c_out // groups
    dyg = split_groups(dy, groups)
    # (G, K*C_out/G, C_in/G)
    w_adj = group_weights(adjoint_kernel(w, groups), groups) if need_dx else None
    dx = np.empty(x_shape, dtype=dtype) if need_dx else None
    taps_rows = k_cout >= c_in_g
    dw_shape = (groups, k_cout, c_in_g) if taps_rows else (groups, c_in_g, k_cout)
    item = dtype.itemsize * math.prod(ga.kernel) * c_out  # bytes of patches of dy per position

    def run(rows):  # -> this share's part of dw_t
        dw_t = np.zeros(dw_shape, dtype=dtype) if need_dw else None
        scratch = np.empty_like(dw_t) if need_dw else None
        buffers = Buffers(dy.shape, groups, dtype)
        for p in pieces(ga, rows, item):
            cols = patch_matrix(dyg[p.batch, p.inp], p.geometry, groups, buffers)  # (G, m, KC)
            if need_dx:
                out = dx[p.batch, p.out].reshape(-1, groups, c_in_g).transpose(1, 0, 2)
                grouped_matmul(cols, w_adj, out)  # (G, m, C_in/G)
            if need_dw:
                # (G, m, C_in/G): the inputs at the positions this piece's dx rows cover
                xp = x[p.batch, p.out].reshape(-1, groups, c_in_g).transpose(1, 0, 2)
                if taps_rows:
                    grouped_matmul(cols.transpose(0, 2, 1), xp, scratch)
                else:
                    grouped_matmul(xp.transpose(0, 2, 1), cols, scratch)
                dw_t += scratch
        return dw_t

    copy = 0 if ga.pointwise else n * math.prod(ga.out_size) * item  # (N, *in, K*C_out)
    work = dy.size * math.prod(ga.kernel) * (need_dx + need_dw)
    dw_t = sum_shares(over_batch(run, n, w_shape, groups, copy, work, n * math.prod(ga.out_size)))
    if dw_t is None:
        return dx, None
    if not taps_rows:
        dw_t = dw_t.transpose(0, 2, 1)
    # (G, *k, C_out/G, C_in/G) -> (*k, C_in/G, G, C_out/G), taps mirrored back
    n_k = len(ga.kernel)
    dw = dw_t.reshape(groups, *ga.kernel, c_out // groups, c_in_g).transpose(
        *range(1, 1 + n_k), 2 + n_k, 0, 1 + n_k)
    return dx, flip(dw, n_k).reshape(w_shape)


def dy_patches_smaller(g: Geometry, c_in: int, c_out: int, need_dx: bool) -> bool:
    """Whether the stride-1 backward's patches of dy (K*C_out values per input position) are
    no larger than what the other way copies: the patches of x and, for dx, the patch gradients
    (K*C_in values per output position each). Not so for a first layer (C_in 1 or 3, no dx) or
    a layer whose output is much smaller than its input (LeNet's C5: 5x5 -> 1x1)."""
    if g.pointwise:
        return True
    return math.prod(g.in_size) * c_out <= math.prod(g.out_size) * c_in * (1 + need_dx)


def backward(dy, x, w, g: Geometry, groups: int, x_shape, w_shape, need_dx, need_dw):
    """(dx, dw) of y = conv(x, w) given dy (N, *out, C_out); None for what is not needed:
    dw = cols^T @ dy, the patches of x rebuilt piece by piece, and dcols = dy @ w^T per piece,
    scattered back into dx by col2im. (At stride 1 `stride1_backward` is usually cheaper.)"""
    n, c_in, c_out = x_shape[0], x_shape[-1], w_shape[-1]
    dtype = dy.dtype
    dx = np.zeros(x_shape, dtype=dtype) if need_dx else None
    xg = split_groups(x, groups) if need_dw else None
    dxg = split_groups(dx, groups) if need_dx else None
    c_in_g, n_k, taps = c_in // groups, len(g.kernel), math.prod(g.kernel)
    # (G, C_out/G, K*C_in/G), contiguous: BLAS is slower on a transposed right-hand side here
    wg_t = np.ascontiguousarray(group_weights(w, groups).transpose(0, 2, 1)) if need_dx else None
    # (G, K, C_out/G, C_in/G): one product per tap gives tap-major patch gradients, whose slices
    # col2im adds as whole rows of C_in values (patch-major ones: C_in/G values at a time)
    w_taps = None if wg_t is None else np.ascontiguousarray(
        wg_t.reshape(groups, -1, taps, c_in_g).transpose(0, 2, 1, 3))
    k_cin = taps * c_in_g
    item = dtype.itemsize * math.prod(g.kernel) * c_in

    def run(rows):  # -> this share's part of dw
        dw = np.zeros((groups, k_cin, c_out // groups), dtype=dtype) if need_dw else None
        scratch = np.empty_like(dw) if need_dw else None
        buffers = Buffers(x_shape, groups, dtype)
        grads = {}  # the patch gradients' buffer per geometry, apart from the patches
        for p in pieces(g, rows, item):
            pg = p.geometry
            m = (p.batch.stop - p.batch.start) * math.prod(pg.out_size)
            dyp = dy[p.batch, p.out].reshape(m, groups, c_out // groups).transpose(1, 0, 2)
            if need_dw:
                cols = patch_matrix(xg[p.batch, p.inp], pg, groups, buffers)  # (G, m, KC)
                grouped_matmul(cols.transpose(0, 2, 1), dyp, scratch)
                dw += scratch
            if not need_dx:
                continue
            if pg.pointwise:
                # The patches are the input's strided positions: write dcols there directly.
                target = dxg[(p.batch, *(slice(None, None, s) for s in pg.stride))]
                dcols = np.matmul(dyp, wg_t).transpose(1, 0, 2)  # (m, G, C_in/G)
                target[...] = dcols.reshape(target.shape)
                continue
            buf = grads.get(pg)
            if buf is None or buf.shape[2] < m:
                buf = grads[pg] = buffers.take((groups, taps, m, c_in_g))
            np.matmul(dyp[:, None], w_taps, out=buf[:, :, :m])  # (G, K, m, C_in/G)
            # viewed in im2col's layout (n, *out, G, *k, C_in/G)
            dcols = buf[:, :, :m].reshape(groups, *pg.kernel, -1, *pg.out_size, c_in_g).transpose(
                n_k + 1, *range(n_k + 2, 2 * n_k + 2), 0, *range(1, n_k + 1), 2 * n_k + 2)
            col2im(dcols, pg, dxg[p.batch, p.inp])
        return dw

    # the patches of x for dw and their gradients for dx, (N, *out, K*C_in) each
    copy = 0 if g.pointwise else n * math.prod(g.out_size) * item * (need_dw + need_dx)
    work = dy.size * taps * c_in * (need_dx + need_dw)
    dw = sum_shares(over_batch(run, n, w_shape, groups, copy, work, n * math.prod(g.out_size)))
    if dw is not None:
        dw = dw.transpose(1, 0, 2).reshape(w_shape)  # (G, K*C_in/G, C_out/G) -> (*k, C_in/G, C_out)
    return dx, dw
