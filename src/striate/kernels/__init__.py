"""The engine room: the fast algorithms behind `striate.functional`, one per file, and one
dispatch table per op family. What they compute is defined in `striate.reference`.

    conv/         table.py (which algorithm, on which cores), geometry.py, scratch.py, and one
                  file per algorithm: im2col.py, winograd.py, banded.py, dense.py, depthwise.py
    pool.py       sliding windows walked offset by offset (max, average, L_p, adaptive)
    norm.py       batch normalisation on the (positions, channels) matrix
    channelwise.py  the fused per-channel pass (scale, shift, residual, ReLU) and the ReLU
    copies.py     record copies of short strided runs
    switch.py     `use`, `record`: the public switch and the record of what ran

`use("reference")` runs every op on the definitions (the whole zoo gives the same numbers to
float rounding); `use("im2col")` and the other names prefer one algorithm; `explain` says which
algorithm a convolution takes and why.

>>> from striate import kernels
>>> with kernels.use("numpy"):  # the NumPy algorithms (else the compiled direct convolution)
...     kernels.explain("conv2d", (128, 28, 28, 1), (5, 5, 1, 6), padding=2)
'banded: 5x5 kernel, 6 filters on rows of 28 values'
"""

from __future__ import annotations

from ..arith import conv_geometry, ntuple
from . import conv
from .conv.geometry import Geometry
from .switch import current, names, record, use

__all__ = ["current", "explain", "names", "record", "use"]


def explain(op: str, x_shape, w_shape, stride=1, padding="valid", dilation=1,
            groups: int = 1) -> str:
    """Which algorithm `F.<op>` (conv1d, conv2d or conv3d) runs for an input of x_shape and a
    kernel of w_shape, and why, in one line."""
    n = {"conv1d": 1, "conv2d": 2, "conv3d": 3}.get(op)
    if n is None:
        raise ValueError(f"kernels.explain: unknown op {op!r}; use conv1d, conv2d or conv3d")
    if len(x_shape) != n + 2 or len(w_shape) != n + 2:
        raise ValueError(f"kernels.explain: {op} takes an input and a kernel of {n + 2} axes, "
                         f"got {tuple(x_shape)} and {tuple(w_shape)}")
    in_size, kernel = tuple(x_shape[1:-1]), tuple(w_shape[:n])
    stride, dilation = ntuple(stride, n, "stride", op), ntuple(dilation, n, "dilation", op)
    out, pads = conv_geometry(in_size, kernel, stride, padding, dilation, op=op)
    g = Geometry(in_size, out, kernel, stride, dilation, pads)
    return conv.explain(g, x_shape[0], x_shape[-1], w_shape[-1], groups)
