"""Winograd's minimal filtering F(2x2, 3x3): 3x3 convolutions at stride 1 with 2.25x fewer
multiply-adds than im2col (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
2016). Computes `striate.reference.conv.conv` for 2-D 3x3 kernels at stride 1 without dilation
or groups, padded by at most 2.

A 2x2 tile of outputs is Y = A^T [(G w G^T) * (B^T d B)] A, with d the 4x4 tile of the input
that covers it and * elementwise for each channel pair: 16 multiplies where the patches take
36. Summed over the input channels, each of the 16 elements is one product (tiles, C_in) @
(C_in, C_out). B^T and A^T hold only 0 and +-1, so the tile transforms are adds and
subtractions, one row of the matrix per pass (in C where the compiled kernels are there,
`native.winograd_*`: one pass over each tile, the same numbers); G (halves) transforms the
kernel once per call:

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
    G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]

Its dx is such a convolution of dy (the adjoint geometry, padded by 2 - p), its dw the adjoint
of the products (V^T @ dM per element, then back through the kernel's transform). Wins on 64
channels and more with many tiles: forward+backward 1.1-1.5x faster than im2col on 64-512
channels at batch 16-64, 0.6-0.9x on 32 channels (`table.py`; docs/algorithms/winograd.md).
"""

from __future__ import annotations

import numpy as np

from ... import _parallel
from .. import native, switch
from .geometry import Geometry, row_band, split_groups, sum_shares
from .scratch import Buffers

# Transformed tiles (16 values per tile and channel) per piece: still in cache for the products.
TILE_BYTES = 2 << 20


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


def kernel_transform(w: np.ndarray) -> np.ndarray:
    """U = G w G^T for each channel pair: (3, 3, C_in, C_out) -> (16, C_in, C_out)."""
    gw = np.empty((4, *w.shape[1:]), dtype=w.dtype)  # G w
    _g_rows(w, gw)
    u = np.empty((4, 4, *w.shape[2:]), dtype=w.dtype)
    _g_rows(gw.swapaxes(0, 1), u.swapaxes(0, 1))
    return u.reshape(16, *w.shape[2:])


def weight_transform(du: np.ndarray) -> np.ndarray:
    """dw = G^T dU G, the adjoint of `kernel_transform`: (16, C_in, C_out) -> (3, 3, C_in,
    C_out)."""
    du = du.reshape(4, 4, *du.shape[1:])
    gt_du = np.empty((3, *du.shape[1:]), dtype=du.dtype)  # G^T dU
    _gt_rows(du, gt_du)
    dw = np.empty((3, 3, *du.shape[2:]), dtype=du.dtype)
    _gt_rows(gt_du.swapaxes(0, 1), dw.swapaxes(0, 1))
    return dw


def tile_geometry(g: Geometry) -> Geometry:
    """g with its output rounded up to whole 2x2 tiles: an extra row or column of outputs,
    read from one more row or column of end padding (zeros), which no output keeps."""
    odd = [o % 2 for o in g.out_size]
    return g._replace(out_size=tuple(o + e for o, e in zip(g.out_size, odd, strict=True)),
                      pads=tuple((p0, p1 + e) for (p0, p1), e in zip(g.pads, odd, strict=True)))


def winograd_shares(fn, g: Geometry, n: int, channels: int) -> list:
    """fn(pieces) for each thread's share of the work, each thread on one BLAS thread; the
    results, one per share. The pieces (samples, tile rows) hold transformed tiles on
    `channels` channels that fit `TILE_BYTES`: several samples when a sample's fit, else
    bands of one sample's tile rows (also when there are fewer samples than threads).
    g: the `tile_geometry`."""
    th, tw = (o // 2 for o in g.out_size)
    row_bytes = 16 * tw * channels * 4  # a row of tiles' transforms in float32
    height = max(1, min(TILE_BYTES // row_bytes, th))
    if n < _parallel.THREADS:
        height = min(height, -(-th // _parallel.THREADS))
    if height < th:
        pieces = [(slice(i, i + 1), slice(r, min(r + height, th)))
                  for i in range(n) for r in range(0, th, height)]
    else:
        step = max(1, min(TILE_BYTES // (row_bytes * th), -(-n // _parallel.THREADS)))
        pieces = [(slice(i, min(i + step, n)), slice(0, th)) for i in range(0, n, step)]
    shares = [pieces[s] for s in _parallel.batch_slices(len(pieces), _parallel.THREADS)]
    if len(shares) == 1:
        return [fn(shares[0])]
    with _parallel.one_blas_thread():
        return _parallel.run_all(fn, shares)


def _compiled(*arrays: np.ndarray) -> bool:
    """The compiled transforms run: built, allowed (not under `kernels.use("numpy")`), and the
    arrays contiguous."""
    return (native.available and switch.compiled_allowed()
            and all(a.flags.c_contiguous for a in arrays))


def _winograd_input(x: np.ndarray, g: Geometry, batch: slice, rows: slice,
                    scratch: Buffers) -> np.ndarray:
    """V = B^T d B for the tiles in tile rows `rows` of samples `batch` of x (N, *in, C):
    (16, n*h*w', C), h tile rows of w' tiles each; g: the `tile_geometry`. The piece of x is
    zero-padded first (`Buffers.padded`): the 2h + 2 rows and 2w' + 2 columns its tiles
    cover."""
    h, tw, c = rows.stop - rows.start, g.out_size[1] // 2, x.shape[-1]
    piece, inp = row_band(g, 2 * rows.start, 2 * rows.stop)
    xp = scratch.padded(split_groups(x[batch, inp], 1), piece)[0][..., 0, :]
    n = xp.shape[0]
    if _compiled(xp):
        v = scratch.reuse("tiles", (4, 4, n, h, tw, c))
        return native.winograd_input(xp, v).reshape(16, -1, c)
    t = scratch.reuse("rows", (4, n, h, 2 * tw + 2, c))  # B^T d
    _bt_rows([xp[:, r:r + 2 * h:2] for r in range(4)], t)  # row r of every tile
    v = scratch.reuse("tiles", (4, 4, n, h, tw, c))  # (B^T d) B
    _bt_rows([t[..., j:j + 2 * tw:2, :] for j in range(4)], v.swapaxes(0, 1))  # column j
    return v.reshape(16, -1, c)


def _winograd_output(m: np.ndarray, y: np.ndarray, scratch: Buffers) -> None:
    """y = A^T M A for every tile, m (4, 4, n, h, w', C_out): into y (n, 2h or 2h - 1, 2w' or
    2w' - 1, C_out), whose last row and column of tiles may be cut by the output's edge."""
    if _compiled(m, y):
        native.winograd_output(m, y)
        return
    s = scratch.reuse("sums", (2, *m.shape[1:]))  # A^T M
    _at_rows(m, s)
    for r in range(2):  # output row r of every tile, its two columns
        _at_rows(s[r], (y[:, r::2, 0::2], y[:, r::2, 1::2]))


def forward(x: np.ndarray, w: np.ndarray, g: Geometry, y: np.ndarray,
            finish=None) -> None:
    """y (N, *out, C_out) of the 3x3 convolution of x (N, *in, C_in) with w by F(2x2, 3x3),
    piece by piece: transform the input tiles, 16 products with U, transform back, then
    finish that piece of y if given."""
    c_in, c_out = w.shape[-2:]
    u = kernel_transform(w)
    oh, gt = g.out_size[0], tile_geometry(g)

    def run(pieces):
        scratch = Buffers(x.shape, 1, x.dtype)
        for batch, rows in pieces:
            v = _winograd_input(x, gt, batch, rows, scratch)
            m = scratch.reuse("products", (16, v.shape[1], c_out))
            np.matmul(v, u, out=m)
            shape = (4, 4, batch.stop - batch.start, rows.stop - rows.start, -1, c_out)
            out = (batch, slice(2 * rows.start, min(2 * rows.stop, oh)))
            _winograd_output(m.reshape(shape), y[out], scratch)
            if finish is not None:
                finish(y, y, out)

    winograd_shares(run, gt, x.shape[0], max(c_in, c_out))


def _winograd_output_grad(dy: np.ndarray, batch: slice, rows: slice, tw: int,
                          scratch: Buffers) -> np.ndarray:
    """dM = A dY A^T for the output tiles in tile rows `rows` of samples `batch` of dy (N, *out,
    C_out), the adjoint of `_winograd_output` (outputs past the edge count as zeros):
    (16, n*h*w', C_out). A = [[1, 0], [1, 1], [1, -1], [0, -1]]."""
    nb, h, c = batch.stop - batch.start, rows.stop - rows.start, dy.shape[-1]
    dyp = part = dy[batch, 2 * rows.start:2 * rows.stop]
    if _compiled(part):
        dm = scratch.reuse("tiles_dy", (4, 4, nb, h, tw, c))
        return native.winograd_output_grad(part, dm).reshape(16, -1, c)
    if part.shape[1:3] != (2 * h, 2 * tw):  # tiles cut by the edge: their outside as zeros
        dyp = scratch.reuse("padded_dy", (nb, 2 * h, 2 * tw, c))
        dyp.fill(0)
        dyp[:, :part.shape[1], :part.shape[2]] = part
    q = scratch.reuse("rows_dy", (4, nb, h, 2 * tw, c))  # A dY
    _a_rows((dyp[:, 0::2], dyp[:, 1::2]), q)  # output row 0 and 1 of every tile
    dm = scratch.reuse("tiles_dy", (4, 4, nb, h, tw, c))  # (A dY) A^T
    _a_rows((q[..., 0::2, :], q[..., 1::2, :]), dm.swapaxes(0, 1))  # column 0 and 1
    return dm.reshape(16, -1, c)


def weight_grad(dy: np.ndarray, x: np.ndarray, g: Geometry) -> np.ndarray:
    """dw (3, 3, C_in, C_out) of `winograd_forward`: dU = sum over tiles of V^T dM (16
    products, V the input tiles rebuilt piece by piece), then dw = G^T dU G."""
    c_in, c_out = x.shape[-1], dy.shape[-1]
    gt = tile_geometry(g)
    dy = np.ascontiguousarray(dy)  # pieces of it go to the compiled transform

    def run(pieces):
        scratch = Buffers(x.shape, 1, x.dtype)
        du, product = np.zeros((2, 16, c_in, c_out), dtype=x.dtype)
        for batch, rows in pieces:
            v = _winograd_input(x, gt, batch, rows, scratch)
            dm = _winograd_output_grad(dy, batch, rows, gt.out_size[1] // 2, scratch)
            np.matmul(v.transpose(0, 2, 1), dm, out=product)
            du += product
        return du

    return weight_transform(sum_shares(winograd_shares(run, gt, x.shape[0], max(c_in, c_out))))
