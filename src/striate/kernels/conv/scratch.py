"""Scratch memory for the convolution kernels: patch buffers, zero-padded inputs and other
work arrays, carved out of one block per thread that outlives the call.

Fresh memory on every call measured slower than the copies into it (a page fault per 4 KiB,
~3 us each on the development machine), so each thread keeps its block from call to call.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .geometry import Geometry, taps


def tap_major(g: Geometry, c_in_g: int) -> bool:
    """Whether the patches are copied tap-major (`im2col_taps`): when a patch row holds fewer
    values than an output row, as in a first layer on one or three channels (LeNet's C1: rows
    of 5 values against 28; the patch-major copy measured 4x slower there)."""
    row = (g.kernel[-1] if g.dilation[-1] == 1 else 1) * c_in_g
    return 2 * row <= g.out_size[-1]


_scratch = threading.local()  # each thread's scratch memory, kept from call to call


class Buffers:
    """The patch buffers of one call's pieces, one per (unpadded) geometry and piece size, laid
    out for `im2col` or `im2col_taps`, padded inputs and other scratch arrays: all carved out
    of the calling thread's scratch memory, which outlives the call. Fresh memory on every call
    measured slower than the copies into it (a page fault per 4 KiB: ~3 us each on the
    development machine). Arrays from here must not outlive the call; one call per thread at a
    time."""

    def __init__(self, x_shape: tuple[int, ...], groups: int, dtype):
        self.groups, self.c_in_g = groups, x_shape[-1] // groups
        self.dtype = np.dtype(dtype)
        self.cache: dict[tuple[Geometry, int], np.ndarray] = {}  # patches
        self.inputs: dict[tuple[Geometry, int], np.ndarray] = {}  # zero-padded inputs
        self.named: dict[str, np.ndarray] = {}  # `reuse`'s arrays, flat
        self.used = 0  # bytes of the scratch memory taken so far

    def __call__(self, g: Geometry, n: int) -> np.ndarray:
        buf = self.cache.get((g, n))
        if buf is None:
            shape = ((self.groups, *g.kernel, self.c_in_g, n, *g.out_size)
                     if tap_major(g, self.c_in_g)
                     else (n, *g.out_size, self.groups, *g.kernel, self.c_in_g))
            assert taps(g)[1], g  # unpadded: the copy writes every position of the patches
            buf = self.cache[g, n] = self.take(shape)
        return buf

    def padded(self, x: np.ndarray, g: Geometry) -> tuple[np.ndarray, Geometry]:
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
