"""The convolution kernels: `forward` and `backward` hand each convolution to the algorithm that
`table.choose` names (or to `striate.reference.conv` under `kernels.use("reference")`).

Data are channels-last, x (N, *in, C_in), kernels (*k, C_in/groups, C_out), and the geometry
is resolved (`geometry.Geometry`). Before any algorithm, taps that read only padding for every
output are cut off the kernel (`geometry.crop`: of a 3x3 kernel padded by 1 on a 1x1 map, only
the centre is left).
"""

from __future__ import annotations

import math

import numpy as np

from ...reference.conv import conv as reference_conv
from ...reference.conv import conv_db as reference_db
from ...reference.conv import conv_dw as reference_dw
from ...reference.conv import conv_dx as reference_dx
from .. import switch
from ..channelwise import relu_gradient
from . import banded, dense, depthwise, direct, im2col, table, winograd
from .geometry import Geometry, adjoint_geometry, adjoint_kernel, channel_sum, crop, flip

__all__ = ["Geometry", "backward", "bias_grad", "choose", "explain", "flip", "forward"]

switch.register("conv", table.ALGORITHMS)


def choose(g: Geometry, n: int, c_in: int, c_out: int, groups: int) -> str:
    """The algorithm that runs this convolution now: "reference" under `use("reference")`,
    else `table.choose` (with the algorithm `use` names, if any, preferred)."""
    if switch.reference():
        return "reference"
    return table.choose(g, n, c_in, c_out, groups, switch.preferred())


def forward(x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, finish=None) -> np.ndarray:
    """y (N, *out, C_out) of the cross-correlation of x (N, *in, C_in) with w, then finish(y)
    in place if given (a `channelwise.ChannelMap`: bias, scale, shift, residual, ReLU): on each
    piece of y right after its product, while it is in cache (im2col and Winograd), or over all
    of y at the end (the other ways)."""
    if not switch.reference():
        cut = crop(g)
        if cut is not None:
            return forward(x, w[cut[1]], cut[0], groups, finish)
    n, c_in, c_out = x.shape[0], x.shape[-1], w.shape[-1]
    algorithm = switch.ran("conv", choose(g, n, c_in, c_out, groups))
    if algorithm == "reference":
        y = reference_conv(x, w, None, g.stride, g.pads, g.dilation, groups)
    elif algorithm == "direct":
        return direct.forward(x, w, g, groups, finish)  # finishes y itself
    elif algorithm == "dense":
        y = dense.forward(x, w, g)
    elif algorithm == "banded":
        y = banded.forward(x, w, g, forward)
    else:
        y = np.empty((n, *g.out_size, c_out), dtype=x.dtype)
        if algorithm == "winograd":  # these two finish each piece of y themselves
            winograd.forward(x, w, g, y, finish)
            return y
        if algorithm == "im2col":
            im2col.forward(x, w, g, groups, y, finish)
            return y
        depthwise.forward(x, w, g, y)
    if finish is not None:
        finish.over(y, y)
    return y


def backward(dy, x, w, g: Geometry, groups: int, x_shape, w_shape, need_dx: bool,
             need_dw: bool, need_db: bool = False, relu_output=None):
    """(dx, dw, db) of y = conv(x, w) + b given dy (N, *out, C_out), or of y = relu(conv(x, w)
    + b) when relu_output (that y) is given: dy then counts only where y > 0. None for what is
    not needed (x or w may then be None). The compiled direct kernels take the ReLU's mask and
    db in their own pass; the other algorithms mask dy first and sum db apart."""
    if not (need_dx or need_dw or need_db):
        return None, None, None
    if not switch.reference():
        cut = crop(g)
        if cut is not None:  # the cut taps' weights get no gradient
            gc, taps = cut
            dx, dwc, db = backward(dy, x, None if w is None else w[taps], gc, groups, x_shape,
                                   (*gc.kernel, *w_shape[len(taps):]), need_dx, need_dw,
                                   need_db, relu_output)
            dw = None
            if need_dw:
                dw = np.zeros(w_shape, dtype=dy.dtype)
                dw[taps] = dwc
            return dx, dw, db
    n, c_in, c_out = x_shape[0], x_shape[-1], w_shape[-1]
    algorithm = switch.ran("conv", choose(g, n, c_in, c_out, groups))
    if algorithm == "direct":
        return direct.backward(dy, x, w, g, groups, x_shape, w_shape, need_dx, need_dw, need_db,
                               relu_output)
    if relu_output is not None:
        dy = relu_gradient(dy, relu_output)
    db = bias_grad(dy) if need_db else None
    if not (need_dx or need_dw):
        return None, None, db
    return (*_products_backward(algorithm, dy, x, w, g, groups, x_shape, w_shape, need_dx,
                                need_dw), db)


def _products_backward(algorithm: str, dy, x, w, g: Geometry, groups: int, x_shape, w_shape,
                       need_dx: bool, need_dw: bool):
    """(dx, dw) by `algorithm` (any but "direct")."""
    c_in = x_shape[-1]
    if algorithm == "reference":
        args = (g.stride, g.pads, g.dilation, groups)
        return (reference_dx(dy, w, x_shape, *args) if need_dx else None,
                reference_dw(dy, x, w_shape, *args) if need_dw else None)
    if algorithm == "depthwise":
        dx = np.zeros(x_shape, dtype=dy.dtype) if need_dx else None
        return dx, depthwise.backward(dy, x, w, g, c_in, dx, need_dw)
    if algorithm == "dense":
        return dense.backward(dy, x, w, g, x_shape, w_shape, need_dx, need_dw)
    if algorithm == "banded":
        return banded.backward(dy, x, w, g, x_shape, w_shape, need_dx, need_dw, _dx_dw)
    if algorithm == "winograd":  # dx: a convolution of dy that is one as well
        dx = forward(dy, adjoint_kernel(w, 1), adjoint_geometry(g), 1) if need_dx else None
        return dx, winograd.weight_grad(dy, x, g) if need_dw else None
    adjoint = adjoint_geometry(g)
    if adjoint is not None and im2col.dy_patches_smaller(g, c_in, w_shape[-1], need_dx):
        return im2col.stride1_backward(dy, x, w, adjoint, groups, x_shape, w_shape, need_dx,
                                       need_dw)
    return im2col.backward(dy, x, w, g, groups, x_shape, w_shape, need_dx, need_dw)


def _dx_dw(dy, x, w, g: Geometry, groups: int, x_shape, w_shape, need_dx: bool,
           need_dw: bool):
    """(dx, dw) of y = conv(x, w): `backward` without a bias or a ReLU."""
    return backward(dy, x, w, g, groups, x_shape, w_shape, need_dx, need_dw)[:2]


def bias_grad(dy: np.ndarray) -> np.ndarray:
    """db: dy summed over every axis but the channels (`reference.conv.conv_db`)."""
    return reference_db(dy) if switch.reference() else channel_sum(dy)


def explain(g: Geometry, n: int, c_in: int, c_out: int, groups: int) -> str:
    """Which algorithm a convolution runs and why, in one line."""
    cut = crop(g)
    name = choose(cut[0] if cut else g, n, c_in, c_out, groups)
    shape = "x".join(map(str, g.kernel))
    why = {
        "reference": "kernels.use('reference') is in force",
        "direct": f"compiled, a patch of {math.prod(g.kernel) * c_in // groups} values into "
                  f"{c_out} filters",
        "dense": f"{math.prod(g.in_size)} positions, no more than the kernel's taps",
        "banded": f"{c_out} filters on rows of {g.in_size[-1] * c_in} values",
        "depthwise": "one group per input channel",
        "winograd": f"3x3 at stride 1 on {c_in} -> {c_out} channels, "
                    f"{n * table.tiles(g)} tiles of 2x2 outputs",
        "im2col": "the general algorithm",
    }.get(name, "preferred by kernels.use")
    cropped = f" (kernel cut to {'x'.join(map(str, cut[0].kernel))})" if cut else ""
    return f"{name}: {shape} kernel{cropped}, {why}"
