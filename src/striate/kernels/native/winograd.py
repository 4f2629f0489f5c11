"""Winograd F(2x2, 3x3)'s tile transforms: the wrappers of the compiled passes that
`striate.kernels.conv.winograd` runs around its 16 products where the compiled kernels are
allowed (the same numbers as its NumPy passes, to the bit)."""

from __future__ import annotations

import numpy as np

from .boundary import _DTYPES, _array, _native, _need, _output, _rows, _shape


def _tiles(op: str, name: str, a: np.ndarray, dtype) -> tuple[int, int, int, int]:
    """(n, h, tw, C) of a (4, 4, n, h, tw, C) array of tile transforms."""
    a = _array(op, name, a, dtype, ndim=6)
    if a.shape[:2] != (4, 4):
        raise ValueError(f"{op}: {name} must have shape (4, 4, n, h, tw, C), got {a.shape}")
    return a.shape[2:]


def _check_images(op: str, name: str, y: np.ndarray, dtype, tiles) -> tuple:
    """(n, h, tw, C, oh, ow): y (n, oh, ow, C) holds the outputs of the tiles, its last row and
    column of tiles perhaps cut by the edge."""
    n, h, tw, c = tiles
    _array(op, name, y, dtype, ndim=4)
    oh, ow = y.shape[1:3]
    if y.shape[0] != n or y.shape[3] != c or not (2 * h - 1 <= oh <= 2 * h) or \
            not (2 * tw - 1 <= ow <= 2 * tw):
        raise ValueError(f"{op}: {name} of shape {y.shape} does not hold the outputs of "
                         f"{n} images of {h}x{tw} tiles on {c} channels")
    return n, h, tw, c, oh, ow


def winograd_input(xp: np.ndarray, out: np.ndarray) -> np.ndarray:
    """V = B^T d B for every 4x4 window d at (2r, 2q) of xp (n, 2h + 2, 2tw + 2, C), the
    zero-padded input of n images of h x tw tiles, into out (4, 4, n, h, tw, C)."""
    op = "native.winograd_input"
    _need()
    xp = _array(op, "xp", xp, ndim=4)
    n, h, tw, c = _tiles(op, "out", out, xp.dtype)
    _shape(op, "xp", xp, (n, 2 * h + 2, 2 * tw + 2, c))
    _output(op, "out", out, out.shape, xp.dtype, (xp,))
    _native.winograd_input(_DTYPES[xp.dtype], xp, out, (n, h, tw, c, 2 * h, 2 * tw),
                           *_rows(n * h, out.size))
    return out


def winograd_output(m: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y = A^T M A for every tile of m (4, 4, n, h, tw, C), into y (n, oh, ow, C) (oh = 2h, or
    2h - 1 where the last row of tiles is cut by the edge; ow likewise)."""
    op = "native.winograd_output"
    _need()
    geo = _check_images(op, "y", y, m.dtype, _tiles(op, "m", m, None))
    _output(op, "y", y, y.shape, m.dtype, (m,))
    _native.winograd_output(_DTYPES[m.dtype], m, y, geo, *_rows(geo[0] * geo[1], m.size))
    return y


def winograd_output_grad(dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dM = A dY A^T for every tile's 2x2 outputs dY of dy (n, oh, ow, C) (outputs past the
    edge as zeros), into out (4, 4, n, h, tw, C): the adjoint of `winograd_output`."""
    op = "native.winograd_output_grad"
    _need()
    geo = _check_images(op, "dy", dy, out.dtype, _tiles(op, "out", out, None))
    _output(op, "out", out, out.shape, dy.dtype, (dy,))
    _native.winograd_output_grad(_DTYPES[dy.dtype], dy, out, geo,
                                 *_rows(geo[0] * geo[1], out.size))
    return out
