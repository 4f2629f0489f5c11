"""Depthwise convolution: one group per input channel, as multiply-adds of shifted slices.

Computes `striate.reference.conv.conv` for groups == C_in (MobileNet, EfficientNet). Patches
would be K times larger than the work they save (each output reads K values of one channel),
so each tap multiplies the slice of x it reads by its weights and adds it to the output, the
batch split over the shared thread pool in cache-sized blocks.
"""

from __future__ import annotations

import numpy as np

from ... import _parallel
from .geometry import Geometry, Tap, split_groups, sum_shares, taps

# Samples per block of the passes: each tap's pass re-reads the block's output.
BLOCK_BYTES = 2 << 20


def full_tap_first(g: Geometry) -> tuple[list[Tap], bool]:
    """The taps with one that covers every output first (it can initialise the result), if any
    does, and whether it does."""
    every = list(taps(g)[0])
    full = [i for i, t in enumerate(every)
            if all(sl.start == 0 and sl.stop == o for sl, o in zip(t.out, g.out_size,
                                                                   strict=True))]
    if full:
        every.insert(0, every.pop(full[0]))
    return every, bool(full)


def forward(x, w, g: Geometry, y) -> None:
    """y[..., c*m + j] = sum over taps of x[tap slice][..., c] * w[tap, 0, c*m + j]: a
    multiply-add of shifted slices per tap (m = C_out / C_in filters per channel), the batch
    split over the threads."""
    c = x.shape[-1]
    ym = split_groups(y, c)  # (N, *out, C_in, m)
    wm = split_groups(w[..., 0, :], c)  # (*k, C_in, m)
    taps, first_full = full_tap_first(g)
    every = (slice(None),)

    def run(rows):
        product = None
        for block in _parallel.blocks(rows, y[0].nbytes, BLOCK_BYTES):
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


def backward(dy, x, w, g: Geometry, c_in: int, dx, need_dw):
    """Add the input gradient into dx (when given) and return dw (when needed) of the depthwise
    convolution, tap by tap: dx[tap slice][..., c] += sum_j dy[..., c, j] * w[tap, 0, c*m + j]
    and dw[tap, 0, c*m + j] = sum over positions of x[tap slice][..., c] * dy[..., c, j].
    The batch is split over the threads; each returns its share of dw."""
    dym = split_groups(dy, c_in)  # (N, *out, C_in, m)
    m = dym.shape[-1]
    wm = split_groups(w[..., 0, :], c_in) if dx is not None else None  # (*k, C_in, m)
    every = (slice(None),)
    lead = "nxyz"[: dy.ndim - 1]  # the batch and spatial axes, summed over for dw

    def run(rows):
        dw = np.zeros((*g.kernel, c_in, m), dtype=dy.dtype) if need_dw else None
        product = None
        for block in _parallel.blocks(rows, dy[0].nbytes, BLOCK_BYTES):
            d_rows = dym[block]
            if dx is not None and (product is None or product.shape[0] != d_rows.shape[0]):
                product = np.empty(d_rows.shape[:-1], dtype=dy.dtype)
            for tap in taps(g)[0]:
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

    parts = _parallel.over_batch(run, dy.shape[0], dy.size * len(taps(g)[0]))
    return sum_shares(parts).reshape(*g.kernel, 1, -1) if need_dw else None
