"""Banded kernels: a convolution as one over its other axes whose "channels" are whole rows.

Computes `striate.reference.conv.conv` for 2-D and 3-D kernels without groups. Along the last
axis a convolution is a product with a banded (Toeplitz) matrix (`striate.functional.toeplitz`
in 1-D), so the convolution is one over the other axes whose "channels" are whole input rows
(W_in*C_in values) and whose kernel maps them to output rows (W_out*C_out values). Its patches
are kW times smaller and its products wider, for W_in/kW times the multiply-adds; its gradients
are that convolution's, dw summed back out of the band (`band_weights`). Wins for a few filters
on narrow images with few channels (LeNet's C1 1.4x faster than im2col, forward+backward;
`table.py`). The smaller convolution runs through the table again (`conv`, passed in).
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import Geometry, taps


def lead(g: Geometry) -> Geometry:
    """g without its last axis: the geometry of the kernel's rows (`band_kernel`)."""
    return Geometry(*(field[:-1] for field in g))


def as_rows(a: np.ndarray) -> np.ndarray:
    """(N, *lead, W, C) -> (N, *lead, W*C): each row along the last axis as one vector."""
    return a.reshape(*a.shape[:-2], -1)


def trailing(g: Geometry, axes: int) -> Geometry:
    """g on its last `axes` axes only."""
    return Geometry(*(field[-axes:] for field in g))


def diagonals(t: np.ndarray, g: Geometry, axes: int):
    """For each tap v of g's last `axes` axes that reads the input: v, and the entries of a
    banded kernel t (K', *in, C_in, *out, C_out), contiguous, over those axes that hold its
    weights, as a view (K', *O_v, C_in, C_out): t[r, j*s + v*d - p0, :, j] for every output j
    the tap feeds (O_v of them along each axis; K': the taps of the other axes)."""
    position, column = t.strides[1:1 + axes], t.strides[2 + axes:2 + 2 * axes]
    for tap in taps(trailing(g, axes))[0]:
        first = sum(sl.start * p for sl, p in zip(tap.inp, position, strict=True)) + sum(
            sl.start * c for sl, c in zip(tap.out, column, strict=True))
        shape = (t.shape[0], *(sl.stop - sl.start for sl in tap.out), t.shape[1 + axes],
                 t.shape[-1])
        strides = (t.strides[0], *(sl.step * p + c for sl, p, c in zip(tap.inp, position, column,
                                                                        strict=True)),
                   t.strides[1 + axes], t.strides[-1])
        yield tap.offset, np.ndarray(shape, t.dtype, t, first, strides)


def band_layout(g: Geometry, c_in: int, c_out: int, axes: int) -> tuple[int, ...]:
    """(K', *in, C_in, *out, C_out): a banded kernel over g's last `axes` axes."""
    return (math.prod(g.kernel[:-axes]), *g.in_size[-axes:], c_in, *g.out_size[-axes:], c_out)


def band_shape(g: Geometry, c_in: int, c_out: int, axes: int = 1) -> tuple[int, ...]:
    """(*k', prod(in)*C_in, prod(out)*C_out): `band_kernel`'s shape, the kernel of the
    convolution over the other axes (k': the kernel on those axes)."""
    return (*g.kernel[:-axes], math.prod(g.in_size[-axes:]) * c_in,
            math.prod(g.out_size[-axes:]) * c_out)


def band_kernel(w: np.ndarray, g: Geometry, axes: int = 1) -> np.ndarray:
    """w (*k, C_in, C_out) as the kernel of a convolution over the other axes, whose
    "channels" are whole input rows over the last `axes` axes: (*k', prod(in)*C_in,
    prod(out)*C_out), where row r maps those inputs to their share of the outputs,
    y[j, f] += sum_{v,c} x[j*s + v*d - p0, c] * w[r, v, c, f]: a banded (Toeplitz) matrix, the
    convolution along those axes (`toeplitz`). Over every axis (axes = len(k)) it is the whole
    matrix of the convolution, (prod(in)*C_in, prod(out)*C_out). Taps that would read padding
    have no entries."""
    t = np.zeros(band_layout(g, *w.shape[-2:], axes), dtype=w.dtype)
    taps = w.reshape(t.shape[0], *w.shape[-2 - axes:])  # (K', *k, C_in, C_out)
    for offset, diagonal in diagonals(t, g, axes):
        diagonal[...] = taps[(slice(None), *offset, *(None,) * axes)]
    return t.reshape(band_shape(g, *w.shape[-2:], axes))


def band_weights(dt: np.ndarray, g: Geometry, w_shape, axes: int = 1) -> np.ndarray:
    """The gradient of w from that of its banded kernel (the adjoint of `band_kernel`): each
    weight's share summed over the outputs j that hold it."""
    t = np.ascontiguousarray(dt).reshape(band_layout(g, *w_shape[-2:], axes))
    dw = np.zeros((t.shape[0], *w_shape[-2 - axes:]), dtype=dt.dtype)  # (K', *k, C_in, C_out)
    for offset, diagonal in diagonals(t, g, axes):
        dw[(slice(None), *offset)] = diagonal.sum(axis=tuple(range(1, 1 + axes)))
    return dw.reshape(w_shape)


def forward(x: np.ndarray, w: np.ndarray, g: Geometry, conv) -> np.ndarray:
    """y (N, *out, C_out): the convolution over the leading axes of x's rows with the banded
    kernel; conv(x, w, g, groups) runs that convolution."""
    y = conv(as_rows(x), band_kernel(w, g), lead(g), 1)
    return y.reshape(x.shape[0], *g.out_size, w.shape[-1])


def backward(dy, x, w, g: Geometry, x_shape, w_shape, need_dx, need_dw, conv_backward):
    """(dx, dw): the gradients of the banded convolution (conv_backward runs them), dw summed
    back out of the band."""
    n, c_in, c_out = x_shape[0], x_shape[-1], w_shape[-1]
    t = band_kernel(w, g) if need_dx else None
    t_shape = band_shape(g, c_in, c_out)
    dx, dt = conv_backward(as_rows(dy), None if x is None else as_rows(x), t, lead(g), 1,
                           (n, *x_shape[1:-2], t_shape[-2]), t_shape, need_dx, need_dw)
    return (None if dx is None else dx.reshape(x_shape),
            None if dt is None else band_weights(dt, g, w_shape))
