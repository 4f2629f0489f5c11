"""Convolution: cross-correlation and true convolution in 1, 2 and 3 dimensions, grouped and
depthwise convolution, transposed convolution, locally connected layers and the Toeplitz matrix.

Every op runs on one N-d core. Data are channels-last, x (N, *in, C_in), kernels
(*k, C_in/groups, C_out). The core walks the kernel offset by offset: at offset (u, v) the strided
slice x[:, u*dH::sH, v*dW::sW] is what that tap of the kernel sees at every output position.

- forward (im2col): the patches are copied into a patch matrix `cols` (M, G, K*C_in/G), with
  M = N*H_out*W_out output positions, G groups and K = kH*kW taps, and one BLAS product per group
  gives y = cols @ w. The copy goes box by box: the outputs that see the same taps (the
  interior, then each edge) are copied at once from a strided view of x that holds their
  patches. The batch is cut into cache-sized pieces so that each piece's patches are still in
  cache when the product reads them (a sample too big for the budget is cut along its first
  spatial axis). When a patch row is shorter than an output row (a first layer on one or three
  channels), the patches are copied tap-major instead, one slice per tap and channel: the same
  matrix, transposed in memory, which BLAS reads as it is.
- stride 1, both gradients from the patches of dy, copied once per piece and read by two
  products: dx = conv(dy, w') with w' the flipped kernel (dx written once by the product), and
  dw = x^T @ dycols (the patches of dy through the mirrored taps are the outputs that read
  each input, so the patches of x are never rebuilt).
- other strides: dw = cols^T @ dy, the patches of x rebuilt piece by piece (keeping them all
  would cost K times the input's memory); col2im for dx: dcols = dy @ w^T, then each tap's slice
  is added back where it was read (a slice-add per offset, never np.add.at). This is also the
  forward of the transposed convolution, whose backward is the convolution forward and its
  weight gradient.

Large 3x3 convolutions at stride 1 (64 channels and more, on at least `_SHARED_ROWS` output
positions: ResNet's and VGG's early layers in training) take Winograd's F(2x2, 3x3) instead
(`_winograd`): each 2x2 tile of outputs from the 4x4 tile of input around it, through 16
products (tiles, C_in) @ (C_in, C_out), 2.25x fewer multiply-adds than the patches take, for
tile transforms that are adds. Its dx is such a convolution of dy, its dw the adjoint of the
products (V^T @ dM per element, then back through the kernel's transform).

A few filters on narrow images with few channels (LeNet's C1 and C3, `_banded`) take banded
kernels instead: along the last axis a convolution is a product with a banded (Toeplitz) matrix
(`toeplitz` in 1-D), so the convolution is one over the other axes whose "channels" are whole
input rows (W_in*C_in values) and whose kernel maps them to output rows (W_out*C_out values).
Its patches are kW times smaller and its products wider, for W_in/kW times the multiply-adds;
its gradients are that convolution's, dw summed back out of the band (`_band_weights`).
Banded over every axis, the kernel is the convolution's whole matrix: a map with no more
positions than the kernel has taps (3x3 kernels on 2x2 maps) is one product with it (`_dense`),
no more multiply-adds than the patches would take and none of the zeros padding puts in them.
Before any of this, taps that read only padding for every output are cut off the kernel
(`_crop`: of a 3x3 kernel padded by 1 on a 1x1 map, only the centre is left).

Each piece of a padded convolution is zero-padded into scratch memory first, so that its patches
are one strided copy (`_im2col` also takes a padded geometry directly, box by box: each box holds
only taps that land inside the input, and the rest of `cols` stays zero; the Toeplitz matrix and
locally connected layers use that). Stride-1 backward takes the patches of dy only when they are
no larger than the patches of x and their gradients (not for a first layer that needs no dx, nor
for a layer whose output is much smaller than its input); the patch gradients for col2im are
computed tap by tap, so that each tap's slice is added as whole rows. A 1x1 kernel without
padding needs no copy (its patches are the input itself); depthwise convolution (groups == C_in)
multiplies and adds the shifted slices directly, as patches would be K times larger than the work
they save; those passes split the batch over the shared thread pool (`striate._parallel`).

Both cores work in one of two ways (`_over_batch`): the batch split over the pool, each thread
copying and multiplying on one BLAS thread, for a convolution with few filters per group
(`_FEW_FILTERS`, products too narrow to share) or large patch copies (`_SHARED_COPY_BYTES`);
otherwise the calling thread alone, with BLAS on every core. Patch buffers and padded pieces
come from per-thread scratch memory that outlives the call (`_Buffers`).

Output sizes and padding come from `arith` (DESIGN.md): O = floor((I + P_start + P_end
- d*(K - 1) - 1) / S) + 1.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import _parallel
from ..arith import conv_geometry, ntuple, transpose_geometry
from ..tensor import Op, Tensor, as_tensor
from .activation import ChannelMap, relu_gradient

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "locally_connected1d",
    "locally_connected2d",
    "toeplitz",
]

_LAYOUTS = {1: ("(N, L, C_in)", "(kL, C_in/groups, C_out)"),
            2: ("(N, H, W, C_in)", "(kH, kW, C_in/groups, C_out)"),
            3: ("(N, D, H, W, C_in)", "(kD, kH, kW, C_in/groups, C_out)")}

# Patches of one piece of the batch: small enough to stay in the cache between the copy that
# builds them and the product that reads them. Measured on (32, 56, 56, 64) 3x3 forward and
# forward+backward, each of two threads working on its own pieces, against 0.5, 1, 4 and 8 MiB
# (1 MiB L2 per core, 32 MiB L3 shared): 2 MiB fastest, 0.5 MiB 25% slower.
_PIECE_BYTES = 2 << 20
# Convolutions with at most this many filters per group, or whose patch copies in all reach
# _SHARED_COPY_BYTES, split the batch over the thread pool (`_over_batch`). Measured on 3x3
# convolutions: 64 -> 64 at 56x56, batch 32, 26% faster forward and 15% forward+backward that
# way; 64 -> 64 at 8x8, batch 64 (9 MiB of patches) faster on BLAS's threads. So are products
# with many rows alone, but not inside a network (`_over_batch`): a ResNet-50 step at batch 16
# (rows 12544 and up on the pool) measured 17% faster with them on the pool, a ResNet-18 step at
# batch 64 on 32x32 images (rows 4096 and fewer on BLAS) faster with its rows on BLAS.
_FEW_FILTERS = 16
_SHARED_COPY_BYTES = 32 << 20
_SHARED_ROWS = 8192
# Banded kernels (`_banded`): at most this many multiply-adds per useful one, on input rows of
# at most _BAND_ROW values. Measured forward+backward on 2-D convolutions with 6-16 filters:
# LeNet's C1 (28x28, 1 -> 6, 5x5) 1.4x faster banded, C3 (14x14, 6 -> 16) as fast; 16x16,
# 3 -> 16, 3x3 1.45x faster; 2-3x slower at 32x32 with 3 channels (waste 10.7) and at 14x14
# with 16 channels (rows of 224), where the products outweigh the copies they save.
_BAND_WASTE = 8
_BAND_ROW = 128
# The largest whole Toeplitz matrix (`_dense`) a convolution multiplies by.
_DENSE_BYTES = 16 << 20
# Samples per block of the depthwise passes: each tap's pass re-reads the block's output.
_BLOCK_BYTES = 2 << 20


# ===== geometry ================================================================================
class _Geometry(NamedTuple):
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


class _Tap(NamedTuple):
    """One kernel offset: output positions `out` read input positions `inp` (slices per axis)."""

    offset: tuple[int, ...]
    out: tuple[slice, ...]
    inp: tuple[slice, ...]


@functools.lru_cache(maxsize=512)
def _taps(g: _Geometry) -> tuple[tuple[_Tap, ...], bool]:
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
        _Tap(*(tuple(part) for part in zip(*combo, strict=True)))
        for combo in itertools.product(*per_axis)
    )
    full = len(taps) == math.prod(g.kernel) and all(
        sl.start == 0 and sl.stop == o for tap in taps for sl, o in zip(tap.out, g.out_size,
                                                                        strict=True)
    )
    return taps, full


def _rows(g: _Geometry, lo: int, hi: int) -> tuple[_Geometry, slice]:
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
def _crop(g: _Geometry) -> tuple[_Geometry, tuple[slice, ...]] | None:
    """The kernel cut down to the span of taps that read the input for some output, as slices
    of its spatial axes, and the geometry of that smaller kernel (the padding the cut taps
    would have read goes too); None when every tap reads the input. On small maps most of a
    padded kernel reads only padding: of a 3x3 kernel padded by 1 on a 1x1 map (ResNet's last
    stage on 32x32 images), only the centre, and the other 8 taps' products would multiply
    zeros. The output is the same: each kept tap reads what it read before."""
    reached = [sorted({tap.offset[a] for tap in _taps(g)[0]}) for a in range(len(g.kernel))]
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


class _Piece(NamedTuple):
    """A piece of the work: samples `batch`, input rows `inp` and output rows `out` (first
    spatial axis), with its own geometry."""

    batch: slice
    geometry: _Geometry
    inp: slice
    out: slice


def _pieces(g: _Geometry, rows: slice, bytes_per_position: int) -> list[_Piece]:
    """Cut the work on samples `rows` into pieces whose patches fit `_PIECE_BYTES`: several
    samples per piece, or bands of output rows of one sample when a sample alone is too big."""
    sample = math.prod(g.out_size) * bytes_per_position
    if sample <= _PIECE_BYTES or g.out_size[0] == 1:
        step = max(1, _PIECE_BYTES // max(sample, 1))
        return [_Piece(slice(i, min(i + step, rows.stop)), g, slice(None), slice(None))
                for i in range(rows.start, rows.stop, step)]
    height = max(1, _PIECE_BYTES // (sample // g.out_size[0]))
    bands = [(lo, min(lo + height, g.out_size[0])) for lo in range(0, g.out_size[0], height)]
    bands = [(*_rows(g, lo, hi), slice(lo, hi)) for lo, hi in bands]
    return [_Piece(slice(i, i + 1), piece, inp, out)
            for i in range(rows.start, rows.stop) for piece, inp, out in bands]


def _over_batch(fn, n: int, w_shape, groups: int, copy_bytes: int, work: int,
                rows: int) -> list:
    """fn(rows) over the batch [0, n), one result per share of it.

    Two ways to use both cores. Wide products with little to copy on few rows run in the
    calling thread with BLAS on every core. The batch is split over the thread pool instead,
    each thread copying and multiplying on one BLAS thread, for a convolution with few filters
    per group (`_FEW_FILTERS`), whose products are too narrow to share out over BLAS's threads
    (on 6 or 16 filters two BLAS threads measured slower than one); one whose patch copies are
    large (`_SHARED_COPY_BYTES`: BLAS's threads would leave the copies to one core); and one
    whose products have many rows (`_SHARED_ROWS`), which split as well over the batch: after
    each call it shares out, OpenBLAS's threads spin for about 0.1 s and take a core from the
    pool's copies and passes that follow (3x3 convolutions inside a ResNet-50 step at batch 16
    measured 2x slower than alone, the step 17% slower than with every layer on the pool).
    copy_bytes: the patches the call copies; work: elements touched (`_parallel.over_batch`);
    rows: rows of the products (output positions)."""
    if (w_shape[-1] // groups > _FEW_FILTERS and copy_bytes < _SHARED_COPY_BYTES
            and (rows < _SHARED_ROWS or n < _parallel.THREADS)):
        return [fn(slice(0, n))]
    with _parallel.one_blas_thread():
        return _parallel.over_batch(fn, n, work)


# ===== patches: im2col and col2im ==============================================================
class _Box(NamedTuple):
    """Outputs that all see the same range of taps along every axis (slices per axis), and the
    input read by the first of them through the first of those taps."""

    out: tuple[slice, ...]
    taps: tuple[slice, ...]
    start: tuple[int, ...]


@functools.lru_cache(maxsize=512)
def _boxes(g: _Geometry) -> tuple[_Box, ...]:
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
    return tuple(_Box(*(tuple(part) for part in zip(*combo, strict=True)))
                 for combo in itertools.product(*per_axis))


def _im2col(x: np.ndarray, g: _Geometry, cols: np.ndarray) -> None:
    """Copy the patches of x (n, *in, G, C_in/G) into cols (n, *out, G, *k, C_in/G).

    One copy per box of outputs that see the same taps, from a strided view of x holding those
    outputs' patches (no copy per tap: fewer, longer copies, with the kW*C_in values of a patch
    row contiguous at dilation 1). Positions no tap reaches (padding) are left as they are: the
    caller passes zeros there (the Toeplitz matrix, locally connected layers); convolutions pad
    their pieces first (`_Buffers.padded`), so that every position is written.
    """
    n, stride, dilation = x.shape[0], g.stride, g.dilation
    axes = range(1, x.ndim - 2)  # the spatial axes of x
    for box in _boxes(g):
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


def _col2im(dcols: np.ndarray, g: _Geometry, dx: np.ndarray) -> None:
    """Add each tap's patch gradient dcols (n, *out, G, *k, C_in/G) back where the tap read:
    dx (n, *in, G, C_in/G) += ... (the adjoint of _im2col)."""
    every = (slice(None),)
    for tap in _taps(g)[0]:
        dx[every + tap.inp] += dcols[every + tap.out + every + tap.offset]


def _grouped_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[g] = a[g] @ b[g] for each group g (a plain product when there is one group)."""
    if a.shape[0] == 1:
        np.matmul(a[0], b[0], out=out[0])
    else:
        np.matmul(a, b, out=out)


def _split_groups(a: np.ndarray, groups: int) -> np.ndarray:
    """(..., C) -> (..., G, C/G), a view."""
    return a.reshape(*a.shape[:-1], groups, a.shape[-1] // groups)


def _group_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """(*k, C_in/G, C_out) -> (G, K*C_in/G, C_out/G): group g's filters as one matrix."""
    return w.reshape(-1, groups, w.shape[-1] // groups).transpose(1, 0, 2)


def _im2col_taps(x: np.ndarray, g: _Geometry, cols: np.ndarray) -> None:
    """Copy the patches of x (n, *in, G, C_in/G) tap-major into cols (G, *k, C_in/G, n, *out):
    one copy per tap and channel of the slice that tap reads, W_out values in a row (g without
    padding: pad first, `_Buffers.padded`)."""
    xt = x.transpose(x.ndim - 2, x.ndim - 1, *range(x.ndim - 2))  # (G, C_in/G, n, *in)
    every = (slice(None),)
    for tap in _taps(g)[0]:
        cols[every + tap.offset + every * 2 + tap.out] = xt[every * 3 + tap.inp]


def _tap_major(g: _Geometry, c_in_g: int) -> bool:
    """Whether the patches are copied tap-major (`_im2col_taps`): when a patch row holds fewer
    values than an output row, as in a first layer on one or three channels (LeNet's C1: rows
    of 5 values against 28; the patch-major copy measured 4x slower there)."""
    row = (g.kernel[-1] if g.dilation[-1] == 1 else 1) * c_in_g
    return 2 * row <= g.out_size[-1]


def _patch_matrix(x: np.ndarray, g: _Geometry, groups: int, buffer) -> np.ndarray:
    """Patches of x (n, *in, G, C_in/G) as a (G, M, K*C_in/G) view, M = n*prod(out)."""
    n, m = x.shape[0], x.shape[0] * math.prod(g.out_size)
    if g.pointwise:
        patches = x[(slice(None), *(slice(None, None, s) for s in g.stride))]
        return patches.reshape(m, groups, -1).transpose(1, 0, 2)
    if any(p for pair in g.pads for p in pair):
        x, g = buffer.padded(x, g)
    if _tap_major(g, x.shape[-1]):
        patches = buffer(g, n)
        _im2col_taps(x, g, patches)
        return patches.reshape(groups, -1, m).transpose(0, 2, 1)
    patches = buffer(g, n)
    _im2col(x, g, patches)
    return patches.reshape(m, groups, -1).transpose(1, 0, 2)


_scratch = threading.local()  # each thread's scratch memory, kept from call to call


class _Buffers:
    """The patch buffers of one call's pieces, one per (unpadded) geometry and piece size, laid
    out for `_im2col` or `_im2col_taps`, padded inputs and other scratch arrays: all carved out
    of the calling thread's scratch memory, which outlives the call. Fresh memory on every call
    measured slower than the copies into it (a page fault per 4 KiB: ~3 us each on the
    development machine). Arrays from here must not outlive the call; one call per thread at a
    time."""

    def __init__(self, x_shape: tuple[int, ...], groups: int, dtype):
        self.groups, self.c_in_g = groups, x_shape[-1] // groups
        self.dtype = np.dtype(dtype)
        self.cache: dict[tuple[_Geometry, int], np.ndarray] = {}  # patches
        self.inputs: dict[tuple[_Geometry, int], np.ndarray] = {}  # zero-padded inputs
        self.named: dict[str, np.ndarray] = {}  # `reuse`'s arrays, flat
        self.used = 0  # bytes of the scratch memory taken so far

    def __call__(self, g: _Geometry, n: int) -> np.ndarray:
        buf = self.cache.get((g, n))
        if buf is None:
            shape = ((self.groups, *g.kernel, self.c_in_g, n, *g.out_size)
                     if _tap_major(g, self.c_in_g)
                     else (n, *g.out_size, self.groups, *g.kernel, self.c_in_g))
            assert _taps(g)[1], g  # unpadded: the copy writes every position of the patches
            buf = self.cache[g, n] = self.take(shape)
        return buf

    def padded(self, x: np.ndarray, g: _Geometry) -> tuple[np.ndarray, _Geometry]:
        """x (n, *in, G, C_in/G) zero-padded as g says, and g without padding: the patches of
        the padded piece are then one strided copy, where those of x would take one copy per
        box of edge outputs (81 boxes for a 5x5 kernel padded by 4). Measured 10% faster on
        (32, 56, 56, 64) 3x3, and much faster on LeNet-sized inputs."""
        size = tuple(i + p0 + p1 for i, (p0, p1) in zip(g.in_size, g.pads, strict=True))
        xp = self.inputs.get((g, x.shape[0]))
        if xp is None:  # zeroed once: the copies below never write the border
            xp = self.inputs[g, x.shape[0]] = self.take((x.shape[0], *size, *x.shape[-2:]),
                                                        zero=True)
        inner = zip(g.in_size, g.pads, strict=True)
        xp[(slice(None), *(slice(p0, p0 + i) for i, (p0, _) in inner))] = x
        return xp, g._replace(in_size=size, pads=((0, 0),) * len(size))

    def reuse(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A scratch array that each call with this name gets again, for pieces of varying
        sizes: the first prod(shape) values of the largest one taken under the name so far."""
        size = math.prod(shape)
        flat = self.named.get(name)
        if flat is None or flat.size < size:
            flat = self.named[name] = self.take((size,))
        return flat[:size].reshape(shape)

    def take(self, shape: tuple[int, ...], zero: bool = False) -> np.ndarray:
        """A scratch array (zeroed if asked) that no other array of this call overlaps."""
        size = -(-math.prod(shape) * self.dtype.itemsize // 64) * 64  # whole cache lines
        memory = getattr(_scratch, "memory", None)
        if memory is None or memory.nbytes < self.used + size:
            # Arrays taken before keep the old memory alive until the call ends.
            memory = _scratch.memory = np.empty(2 * (self.used + size), np.uint8)
        array = memory[self.used:self.used + size].view(self.dtype)[:math.prod(shape)]
        self.used += size
        array = array.reshape(shape)
        if zero:
            array.fill(0)
        return array


# ===== Winograd: 3x3 kernels at stride 1 =======================================================
# Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
# Neural Networks", 2016): a 2x2 tile of outputs is Y = A^T [(G w G^T) * (B^T d B)] A, with d
# the 4x4 tile of the input that covers it and * elementwise for each channel pair: 16
# multiplies where the patches take 36. Summed over the input channels, each of the 16 elements
# is one product (tiles, C_in) @ (C_in, C_out): 2.25x fewer multiply-adds than im2col. B^T and
# A^T hold only 0 and +-1, so the tile transforms are adds and subtractions, one row of the
# matrix per pass; G (halves) transforms the kernel once per call:
#   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
#   A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
#   G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
# Convolutions with at least this many input and output channels take it, when their products
# have `_SHARED_ROWS` rows or more: those `_over_batch` shares out over the pool as well, so that
# the layers around them keep BLAS's threads asleep. Measured against im2col, forward+backward
# in a loop: 1.1-1.5x faster on 64-512 channels at batch 16-64 (56x56 down to 8x8 maps), but
# 0.6-0.9x on 32 channels and 0.3-0.8x on one sample, where the kernel's transform weighs
# against few tiles. In `python -m bench`, three runs each: 3x3 64->64 forward 1.2x faster,
# forward+backward 1.1x, the ResNet-18 step 1.15x.
_WINOGRAD_CHANNELS = 64
# Transformed tiles (16 values per tile and channel) per piece: still in cache for the products.
_WINOGRAD_BYTES = 2 << 20


def _winograd(g: _Geometry, n: int, c_in: int, c_out: int, groups: int) -> bool:
    """Whether the convolution runs as F(2x2, 3x3) (`_winograd_forward`): a 2-D 3x3 kernel at
    stride 1, without dilation or groups, padded by at most 2 on each side (so that its dx is
    one too), on at least `_WINOGRAD_CHANNELS` channels in and out and `_SHARED_ROWS` output
    positions."""
    return (groups == 1 and g.kernel == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)
            and all(p <= 2 for pair in g.pads for p in pair)
            and min(c_in, c_out) >= _WINOGRAD_CHANNELS
            and n * math.prod(g.out_size) >= _SHARED_ROWS)


def _g_rows(a: np.ndarray, out: np.ndarray) -> None:
    """out = G a along the first axis: a (3, ...) -> out (4, ...). (As adds: BLAS measured
    10x slower on a product with 3 columns.)"""
    np.copyto(out[0], a[0])
    np.add(a[0], a[2], out=out[1])
    np.subtract(out[1], a[1], out=out[2])
    out[1] += a[1]
    out[1:3] *= 0.5
    np.copyto(out[3], a[2])


def _gt_rows(a: np.ndarray, out: np.ndarray) -> None:
    """out = G^T a along the first axis, the adjoint of `_g_rows`: a (4, ...) -> out (3, ...)."""
    half = (a[1] + a[2]) * 0.5
    np.add(a[0], half, out=out[0])
    np.subtract(a[1], a[2], out=out[1])
    out[1] *= 0.5
    np.add(a[3], half, out=out[2])


def _bt_rows(d, out) -> None:
    """out = B^T d along one axis of the tiles: d and out 4 arrays each (a tile's 4 rows, or
    columns)."""
    np.subtract(d[0], d[2], out=out[0])
    np.add(d[1], d[2], out=out[1])
    np.subtract(d[2], d[1], out=out[2])
    np.subtract(d[1], d[3], out=out[3])


def _at_rows(m, out) -> None:
    """out = A^T m along one axis of the tiles: m 4 arrays, out 2; each m cut to the leading
    part that its out covers (the last tiles may be cut by the output's edge)."""
    for o, (a, b, c), op in ((out[0], (0, 1, 2), np.add), (out[1], (1, 2, 3), np.subtract)):
        part = tuple(slice(0, size) for size in o.shape)
        op(m[a][part], m[b][part], out=o)
        op(o, m[c][part], out=o)


def _a_rows(y, out) -> None:
    """out = A y along one axis of the tiles, the adjoint of `_at_rows`: y 2 arrays, out 4."""
    np.copyto(out[0], y[0])
    np.add(y[0], y[1], out=out[1])
    np.subtract(y[0], y[1], out=out[2])
    np.negative(y[1], out=out[3])


def _winograd_kernel(w: np.ndarray) -> np.ndarray:
    """U = G w G^T for each channel pair: (3, 3, C_in, C_out) -> (16, C_in, C_out)."""
    gw = np.empty((4, *w.shape[1:]), dtype=w.dtype)  # G w
    _g_rows(w, gw)
    u = np.empty((4, 4, *w.shape[2:]), dtype=w.dtype)
    _g_rows(gw.swapaxes(0, 1), u.swapaxes(0, 1))
    return u.reshape(16, *w.shape[2:])


def _winograd_weights(du: np.ndarray) -> np.ndarray:
    """dw = G^T dU G, the adjoint of `_winograd_kernel`: (16, C_in, C_out) -> (3, 3, C_in,
    C_out)."""
    du = du.reshape(4, 4, *du.shape[1:])
    gt_du = np.empty((3, *du.shape[1:]), dtype=du.dtype)  # G^T dU
    _gt_rows(du, gt_du)
    dw = np.empty((3, 3, *du.shape[2:]), dtype=du.dtype)
    _gt_rows(gt_du.swapaxes(0, 1), dw.swapaxes(0, 1))
    return dw


def _tile_geometry(g: _Geometry) -> _Geometry:
    """g with its output rounded up to whole 2x2 tiles: an extra row or column of outputs,
    read from one more row or column of end padding (zeros), which no output keeps."""
    odd = [o % 2 for o in g.out_size]
    return g._replace(out_size=tuple(o + e for o, e in zip(g.out_size, odd, strict=True)),
                      pads=tuple((p0, p1 + e) for (p0, p1), e in zip(g.pads, odd, strict=True)))


def _winograd_shares(fn, g: _Geometry, n: int, channels: int) -> list:
    """fn(pieces) for each thread's share of the work, each thread on one BLAS thread; the
    results, one per share. The pieces (samples, tile rows) hold transformed tiles on
    `channels` channels that fit `_WINOGRAD_BYTES`: several samples when a sample's fit, else
    bands of one sample's tile rows (also when there are fewer samples than threads).
    g: the `_tile_geometry`."""
    th, tw = (o // 2 for o in g.out_size)
    row_bytes = 16 * tw * channels * 4  # a row of tiles' transforms in float32
    height = max(1, min(_WINOGRAD_BYTES // row_bytes, th))
    if n < _parallel.THREADS:
        height = min(height, -(-th // _parallel.THREADS))
    if height < th:
        pieces = [(slice(i, i + 1), slice(r, min(r + height, th)))
                  for i in range(n) for r in range(0, th, height)]
    else:
        step = max(1, min(_WINOGRAD_BYTES // (row_bytes * th), -(-n // _parallel.THREADS)))
        pieces = [(slice(i, min(i + step, n)), slice(0, th)) for i in range(0, n, step)]
    shares = [pieces[s] for s in _parallel.batch_slices(len(pieces), _parallel.THREADS)]
    if len(shares) == 1:
        return [fn(shares[0])]
    with _parallel.one_blas_thread():
        return _parallel.run_all(fn, shares)


def _winograd_input(x: np.ndarray, g: _Geometry, batch: slice, rows: slice,
                    scratch: _Buffers) -> np.ndarray:
    """V = B^T d B for the tiles in tile rows `rows` of samples `batch` of x (N, *in, C):
    (16, n*h*w', C), h tile rows of w' tiles each; g: the `_tile_geometry`. The piece of x is
    zero-padded first (`_Buffers.padded`): the 2h + 2 rows and 2w' + 2 columns its tiles
    cover."""
    h, tw, c = rows.stop - rows.start, g.out_size[1] // 2, x.shape[-1]
    piece, inp = _rows(g, 2 * rows.start, 2 * rows.stop)
    xp = scratch.padded(_split_groups(x[batch, inp], 1), piece)[0][..., 0, :]
    n = xp.shape[0]
    t = scratch.reuse("rows", (4, n, h, 2 * tw + 2, c))  # B^T d
    _bt_rows([xp[:, r:r + 2 * h:2] for r in range(4)], t)  # row r of every tile
    v = scratch.reuse("tiles", (4, 4, n, h, tw, c))  # (B^T d) B
    _bt_rows([t[..., j:j + 2 * tw:2, :] for j in range(4)], v.swapaxes(0, 1))  # column j
    return v.reshape(16, -1, c)


def _winograd_output(m: np.ndarray, y: np.ndarray, scratch: _Buffers) -> None:
    """y = A^T M A for every tile, m (4, 4, n, h, w', C_out): into y (n, 2h or 2h - 1, 2w' or
    2w' - 1, C_out), whose last row and column of tiles may be cut by the output's edge."""
    s = scratch.reuse("sums", (2, *m.shape[1:]))  # A^T M
    _at_rows(m, s)
    for r in range(2):  # output row r of every tile, its two columns
        _at_rows(s[r], (y[:, r::2, 0::2], y[:, r::2, 1::2]))


def _winograd_forward(x: np.ndarray, w: np.ndarray, g: _Geometry, y: np.ndarray,
                      finish: ChannelMap | None = None) -> None:
    """y (N, *out, C_out) of the 3x3 convolution of x (N, *in, C_in) with w by F(2x2, 3x3),
    piece by piece: transform the input tiles, 16 products with U, transform back, then
    finish that piece of y if given."""
    c_in, c_out = w.shape[-2:]
    u = _winograd_kernel(w)
    oh, gt = g.out_size[0], _tile_geometry(g)

    def run(pieces):
        scratch = _Buffers(x.shape, 1, x.dtype)
        for batch, rows in pieces:
            v = _winograd_input(x, gt, batch, rows, scratch)
            m = scratch.reuse("products", (16, v.shape[1], c_out))
            np.matmul(v, u, out=m)
            shape = (4, 4, batch.stop - batch.start, rows.stop - rows.start, -1, c_out)
            out = (batch, slice(2 * rows.start, min(2 * rows.stop, oh)))
            _winograd_output(m.reshape(shape), y[out], scratch)
            if finish is not None:
                finish(y, y, out)

    _winograd_shares(run, gt, x.shape[0], max(c_in, c_out))


def _winograd_output_grad(dy: np.ndarray, batch: slice, rows: slice, tw: int,
                          scratch: _Buffers) -> np.ndarray:
    """dM = A dY A^T for the output tiles in tile rows `rows` of samples `batch` of dy (N, *out,
    C_out), the adjoint of `_winograd_output` (outputs past the edge count as zeros):
    (16, n*h*w', C_out). A = [[1, 0], [1, 1], [1, -1], [0, -1]]."""
    nb, h, c = batch.stop - batch.start, rows.stop - rows.start, dy.shape[-1]
    dyp = part = dy[batch, 2 * rows.start:2 * rows.stop]
    if part.shape[1:3] != (2 * h, 2 * tw):  # tiles cut by the edge: their outside as zeros
        dyp = scratch.reuse("padded_dy", (nb, 2 * h, 2 * tw, c))
        dyp.fill(0)
        dyp[:, :part.shape[1], :part.shape[2]] = part
    q = scratch.reuse("rows_dy", (4, nb, h, 2 * tw, c))  # A dY
    _a_rows((dyp[:, 0::2], dyp[:, 1::2]), q)  # output row 0 and 1 of every tile
    dm = scratch.reuse("tiles_dy", (4, 4, nb, h, tw, c))  # (A dY) A^T
    _a_rows((q[..., 0::2, :], q[..., 1::2, :]), dm.swapaxes(0, 1))  # column 0 and 1
    return dm.reshape(16, -1, c)


def _winograd_weight_grad(dy: np.ndarray, x: np.ndarray, g: _Geometry) -> np.ndarray:
    """dw (3, 3, C_in, C_out) of `_winograd_forward`: dU = sum over tiles of V^T dM (16
    products, V the input tiles rebuilt piece by piece), then dw = G^T dU G."""
    c_in, c_out = x.shape[-1], dy.shape[-1]
    gt = _tile_geometry(g)

    def run(pieces):
        scratch = _Buffers(x.shape, 1, x.dtype)
        du, product = np.zeros((2, 16, c_in, c_out), dtype=x.dtype)
        for batch, rows in pieces:
            v = _winograd_input(x, gt, batch, rows, scratch)
            dm = _winograd_output_grad(dy, batch, rows, gt.out_size[1] // 2, scratch)
            np.matmul(v.transpose(0, 2, 1), dm, out=product)
            du += product
        return du

    return _winograd_weights(_sum(_winograd_shares(run, gt, x.shape[0], max(c_in, c_out))))


# ===== banded kernels: small images, few filters ===============================================
def _banded(g: _Geometry, c_in: int, c_out: int, groups: int) -> bool:
    """Whether the convolution runs as one over its other axes with banded kernels
    (`_band_kernel`): for a few filters on a narrow image with few channels, where the patches
    would be many short rows feeding a product only C_out columns wide (LeNet's C1, C3). The band
    trades those copies for multiply-adds, W_in/kW of them per useful one (`_BAND_WASTE`), on
    input rows of W_in*C_in values (`_BAND_ROW`)."""
    return (groups == 1 and len(g.kernel) >= 2 and c_out <= _FEW_FILTERS
            and g.in_size[-1] <= _BAND_WASTE * g.kernel[-1]
            and g.in_size[-1] * c_in <= _BAND_ROW)


def _dense(g: _Geometry, c_in: int, c_out: int, groups: int) -> bool:
    """Whether the convolution runs as one product with its whole Toeplitz matrix
    (`_band_kernel` over every axis): when the map has no more positions than the kernel has
    taps, the matrix (prod(in)*C_in, prod(out)*C_out) takes no more multiply-adds than the
    patches would, and none of the zeros that padding puts in the patches of a small map
    (ResNet's 3x3 kernels on 2x2 maps, 32x32 images: 2.25x fewer). The matrix is held to
    `_DENSE_BYTES` (in float32)."""
    return (groups == 1 and math.prod(g.in_size) <= math.prod(g.kernel)
            and math.prod(g.in_size) * c_in * math.prod(g.out_size) * c_out * 4 <= _DENSE_BYTES)


def _lead(g: _Geometry) -> _Geometry:
    """g without its last axis: the geometry of the kernel's rows (`_band_kernel`)."""
    return _Geometry(*(field[:-1] for field in g))


def _as_rows(a: np.ndarray) -> np.ndarray:
    """(N, *lead, W, C) -> (N, *lead, W*C): each row along the last axis as one vector."""
    return a.reshape(*a.shape[:-2], -1)


def _trailing(g: _Geometry, axes: int) -> _Geometry:
    """g on its last `axes` axes only."""
    return _Geometry(*(field[-axes:] for field in g))


def _diagonals(t: np.ndarray, g: _Geometry, axes: int):
    """For each tap v of g's last `axes` axes that reads the input: v, and the entries of a
    banded kernel t (K', *in, C_in, *out, C_out), contiguous, over those axes that hold its
    weights, as a view (K', *O_v, C_in, C_out): t[r, j*s + v*d - p0, :, j] for every output j
    the tap feeds (O_v of them along each axis; K': the taps of the other axes)."""
    position, column = t.strides[1:1 + axes], t.strides[2 + axes:2 + 2 * axes]
    for tap in _taps(_trailing(g, axes))[0]:
        first = sum(sl.start * p for sl, p in zip(tap.inp, position, strict=True)) + sum(
            sl.start * c for sl, c in zip(tap.out, column, strict=True))
        shape = (t.shape[0], *(sl.stop - sl.start for sl in tap.out), t.shape[1 + axes],
                 t.shape[-1])
        strides = (t.strides[0], *(sl.step * p + c for sl, p, c in zip(tap.inp, position, column,
                                                                        strict=True)),
                   t.strides[1 + axes], t.strides[-1])
        yield tap.offset, np.ndarray(shape, t.dtype, t, first, strides)


def _band_layout(g: _Geometry, c_in: int, c_out: int, axes: int) -> tuple[int, ...]:
    """(K', *in, C_in, *out, C_out): a banded kernel over g's last `axes` axes."""
    return (math.prod(g.kernel[:-axes]), *g.in_size[-axes:], c_in, *g.out_size[-axes:], c_out)


def _band_shape(g: _Geometry, c_in: int, c_out: int, axes: int = 1) -> tuple[int, ...]:
    """(*k', prod(in)*C_in, prod(out)*C_out): `_band_kernel`'s shape, the kernel of the
    convolution over the other axes (k': the kernel on those axes)."""
    return (*g.kernel[:-axes], math.prod(g.in_size[-axes:]) * c_in,
            math.prod(g.out_size[-axes:]) * c_out)


def _band_kernel(w: np.ndarray, g: _Geometry, axes: int = 1) -> np.ndarray:
    """w (*k, C_in, C_out) as the kernel of a convolution over the other axes, whose
    "channels" are whole input rows over the last `axes` axes: (*k', prod(in)*C_in,
    prod(out)*C_out), where row r maps those inputs to their share of the outputs,
    y[j, f] += sum_{v,c} x[j*s + v*d - p0, c] * w[r, v, c, f]: a banded (Toeplitz) matrix, the
    convolution along those axes (`toeplitz`). Over every axis (axes = len(k)) it is the whole
    matrix of the convolution, (prod(in)*C_in, prod(out)*C_out). Taps that would read padding
    have no entries."""
    t = np.zeros(_band_layout(g, *w.shape[-2:], axes), dtype=w.dtype)
    taps = w.reshape(t.shape[0], *w.shape[-2 - axes:])  # (K', *k, C_in, C_out)
    for offset, diagonal in _diagonals(t, g, axes):
        diagonal[...] = taps[(slice(None), *offset, *(None,) * axes)]
    return t.reshape(_band_shape(g, *w.shape[-2:], axes))


def _band_weights(dt: np.ndarray, g: _Geometry, w_shape, axes: int = 1) -> np.ndarray:
    """The gradient of w from that of its banded kernel (the adjoint of `_band_kernel`): each
    weight's share summed over the outputs j that hold it."""
    t = np.ascontiguousarray(dt).reshape(_band_layout(g, *w_shape[-2:], axes))
    dw = np.zeros((t.shape[0], *w_shape[-2 - axes:]), dtype=dt.dtype)  # (K', *k, C_in, C_out)
    for offset, diagonal in _diagonals(t, g, axes):
        dw[(slice(None), *offset)] = diagonal.sum(axis=tuple(range(1, 1 + axes)))
    return dw.reshape(w_shape)


# ===== the convolution core ====================================================================
def _is_depthwise(x_shape, groups: int) -> bool:
    return groups > 1 and groups == x_shape[-1]


def _conv_forward(x: np.ndarray, w: np.ndarray, g: _Geometry, groups: int,
                  finish: ChannelMap | None = None) -> np.ndarray:
    """y (N, *out, C_out) of the cross-correlation of x (N, *in, C_in) with w, then finish(y)
    in place if given: on each piece of y right after its product, while it is in cache
    (im2col and Winograd), or over all of y at the end (the other ways)."""
    n, c_out = x.shape[0], w.shape[-1]
    crop = _crop(g)
    if crop is not None:
        return _conv_forward(x, w[crop[1]], crop[0], groups, finish)
    if _dense(g, x.shape[-1], c_out, groups):
        y = (x.reshape(n, -1) @ _band_kernel(w, g, len(g.kernel))).reshape(n, *g.out_size, c_out)
    elif _banded(g, x.shape[-1], c_out, groups):
        y = _conv_forward(_as_rows(x), _band_kernel(w, g), _lead(g), 1)
        y = y.reshape(n, *g.out_size, c_out)
    else:
        y = np.empty((n, *g.out_size, c_out), dtype=x.dtype)
        if not _is_depthwise(x.shape, groups):  # these two finish each piece themselves
            if _winograd(g, n, x.shape[-1], c_out, groups):
                _winograd_forward(x, w, g, y, finish)
            else:
                _im2col_forward(x, w, g, groups, y, finish)
            return y
        _depthwise_forward(x, w, g, y)
    if finish is not None:
        finish.over(y, y)
    return y


def _im2col_forward(x, w, g: _Geometry, groups: int, y, finish: ChannelMap | None) -> None:
    """y = the convolution of x with w, piece by piece: the patches of each piece copied into
    cache-sized buffers, one product per group, then finish on that piece of y if given."""
    n, c_out = x.shape[0], w.shape[-1]
    xg = _split_groups(x, groups)
    wg = _group_weights(w, groups)
    item = x.dtype.itemsize * math.prod(g.kernel) * x.shape[-1]

    def run(rows):
        buffers = _Buffers(x.shape, groups, x.dtype)
        for p in _pieces(g, rows, item):
            cols = _patch_matrix(xg[p.batch, p.inp], p.geometry, groups, buffers)
            out = y[p.batch, p.out].reshape(-1, groups, c_out // groups).transpose(1, 0, 2)
            _grouped_matmul(cols, wg, out)
            if finish is not None:
                finish(y, y, (p.batch, p.out))

    copy = 0 if g.pointwise else n * math.prod(g.out_size) * item
    _over_batch(run, n, w.shape, groups, copy, y.size * math.prod(g.kernel),
                n * math.prod(g.out_size))


def _adjoint_geometry(g: _Geometry) -> _Geometry | None:
    """For a stride-1 convolution, the geometry of the convolution of dy that gives its input
    gradient: input and output sizes swapped, padded by d*(k-1) - p on each side; None at
    another stride or when a pad exceeds d*(k-1) (that would be a crop)."""
    reach = [d * (k - 1) for k, d in zip(g.kernel, g.dilation, strict=True)]
    if any(s != 1 for s in g.stride) or any(
        p > r for pair, r in zip(g.pads, reach, strict=True) for p in pair
    ):
        return None
    pads = tuple((r - p0, r - p1) for (p0, p1), r in zip(g.pads, reach, strict=True))
    return _Geometry(g.out_size, g.in_size, g.kernel, g.stride, g.dilation, pads)


def _adjoint_kernel(w: np.ndarray, groups: int) -> np.ndarray:
    """w' with dx = conv(dy, w') at stride 1: w flipped, C_in and C_out swapped in each group.
    (*k, C_in/G, C_out) -> (*k, C_out/G, C_in)."""
    n = w.ndim - 2
    c_in_g, c_out = w.shape[-2], w.shape[-1]
    flipped = _flip(w, n).reshape(*w.shape[:n], c_in_g, groups, c_out // groups)
    # (*k, C_in/G, G, C_out/G) -> (*k, C_out/G, G, C_in/G) -> (*k, C_out/G, C_in)
    return np.ascontiguousarray(np.swapaxes(flipped, n, n + 2)).reshape(
        *w.shape[:n], c_out // groups, c_in_g * groups)


def _stride1_backward(dy, x, w, ga: _Geometry, groups: int, x_shape, w_shape, need_dx,
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
    dyg = _split_groups(dy, groups)
    # (G, K*C_out/G, C_in/G)
    w_adj = _group_weights(_adjoint_kernel(w, groups), groups) if need_dx else None
    dx = np.empty(x_shape, dtype=dtype) if need_dx else None
    taps_rows = k_cout >= c_in_g
    dw_shape = (groups, k_cout, c_in_g) if taps_rows else (groups, c_in_g, k_cout)
    item = dtype.itemsize * math.prod(ga.kernel) * c_out  # bytes of patches of dy per position

    def run(rows):  # -> this share's part of dw_t
        dw_t = np.zeros(dw_shape, dtype=dtype) if need_dw else None
        scratch = np.empty_like(dw_t) if need_dw else None
        buffers = _Buffers(dy.shape, groups, dtype)
        for p in _pieces(ga, rows, item):
            cols = _patch_matrix(dyg[p.batch, p.inp], p.geometry, groups, buffers)  # (G, m, KC)
            if need_dx:
                out = dx[p.batch, p.out].reshape(-1, groups, c_in_g).transpose(1, 0, 2)
                _grouped_matmul(cols, w_adj, out)  # (G, m, C_in/G)
            if need_dw:
                # (G, m, C_in/G): the inputs at the positions this piece's dx rows cover
                xp = x[p.batch, p.out].reshape(-1, groups, c_in_g).transpose(1, 0, 2)
                if taps_rows:
                    _grouped_matmul(cols.transpose(0, 2, 1), xp, scratch)
                else:
                    _grouped_matmul(xp.transpose(0, 2, 1), cols, scratch)
                dw_t += scratch
        return dw_t

    copy = 0 if ga.pointwise else n * math.prod(ga.out_size) * item  # (N, *in, K*C_out)
    work = dy.size * math.prod(ga.kernel) * (need_dx + need_dw)
    dw_t = _sum(_over_batch(run, n, w_shape, groups, copy, work, n * math.prod(ga.out_size)))
    if dw_t is None:
        return dx, None
    if not taps_rows:
        dw_t = dw_t.transpose(0, 2, 1)
    # (G, *k, C_out/G, C_in/G) -> (*k, C_in/G, G, C_out/G), taps mirrored back
    n_k = len(ga.kernel)
    dw = dw_t.reshape(groups, *ga.kernel, c_out // groups, c_in_g).transpose(
        *range(1, 1 + n_k), 2 + n_k, 0, 1 + n_k)
    return dx, _flip(dw, n_k).reshape(w_shape)


def _dy_patches_smaller(g: _Geometry, c_in: int, c_out: int, need_dx: bool) -> bool:
    """Whether the stride-1 backward's patches of dy (K*C_out values per input position) are
    no larger than what the other way copies: the patches of x and, for dx, the patch gradients
    (K*C_in values per output position each). Not so for a first layer (C_in 1 or 3, no dx) or
    a layer whose output is much smaller than its input (LeNet's C5: 5x5 -> 1x1)."""
    if g.pointwise:
        return True
    return math.prod(g.in_size) * c_out <= math.prod(g.out_size) * c_in * (1 + need_dx)


def _conv_backward(dy, x, w, g: _Geometry, groups: int, x_shape, w_shape, need_dx, need_dw):
    """(dx, dw) of y = conv(x, w) given dy (N, *out, C_out); None for what is not needed.

    At stride 1 both come from the patches of dy (`_stride1_backward`). Otherwise
    dw = cols^T @ dy, the patches of x rebuilt piece by piece, and dcols = dy @ w^T per piece,
    scattered back into dx by col2im.
    """
    n, c_in, c_out = x_shape[0], x_shape[-1], w_shape[-1]
    dtype = dy.dtype
    if not (need_dx or need_dw):
        return None, None
    crop = _crop(g)
    if crop is not None:  # the cut taps' weights get no gradient
        gc, taps = crop
        wc_shape = (*gc.kernel, *w_shape[len(taps):])
        dx, dwc = _conv_backward(dy, x, None if w is None else w[taps], gc, groups, x_shape,
                                 wc_shape, need_dx, need_dw)
        dw = None
        if need_dw:
            dw = np.zeros(w_shape, dtype=dtype)
            dw[taps] = dwc
        return dx, dw
    if _is_depthwise(x_shape, groups):
        dx = np.zeros(x_shape, dtype=dtype) if need_dx else None
        dw = _depthwise_backward(dy, x, w, g, c_in, dx, need_dw)
        return dx, dw
    if _dense(g, c_in, c_out, groups):
        dy_rows, axes = dy.reshape(n, -1), len(g.kernel)
        dx = (dy_rows @ _band_kernel(w, g, axes).T).reshape(x_shape) if need_dx else None
        dw = _band_weights(x.reshape(n, -1).T @ dy_rows, g, w_shape, axes) if need_dw else None
        return dx, dw
    if _banded(g, c_in, c_out, groups):
        t = _band_kernel(w, g) if need_dx else None
        t_shape = _band_shape(g, c_in, c_out)
        dx, dt = _conv_backward(_as_rows(dy), None if x is None else _as_rows(x), t, _lead(g), 1,
                                (n, *x_shape[1:-2], t_shape[-2]), t_shape, need_dx, need_dw)
        return (None if dx is None else dx.reshape(x_shape),
                None if dt is None else _band_weights(dt, g, w_shape))
    if _winograd(g, n, c_in, c_out, groups):  # dx: a convolution of dy that is one as well
        dx = (_conv_forward(dy, _adjoint_kernel(w, 1), _adjoint_geometry(g), 1) if need_dx
              else None)
        return dx, _winograd_weight_grad(dy, x, g) if need_dw else None
    adjoint = _adjoint_geometry(g)
    if adjoint is not None and _dy_patches_smaller(g, c_in, c_out, need_dx):
        return _stride1_backward(dy, x, w, adjoint, groups, x_shape, w_shape, need_dx, need_dw)
    dx = np.zeros(x_shape, dtype=dtype) if need_dx else None
    xg = _split_groups(x, groups) if need_dw else None
    dxg = _split_groups(dx, groups) if need_dx else None
    c_in_g, n_k, taps = c_in // groups, len(g.kernel), math.prod(g.kernel)
    # (G, C_out/G, K*C_in/G), contiguous: BLAS is slower on a transposed right-hand side here
    wg_t = np.ascontiguousarray(_group_weights(w, groups).transpose(0, 2, 1)) if need_dx else None
    # (G, K, C_out/G, C_in/G): one product per tap gives tap-major patch gradients, whose slices
    # col2im adds as whole rows of C_in values (patch-major ones: C_in/G values at a time)
    w_taps = None if wg_t is None else np.ascontiguousarray(
        wg_t.reshape(groups, -1, taps, c_in_g).transpose(0, 2, 1, 3))
    k_cin = taps * c_in_g
    item = dtype.itemsize * math.prod(g.kernel) * c_in

    def run(rows):  # -> this share's part of dw
        dw = np.zeros((groups, k_cin, c_out // groups), dtype=dtype) if need_dw else None
        scratch = np.empty_like(dw) if need_dw else None
        buffers = _Buffers(x_shape, groups, dtype)
        grads = {}  # the patch gradients' buffer per geometry, apart from the patches
        for p in _pieces(g, rows, item):
            pg = p.geometry
            m = (p.batch.stop - p.batch.start) * math.prod(pg.out_size)
            dyp = dy[p.batch, p.out].reshape(m, groups, c_out // groups).transpose(1, 0, 2)
            if need_dw:
                cols = _patch_matrix(xg[p.batch, p.inp], pg, groups, buffers)  # (G, m, KC)
                _grouped_matmul(cols.transpose(0, 2, 1), dyp, scratch)
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
            _col2im(dcols, pg, dxg[p.batch, p.inp])
        return dw

    # the patches of x for dw and their gradients for dx, (N, *out, K*C_in) each
    copy = 0 if g.pointwise else n * math.prod(g.out_size) * item * (need_dw + need_dx)
    work = dy.size * taps * c_in * (need_dx + need_dw)
    dw = _sum(_over_batch(run, n, w_shape, groups, copy, work, n * math.prod(g.out_size)))
    if dw is not None:
        dw = dw.transpose(1, 0, 2).reshape(w_shape)  # (G, K*C_in/G, C_out/G) -> (*k, C_in/G, C_out)
    return dx, dw


def _full_tap_first(g: _Geometry) -> tuple[list[_Tap], bool]:
    """The taps with one that covers every output first (it can initialise the result), if any
    does, and whether it does."""
    taps = list(_taps(g)[0])
    full = [i for i, t in enumerate(taps)
            if all(sl.start == 0 and sl.stop == o for sl, o in zip(t.out, g.out_size,
                                                                   strict=True))]
    if full:
        taps.insert(0, taps.pop(full[0]))
    return taps, bool(full)


def _depthwise_forward(x, w, g: _Geometry, y) -> None:
    """y[..., c*m + j] = sum over taps of x[tap slice][..., c] * w[tap, 0, c*m + j]: a
    multiply-add of shifted slices per tap (m = C_out / C_in filters per channel), the batch
    split over the threads."""
    c = x.shape[-1]
    ym = _split_groups(y, c)  # (N, *out, C_in, m)
    wm = _split_groups(w[..., 0, :], c)  # (*k, C_in, m)
    taps, first_full = _full_tap_first(g)
    every = (slice(None),)

    def run(rows):
        product = None
        for block in _parallel.blocks(rows, y[0].nbytes, _BLOCK_BYTES):
            yr, xr = ym[block], x[block][..., None]
            if product is None or product.shape[0] != yr.shape[0]:
                product = np.empty_like(yr)
            if not first_full:
                yr.fill(0)
            for i, tap in enumerate(taps):
                if i == 0 and first_full:
                    np.multiply(xr[every + tap.inp], wm[tap.offset], out=yr)
                    continue
                out = every + tap.out
                yr[out] += np.multiply(xr[every + tap.inp], wm[tap.offset], out=product[out])

    _parallel.over_batch(run, x.shape[0], y.size * len(taps))


def _depthwise_backward(dy, x, w, g: _Geometry, c_in: int, dx, need_dw):
    """Add the input gradient into dx (when given) and return dw (when needed) of the depthwise
    convolution, tap by tap: dx[tap slice][..., c] += sum_j dy[..., c, j] * w[tap, 0, c*m + j]
    and dw[tap, 0, c*m + j] = sum over positions of x[tap slice][..., c] * dy[..., c, j].
    The batch is split over the threads; each returns its share of dw."""
    dym = _split_groups(dy, c_in)  # (N, *out, C_in, m)
    m = dym.shape[-1]
    wm = _split_groups(w[..., 0, :], c_in) if dx is not None else None  # (*k, C_in, m)
    every = (slice(None),)
    lead = "nxyz"[: dy.ndim - 1]  # the batch and spatial axes, summed over for dw

    def run(rows):
        dw = np.zeros((*g.kernel, c_in, m), dtype=dy.dtype) if need_dw else None
        product = None
        for block in _parallel.blocks(rows, dy[0].nbytes, _BLOCK_BYTES):
            d_rows = dym[block]
            if dx is not None and (product is None or product.shape[0] != d_rows.shape[0]):
                product = np.empty(d_rows.shape[:-1], dtype=dy.dtype)
            for tap in _taps(g)[0]:
                d = d_rows[every + tap.out]
                if dx is not None:
                    out = product[every + tap.out]
                    if m == 1:
                        np.multiply(d[..., 0], wm[tap.offset][..., 0], out=out)
                    else:
                        np.einsum("...cj,cj->...c", d, wm[tap.offset], out=out)
                    dx[block][every + tap.inp] += out
                if need_dw:
                    dw[tap.offset] += np.einsum(f"{lead}c,{lead}cj->cj",
                                                x[block][every + tap.inp], d)
        return dw

    parts = _parallel.over_batch(run, dy.shape[0], dy.size * len(_taps(g)[0]))
    return _sum(parts).reshape(*g.kernel, 1, -1) if need_dw else None


def _flip(w: np.ndarray, n: int) -> np.ndarray:
    """The kernel reversed along its n spatial axes (true convolution <-> cross-correlation)."""
    return w[(slice(None, None, -1),) * n]


def _sum(parts: list):
    """The sum of the shares' partial results (None when there are none)."""
    return None if parts[0] is None else functools.reduce(np.add, parts)


def _channel_sum(dy: np.ndarray) -> np.ndarray:
    """db: dy summed over every axis but the channels, as a BLAS matrix-vector product (on
    LeNet's 6 channels ndarray.sum measured 10x slower: it adds 6-value rows one by one)."""
    rows = dy.reshape(-1, dy.shape[-1])
    return np.ones(rows.shape[0], dtype=dy.dtype) @ rows


# ===== ops =====================================================================================
class Conv(Op):
    """y = relu(conv(x, w) * scale + b + residual): the convolution and, on each piece of its
    output while it is in cache, the per-channel map that follows it (`ChannelMap`): its bias,
    in evaluation a batch norm's scale and shift, a ResNet block's shortcut, the ReLU."""

    def forward(self, x, w, b, scale, residual, geometry, groups, flip, relu):
        n = len(geometry.kernel)
        if flip:
            w = _flip(w, n)
        self.geometry, self.groups, self.flip, self.relu = geometry, groups, flip, relu
        self.scale = scale
        self.x_shape, self.w_shape = x.shape, w.shape
        # dw rebuilds the patches from x piece by piece (all of them at once would take K times
        # the memory of x); dx needs only w; dscale recomputes conv(x, w), so needs both.
        need_dx, need_dw, _, need_dscale, _ = self.needs_grad
        self.x = x if need_dw or need_dscale else None
        self.w = w if need_dx or need_dscale else None
        y_size = x.shape[0] * math.prod(geometry.out_size) * w.shape[-1]
        if scale is not None and w.size < y_size:
            # conv(x, w) * scale = conv(x, w * scale): a pass over fewer values (measured 1-8%
            # faster on ResNet-50's stem and layer1 convolutions at batch 1)
            w, scale = w * scale, None
        finish = (ChannelMap(scale, b, residual, relu)
                  if any(a is not None for a in (scale, b, residual)) or relu else None)
        y = _conv_forward(x, w, geometry, groups, finish)
        self.y = y if relu and any(self.needs_grad) else None  # ReLU's gradient: where y > 0
        return y

    def backward(self, dy):
        if self.y is not None:
            dy = relu_gradient(dy, self.y)
        need_dx, need_dw, need_db, need_dscale, need_dresidual = self.needs_grad
        dscale = None
        if need_dscale:  # sum over positions of conv(x, w) * dy, per channel
            z = _conv_forward(self.x, self.w, self.geometry, self.groups)
            dscale = np.einsum("ij,ij->j", z.reshape(-1, z.shape[-1]),
                               dy.reshape(-1, z.shape[-1]))
        dz = dy if self.scale is None or not (need_dx or need_dw) else ChannelMap(
            self.scale).new(dy)
        dx, dw = _conv_backward(dz, self.x, self.w, self.geometry, self.groups, self.x_shape,
                                self.w_shape, need_dx, need_dw)
        if dw is not None and self.flip:
            dw = _flip(dw, len(self.geometry.kernel)).copy()
        return (dx, dw, _channel_sum(dy) if need_db else None, dscale,
                dy if need_dresidual else None)


class ConvTranspose(Op):
    """The adjoint of Conv: x here has the shape of that convolution's output, y of its input."""

    def forward(self, x, w, b, geometry, groups):
        self.geometry, self.groups, self.x_shape, self.w_shape = geometry, groups, x.shape, w.shape
        # d/dx is the convolution itself (needs w); d/dw is its weight gradient with x in the
        # role of dy (needs x).
        self.x = x if self.needs_grad[1] else None
        self.w = w if self.needs_grad[0] else None
        c_in = w.shape[-2] * groups
        y_shape = (x.shape[0], *geometry.in_size, c_in)
        y, _ = _conv_backward(x, None, w, geometry, groups, y_shape, w.shape, True, False)
        if b is not None:
            ChannelMap(shift=b).over(y, y)
        return y

    def backward(self, dy):
        need_dx, need_dw, need_db = self.needs_grad
        dx = _conv_forward(dy, self.w, self.geometry, self.groups) if need_dx else None
        dw = None
        if need_dw:
            _, dw = _conv_backward(self.x, dy, None, self.geometry, self.groups, dy.shape,
                                   self.w_shape, False, True)
        return dx, dw, _channel_sum(dy) if need_db else None


class LocallyConnected(Op):
    """Unshared weights: y[n, o, f] = b[o, f] + sum_{k,c} patches[n, o, k, c] * w[o, k, c, f]."""

    def forward(self, x, w, b, geometry):
        self.geometry, self.x_shape, self.w_shape = geometry, x.shape, w.shape
        self.x = x if self.needs_grad[1] else None  # dw rebuilds the patches from x
        self.w = w if self.needs_grad[0] else None
        cols = self._patches(x)  # (P, N, K*C_in), P = prod(out)
        y = np.empty((x.shape[0], *geometry.out_size, w.shape[-1]), dtype=x.dtype)
        out = y.reshape(x.shape[0], cols.shape[0], -1).transpose(1, 0, 2)  # (P, N, C_out)
        np.matmul(cols, self._weights(w), out=out)
        if b is not None:
            y += b
        return y

    def backward(self, dy):
        need_dx, need_dw, need_db = self.needs_grad
        g, n = self.geometry, self.x_shape[0]
        dyp = dy.reshape(n, -1, dy.shape[-1]).transpose(1, 0, 2)  # (P, N, C_out)
        dx = dw = None
        if need_dw:
            dw = (self._patches(self.x).transpose(0, 2, 1) @ dyp).reshape(self.w_shape)
        if need_dx:
            # (P, N, K*C_in) patch gradients, laid out as im2col's (N, *out, 1, *k, C_in)
            dcols = np.empty((n, *g.out_size, 1, *g.kernel, self.x_shape[-1]), dy.dtype)
            view = dcols.reshape(n, dyp.shape[0], -1).transpose(1, 0, 2)
            np.matmul(dyp, self._weights(self.w).transpose(0, 2, 1), out=view)
            dx = np.zeros(self.x_shape, dtype=dy.dtype)
            _col2im(dcols, g, dx[..., None, :])
        db = dy.sum(axis=0) if need_db else None
        return dx, dw, db

    def _patches(self, x):
        g = self.geometry
        cols = np.zeros((x.shape[0], *g.out_size, 1, *g.kernel, x.shape[-1]), dtype=x.dtype)
        _im2col(x[..., None, :], g, cols)
        return cols.reshape(x.shape[0], math.prod(g.out_size), -1).transpose(1, 0, 2)

    def _weights(self, w):
        return w.reshape(math.prod(self.geometry.out_size), -1, w.shape[-1])  # (P, K*C_in, C_out)


# ===== validation ==============================================================================
def _check_groups(op: str, groups) -> int:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    return int(groups)


def _check_bias(op: str, b, shape: tuple[int, ...], dtype, what: str, name: str = "b"):
    """b (or another argument `name` of a fixed shape: the scale, the residual) as a Tensor of
    x's dtype, or None."""
    if b is None:
        return None
    b = as_tensor(b)
    if b.shape != shape:
        raise ValueError(f"{op}: {name} must have shape {shape} ({what}), got {b.shape}")
    return b if b.dtype == dtype else b.astype(dtype)


def _check_conv(op: str, n: int, x, w, b, groups, transpose: bool = False):
    """Validated (x, w, b, groups) of a convolution; w and b take x's dtype."""
    x, w = as_tensor(x), as_tensor(w)
    x_layout, w_layout = _LAYOUTS[n]
    if transpose:  # x is laid out like the output of the convolution being transposed
        x_layout = x_layout.replace("C_in", "C_out")
    if x.ndim != n + 2:
        raise ValueError(f"{op}: x must be {n + 2}-D {x_layout}, got shape {x.shape}")
    if w.ndim != n + 2:
        raise ValueError(f"{op}: w must be {n + 2}-D {w_layout}, got shape {w.shape}")
    groups = _check_groups(op, groups)
    c_in, c_out = w.shape[-2] * groups, w.shape[-1]
    if c_out % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide the kernel's C_out={c_out} (kernel shape "
            f"{w.shape})"
        )
    have, want = x.shape[-1], (c_out if transpose else c_in)
    if have % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide the input's {have} channels (input shape "
            f"{x.shape})"
        )
    if have != want:
        maps = f"; the kernel maps {c_in} -> {c_out} channels" if transpose else ""
        grouped = f" with groups={groups}" if groups > 1 else ""
        raise ValueError(
            f"{op}: input has {have} channels but the kernel expects {want}{grouped} (input "
            f"shape {x.shape}, kernel shape {w.shape}){maps}"
        )
    if w.dtype != x.dtype:
        w = w.astype(x.dtype)
    size = c_in if transpose else c_out
    b = _check_bias(op, b, (size,), x.dtype, f"one per {'input' if transpose else 'output'} "
                    f"channel of kernel shape {w.shape}")
    return x, w, b, groups


def _geometry(op: str, n: int, in_size, kernel, stride, padding, dilation, strict=False):
    """The validated `_Geometry`, remembered for hashable arguments: a network asks for the
    same few on every call, and working one out takes ~15 us (a list argument is worked out
    each time)."""
    args = (op, n, tuple(in_size), tuple(kernel), stride, padding, dilation, strict)
    try:
        return _known_geometry(*args)
    except TypeError:  # unhashable; a bad argument raises the same error again below
        return _known_geometry.__wrapped__(*args)


@functools.lru_cache(maxsize=1024)
def _known_geometry(op, n, in_size, kernel, stride, padding, dilation, strict) -> _Geometry:
    stride = ntuple(stride, n, "stride", op)
    dilation = ntuple(dilation, n, "dilation", op)
    out, pads = conv_geometry(in_size, kernel, stride, padding, dilation, strict, op)
    return _Geometry(in_size, out, kernel, stride, dilation, pads)


# ===== public functions ========================================================================
def _conv(op, n, x, w, b, stride, padding, dilation, groups, flip, strict, relu, scale,
          residual) -> Tensor:
    x, w, b, groups = _check_conv(op, n, x, w, b, groups)
    g = _geometry(op, n, x.shape[1:-1], w.shape[:n], stride, padding, dilation, strict)
    scale = _check_bias(op, scale, (w.shape[-1],), x.dtype,
                        f"one per output channel of kernel shape {w.shape}", name="scale")
    residual = _check_bias(op, residual, (x.shape[0], *g.out_size, w.shape[-1]), x.dtype,
                           "the output's shape", name="residual")
    return Conv.apply(x, w, b, scale, residual, geometry=g, groups=groups, flip=bool(flip),
                      relu=bool(relu))


def conv1d(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1, flip=False,
           strict=False, relu=False, scale=None, residual=None) -> Tensor:
    """1-D cross-correlation of a batch of sequences with a bank of filters (true convolution,
    the kernel reversed, if flip).

    y[n, i, f] = b[f] + sum_{u,c} w[u, c, f] * xp[n, i*s + u*d, g*C_in/G + c]
    (xp: x zero-padded; g = f // (C_out/G), the group of filter f).

    x: (N, L, C_in); w: (kL, C_in/groups, C_out); b: (C_out,) or None.
    Returns (N, L_out, C_out), L_out = floor((L + p0 + p1 - d*(kL-1) - 1) / s) + 1.
    padding: 'valid' | 'same' | 'full' | int | (int,) | ((start, end),). strict=True rejects a
    stride that leaves the last inputs unused. relu=True returns max(0, y), taken in the pass
    that adds the bias (a ReLU of its own would read and write all of y again). scale (C_out,)
    and residual (the output's shape), each optional, make it max(0, y' * scale + b +
    residual), y' the convolution, in that pass too: a batch norm in evaluation is a scale and
    a shift (`nn.conv_norm`), a residual a ResNet block's shortcut.

    >>> conv1d(np.zeros((2, 100, 3)), np.zeros((5, 3, 8)), stride=2).shape
    (2, 48, 8)
    """
    return _conv("conv1d", 1, x, w, b, stride, padding, dilation, groups, flip, strict,
                 relu, scale, residual)


def conv2d(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1, flip=False,
           strict=False, relu=False, scale=None, residual=None) -> Tensor:
    """2-D cross-correlation of a batch of images with a bank of filters (true convolution, the
    kernel flipped along both axes, if flip).

    y[n, i, j, f] = b[f] + sum_{u,v,c} w[u, v, c, f] * xp[n, i*sH + u*dH, j*sW + v*dW, c']
    (xp: x zero-padded; c' = g*C_in/G + c, g = f // (C_out/G) the group of filter f).

    x: (N, H, W, C_in); w: (kH, kW, C_in/groups, C_out); b: (C_out,) or None.
    Returns (N, H_out, W_out, C_out), H_out = floor((H + pH0 + pH1 - dH*(kH-1) - 1) / sH) + 1,
    W_out likewise. padding: 'valid' | 'same' (TensorFlow: H_out = ceil(H / sH)) | 'full' | int
    | (pH, pW) | ((pH0, pH1), (pW0, pW1)). groups == C_in is depthwise convolution. relu=True
    returns max(0, y), in the pass that adds the bias; scale (C_out,) and residual (the
    output's shape) make it max(0, y' * scale + b + residual) there (`conv1d`).

    >>> conv2d(np.zeros((2, 8, 8, 3)), np.zeros((3, 3, 3, 4)), padding="same").shape
    (2, 8, 8, 4)
    """
    return _conv("conv2d", 2, x, w, b, stride, padding, dilation, groups, flip, strict,
                 relu, scale, residual)


def conv3d(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1, flip=False,
           strict=False, relu=False, scale=None, residual=None) -> Tensor:
    """3-D cross-correlation of a batch of volumes (video, CT) with a bank of filters (true
    convolution if flip).

    y[n, t, i, j, f] = b[f] + sum_{r,u,v,c} w[r, u, v, c, f] * xp[n, t*sD + r*dD, i*sH + u*dH,
    j*sW + v*dW, c'] (xp: x zero-padded; c' the channel c of filter f's group).

    x: (N, D, H, W, C_in); w: (kD, kH, kW, C_in/groups, C_out); b: (C_out,) or None.
    Returns (N, D_out, H_out, W_out, C_out), each O = floor((I + p0 + p1 - d*(k-1) - 1) / s) + 1.
    relu=True returns max(0, y), in the pass that adds the bias; scale and residual as
    `conv1d`.

    >>> conv3d(np.zeros((1, 16, 32, 32, 3)), np.zeros((3, 3, 3, 3, 8)), padding=1).shape
    (1, 16, 32, 32, 8)
    """
    return _conv("conv3d", 3, x, w, b, stride, padding, dilation, groups, flip, strict,
                 relu, scale, residual)


def _conv_transpose(op, n, x, w, b, stride, padding, output_padding, dilation, groups) -> Tensor:
    x, w, b, groups = _check_conv(op, n, x, w, b, groups, transpose=True)
    stride = ntuple(stride, n, "stride", op)
    dilation = ntuple(dilation, n, "dilation", op)
    kernel = w.shape[:n]
    out, pads = transpose_geometry(x.shape[1:-1], kernel, stride, padding, dilation,
                                   output_padding, op)
    g = _geometry(op, n, out, kernel, stride, pads, dilation)
    assert g.out_size == x.shape[1:-1], (g, x.shape)  # the convolution maps `out` back to x
    return ConvTranspose.apply(x, w, b, geometry=g, groups=groups)


def conv_transpose1d(x, w, b=None, stride=1, padding="valid", output_padding=None, dilation=1,
                     groups=1) -> Tensor:
    """1-D transposed convolution: the adjoint of conv1d(., w) with the same arguments, so that
    <conv1d(z, w), x> == <z, conv_transpose1d(x, w)> (upsampling by the stride).

    y = sum over i, u of x[n, i, f] * w[u, c, f] placed at y[n, i*s + u*d - p0, c].

    x: (N, L, C_out), laid out like the convolution's output; w: (kL, C_in/groups, C_out), the
    kernel of the convolution being transposed; b: (C_in,) = (w.shape[-2]*groups,) or None.
    Returns (N, L_out, C_in), L_out = (L - 1)*s - p0 - p1 + d*(kL-1) + 1 + output_padding
    ('same': L*s).

    >>> conv_transpose1d(np.zeros((2, 10, 8)), np.zeros((4, 3, 8)), stride=2).shape
    (2, 22, 3)
    """
    return _conv_transpose("conv_transpose1d", 1, x, w, b, stride, padding, output_padding,
                           dilation, groups)


def conv_transpose2d(x, w, b=None, stride=1, padding="valid", output_padding=None, dilation=1,
                     groups=1) -> Tensor:
    """2-D transposed convolution ("deconvolution"): the adjoint of conv2d(., w) with the same
    arguments, <conv2d(z, w), x> == <z, conv_transpose2d(x, w)>; it maps conv2d's output shape
    back to its input shape (upsampling by the stride).

    y[n, i*sH + u*dH - pH0, j*sW + v*dW - pW0, c] += x[n, i, j, f] * w[u, v, c, f]

    x: (N, H, W, C_out); w: (kH, kW, C_in/groups, C_out), the kernel of the convolution being
    transposed; b: (C_in,) = (w.shape[-2]*groups,) or None.
    Returns (N, H_out, W_out, C_in), H_out = (H - 1)*sH - pH0 - pH1 + dH*(kH-1) + 1
    + output_padding ('same': H*sH), W_out likewise.

    >>> conv_transpose2d(np.zeros((2, 4, 4, 16)), np.zeros((3, 3, 3, 16)), stride=2,
    ...                  padding="same").shape
    (2, 8, 8, 3)
    """
    return _conv_transpose("conv_transpose2d", 2, x, w, b, stride, padding, output_padding,
                           dilation, groups)


def conv_transpose3d(x, w, b=None, stride=1, padding="valid", output_padding=None, dilation=1,
                     groups=1) -> Tensor:
    """3-D transposed convolution: the adjoint of conv3d(., w) with the same arguments.

    y[n, t*sD + r*dD - pD0, i*sH + u*dH - pH0, j*sW + v*dW - pW0, c] += x[n, t, i, j, f]
    * w[r, u, v, c, f]

    x: (N, D, H, W, C_out); w: (kD, kH, kW, C_in/groups, C_out); b: (C_in,) or None.
    Returns (N, D_out, H_out, W_out, C_in), each X = (I - 1)*s - p0 - p1 + d*(k-1) + 1
    + output_padding ('same': I*s).

    >>> conv_transpose3d(np.zeros((1, 2, 4, 4, 8)), np.zeros((2, 2, 2, 4, 8)), stride=2).shape
    (1, 4, 8, 8, 4)
    """
    return _conv_transpose("conv_transpose3d", 3, x, w, b, stride, padding, output_padding,
                           dilation, groups)


def _locally_connected(op, n, x, w, b, stride, padding, dilation) -> Tensor:
    x, w = as_tensor(x), as_tensor(w)
    x_layout = _LAYOUTS[n][0]
    w_layout = "(L_out, kL, C_in, C_out)" if n == 1 else "(H_out, W_out, kH, kW, C_in, C_out)"
    if x.ndim != n + 2:
        raise ValueError(f"{op}: x must be {n + 2}-D {x_layout}, got shape {x.shape}")
    if w.ndim != 2 * n + 2:
        raise ValueError(f"{op}: w must be {2 * n + 2}-D {w_layout}, got shape {w.shape}")
    if x.shape[-1] != w.shape[-2]:
        raise ValueError(
            f"{op}: input has {x.shape[-1]} channels but the kernel expects {w.shape[-2]} "
            f"(input shape {x.shape}, kernel shape {w.shape})"
        )
    g = _geometry(op, n, x.shape[1:-1], w.shape[n:2 * n], stride, padding, dilation)
    if w.shape[:n] != g.out_size:
        raise ValueError(
            f"{op}: w has kernels for {w.shape[:n]} output positions but the input gives "
            f"{g.out_size} (input shape {x.shape}, kernel shape {w.shape})"
        )
    if w.dtype != x.dtype:
        w = w.astype(x.dtype)
    b = _check_bias(op, b, (*g.out_size, w.shape[-1]), x.dtype,
                    "one per output position and channel")
    return LocallyConnected.apply(x, w, b, geometry=g)


def locally_connected1d(x, w, b=None, stride=1, padding="valid", dilation=1) -> Tensor:
    """1-D locally connected layer: a convolution whose weights are not shared, one kernel per
    output position.

    y[n, i, f] = b[i, f] + sum_{u,c} w[i, u, c, f] * xp[n, i*s + u*d, c]

    x: (N, L, C_in); w: (L_out, kL, C_in, C_out); b: (L_out, C_out) or None.
    Returns (N, L_out, C_out), L_out = floor((L + p0 + p1 - d*(kL-1) - 1) / s) + 1.

    >>> locally_connected1d(np.zeros((2, 10, 3)), np.zeros((8, 3, 3, 4))).shape
    (2, 8, 4)
    """
    return _locally_connected("locally_connected1d", 1, x, w, b, stride, padding, dilation)


def locally_connected2d(x, w, b=None, stride=1, padding="valid", dilation=1) -> Tensor:
    """2-D locally connected layer: a convolution whose weights are not shared, one kernel per
    output position (DeepFace's unshared layers).

    y[n, i, j, f] = b[i, j, f] + sum_{u,v,c} w[i, j, u, v, c, f] * xp[n, i*sH + u*dH,
    j*sW + v*dW, c]

    x: (N, H, W, C_in); w: (H_out, W_out, kH, kW, C_in, C_out); b: (H_out, W_out, C_out) or
    None. Returns (N, H_out, W_out, C_out), sizes as in conv2d.

    >>> locally_connected2d(np.zeros((2, 6, 6, 3)), np.zeros((4, 4, 3, 3, 3, 5))).shape
    (2, 4, 4, 5)
    """
    return _locally_connected("locally_connected2d", 2, x, w, b, stride, padding, dilation)


def toeplitz(w, input_shape: Sequence[int], stride=1, padding="valid", dilation=1,
             flip=False) -> np.ndarray:
    """The matrix M of a convolution without bias: conv(x[None], w).ravel() == M @ x.ravel().

    Convolution is a linear map, hence a matrix: in 1-D each row is the kernel shifted one step
    (stride) to the right of the row above, a Toeplitz matrix; in 2-D it is made of blocks that
    are themselves Toeplitz, the doubly block circulant matrix of Goodfellow et al. ch. 9 (without
    the wrap-around). Almost every entry is zero: an explicit, not a fast, view.

    w: (kL, C_in, C_out) or (kH, kW, C_in, C_out); input_shape: (L, C_in) or (H, W, C_in).
    Returns an ndarray (prod(out)*C_out, prod(input_shape)), rows and columns in channels-last
    order; not differentiable.

    >>> toeplitz(np.array([-1.0, 2.0, 1.0]).reshape(3, 1, 1), (5, 1)).astype(int)
    array([[-1,  2,  1,  0,  0],
           [ 0, -1,  2,  1,  0],
           [ 0,  0, -1,  2,  1]])
    """
    op = "toeplitz"
    w = w.data if isinstance(w, Tensor) else np.asarray(w)
    if not np.issubdtype(w.dtype, np.floating):
        w = w.astype(np.float32)
    n = w.ndim - 2
    if n not in (1, 2, 3):
        raise ValueError(f"{op}: w must be 3-D (kL, C_in, C_out) or 4-D (kH, kW, C_in, C_out), "
                         f"got shape {w.shape}")
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != n + 1 or input_shape[-1] != w.shape[-2]:
        raise ValueError(
            f"{op}: input_shape must be (*spatial, C_in) with {n} spatial sizes and C_in="
            f"{w.shape[-2]} for kernel shape {w.shape}, got {input_shape}"
        )
    g = _geometry(op, n, input_shape[:-1], w.shape[:n], stride, padding, dilation)
    if flip:
        w = _flip(w, n)
    # The patches of an image holding its own flat index (from 1; 0 marks padding) say which
    # input each (output position, tap, channel) reads: row p of M takes w[tap, c] there.
    index = np.arange(1, math.prod(input_shape) + 1).reshape(1, *input_shape[:-1], 1, -1)
    cols = np.zeros((1, *g.out_size, 1, *g.kernel, input_shape[-1]), dtype=index.dtype)
    _im2col(index, g, cols)
    cols = cols.reshape(math.prod(g.out_size), math.prod(g.kernel), input_shape[-1])
    position, tap, channel = np.nonzero(cols)
    m = np.zeros((cols.shape[0], w.shape[-1], math.prod(input_shape)), dtype=w.dtype)
    m[position, :, cols[position, tap, channel] - 1] = w.reshape(-1, *w.shape[-2:])[tap, channel]
    return m.reshape(-1, m.shape[-1])
