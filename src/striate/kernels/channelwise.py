"""Per-channel passes over channels-last arrays: the fused finishing pass that follows a
convolution or a batch norm, out = max(0, x * scale + shift + residual), and the ReLU.

They compute what `striate.reference` writes as separate steps (`reference.activation.relu`, a
per-channel scale and shift broadcast over (..., C), an add), in one pass over memory, along
rows of W*C values, block by block over the shared thread pool. Under
`kernels.use("reference")` they run as those plain NumPy steps.
"""

from __future__ import annotations

import functools

import numpy as np

from .._parallel import by_blocks
from ..reference import activation as reference
from . import native, switch

ZEROS = 1 << 16  # elements compared per call of `rectify`: 256 KiB of float32 stays in L2


@functools.cache
def _zeros(dtype: np.dtype) -> np.ndarray:
    zeros = np.zeros(ZEROS, dtype=dtype)
    zeros.flags.writeable = False
    return zeros


def rectify(a: np.ndarray, out: np.ndarray) -> None:
    """out = max(0, a) (NaN stays NaN), a and out of one shape, out C-contiguous; the ReLU of
    every op that applies one. NumPy's maximum against a scalar runs a loop without SIMD: on
    (3136, 256) float32 it measured 0.30 ms, against an array of zeros 0.12 ms, so a zero
    array of `ZEROS` elements is compared with a's flat chunks."""
    assert out.flags.c_contiguous  # so that its flat reshape is a view
    flat, flat_out = a.reshape(-1), out.reshape(-1)
    zeros = _zeros(out.dtype)
    for start in range(0, flat.size, ZEROS):
        chunk = slice(start, start + ZEROS)
        np.maximum(flat[chunk], zeros[: flat.size - start], out=flat_out[chunk])


def channel_rows(a: np.ndarray, *vectors):
    """a (..., W, C), channels-last, as rows of W*C values (a view when a is C-contiguous), and
    each per-channel vector (C,) repeated W times to match (None stays None); a 2-D a (N, C)
    stays as it is. A per-channel map then runs along whole rows: NumPy restarts its loop over
    a broadcast vector every C values, and on (56*56, 256) float32 a multiply measured 1.4x
    slower that way, on LeNet-5's 6 channels 3-5x. For the per-channel passes of batch norm and
    a convolution's bias."""
    k = a.shape[-2] if a.ndim >= 3 else 1
    return (a.reshape(-1, k * a.shape[-1]),  # (np.tile: 5x slower on a small vector)
            *(None if v is None else v[np.newaxis].repeat(k, 0).reshape(-1) for v in vectors))


class ChannelMap:
    """out = max(0, x * scale + shift + residual) for channels-last arrays (..., C): per-channel
    scale and shift (C,) (None: 1 and 0), a residual shaped like out (None: none), the maximum
    only if relu. The finishing pass of a convolution (its bias, and in evaluation the batch
    norm that follows it) and of a batch norm, along rows of W*C values (`channel_rows`).

    `map(x, out, index)` maps one piece, out[index], while it is in cache (a convolution calls
    it on each piece of its output right after that piece's product); `map.over(x, out)` maps
    all of out, block by block over the threads (`by_blocks`), `map.new(x)` into a new array.
    x may be out itself (in place).
    """

    def __init__(self, scale=None, shift=None, residual=None, relu: bool = False):
        self.scale, self.shift, self.residual, self.relu = scale, shift, residual, relu
        self._tiled: dict[int, tuple] = {}  # scale and shift repeated k times, by k

    def __call__(self, x: np.ndarray, out: np.ndarray, index=Ellipsis) -> None:
        """out[index] = the map of x[index]; index: slices of the leading axes along which
        out[index] is C-contiguous (a batch, a band of rows)."""
        residual = None if self.residual is None else self.residual[index]
        if not self._compiled(x[index], out[index], residual):
            self._rows(x[index], out[index], residual, x is out)

    def _compiled(self, x, out, residual) -> bool:
        """The map by the compiled pass (`native.channel_map`), where it is there and every
        array is contiguous; whether it ran."""
        if not (native.available and switch.compiled_allowed() and x.flags.c_contiguous
                and out.flags.c_contiguous
                and (residual is None or residual.flags.c_contiguous)):
            return False
        native.channel_map(x, self.scale, self.shift, residual, self.relu, out=out)
        return True

    def new(self, x: np.ndarray) -> np.ndarray:
        """A new array: the map of x."""
        out = np.empty(x.shape, dtype=x.dtype)
        self.over(x, out)
        return out

    def over(self, x: np.ndarray, out: np.ndarray) -> None:
        """All of out (C-contiguous) = the map of x."""
        if switch.reference():
            out[...] = self.plain(x)
            return
        if self._compiled(x, out, self.residual):
            return
        def lead(a):  # (..., W, C) -> (M, W, C): blocks of whole rows along the first axis
            return a.reshape(-1, *a.shape[-2:]) if a.ndim >= 3 else a

        xs, outs = lead(x), lead(out)
        res = None if self.residual is None else lead(self.residual)
        by_blocks(lambda block: self._rows(xs[block], outs[block],
                                           None if res is None else res[block], x is out),
                  outs)

    def plain(self, x: np.ndarray) -> np.ndarray:
        """The map as the definitions write it, one step at a time (a new array)."""
        y = x if self.scale is None else x * self.scale
        y = y if self.shift is None else y + self.shift
        y = y if self.residual is None else y + self.residual
        return reference.relu(y) if self.relu else np.array(y)

    def _rows(self, x, out, residual, in_place: bool) -> None:
        k = out.shape[-2] if out.ndim >= 3 else 1
        tiled = self._tiled.get(k)
        if tiled is None:  # two threads may both make it: the same values either way
            tiled = self._tiled[k] = channel_rows(out[:0], self.scale, self.shift)[1:]
        scale, shift = tiled
        rows = out.reshape(-1, k * out.shape[-1])
        if scale is not None:
            np.multiply(x.reshape(rows.shape), scale, out=rows)
        elif not in_place:
            np.copyto(rows, x.reshape(rows.shape))
        if shift is not None:
            rows += shift
        if residual is not None:
            rows += residual.reshape(rows.shape)
        if self.relu:
            rectify(rows, rows)


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x) in a new C-contiguous array, block by block over the threads (`rectify`)."""
    if switch.reference():
        return reference.relu(x)
    if native.available and switch.compiled_allowed() and x.flags.c_contiguous and x.ndim:
        return native.channel_map(x, relu=True)
    y = np.empty(x.shape, dtype=x.dtype)
    by_blocks(lambda rows: rectify(x[rows], y[rows]), x)
    return y


def relu_gradient(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dy where the ReLU's output y > 0, else 0 (y and dy of one shape), block by block over
    the threads (`by_blocks`): the backward of ReLU, also where a batch norm applies it. (The
    definition's relu_dx(dy, x) tests x > 0: the same places.)"""
    if switch.reference():
        return reference.relu_dx(dy, y)
    dx = np.empty_like(y, dtype=dy.dtype)
    by_blocks(lambda rows: np.multiply(dy[rows], y[rows] > 0, out=dx[rows]), dx)
    return dx
