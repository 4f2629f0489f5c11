"""Convolution: cross-correlation and true convolution in 1, 2 and 3 dimensions, grouped and
depthwise convolution, transposed convolution, locally connected layers and the Toeplitz matrix.

Data are channels-last, x (N, *in, C_in), kernels (*k, C_in/groups, C_out). Each op here checks
its arguments, resolves the geometry (`striate.arith`: O = floor((I + P_start + P_end
- d*(K - 1) - 1) / S) + 1) and records itself on the tape. The definitions, forward and
gradients with their formulas, are `striate.reference.conv`; the fast algorithms that compute
them (im2col, Winograd, banded, dense, depthwise) and the table that picks one are
`striate.kernels.conv`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from ..arith import conv_geometry, ntuple, transpose_geometry
from ..kernels import conv as kernels
from ..kernels import switch
from ..kernels.channelwise import ChannelMap
from ..kernels.conv.geometry import Geometry
from ..kernels.conv.im2col import col2im, im2col
from ..reference.conv import (
    locally_connected,
    locally_connected_db,
    locally_connected_dw,
    locally_connected_dx,
)
from ..tensor import Op, Tensor, as_tensor

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


# ===== ops =====================================================================================
class Conv(Op):
    """y = conv(x, w) + b: `reference.conv.conv`, its gradients `conv_dx`, `conv_dw`, `conv_db`.
    The bias is added in the pass that finishes each piece of the output."""

    def forward(self, x, w, b, geometry, groups, flip):
        n = len(geometry.kernel)
        if flip:  # true convolution: cross-correlation with the flipped kernel
            w = kernels.flip(w, n)
        self.geometry, self.groups, self.flip = geometry, groups, flip
        self.x_shape, self.w_shape = x.shape, w.shape
        # dw rebuilds the patches from x piece by piece (all of them at once would take K times
        # the memory of x); dx needs only w.
        need_dx, need_dw, _ = self.needs_grad
        self.x = x if need_dw else None
        self.w = w if need_dx else None
        return kernels.forward(x, w, geometry, groups, None if b is None else ChannelMap(shift=b))

    def backward(self, dy):
        dx, dw, db = kernels.backward(dy, self.x, self.w, self.geometry, self.groups,
                                      self.x_shape, self.w_shape, *self.needs_grad)
        if dw is not None and self.flip:
            dw = kernels.flip(dw, len(self.geometry.kernel)).copy()
        return dx, dw, db


class ConvTranspose(Op):
    """The adjoint of Conv (`reference.conv.conv_transpose`): x here has the shape of that
    convolution's output, y of its input. Its forward is the convolution's dx, its dx the
    convolution, its dw the convolution's dw with x in the role of dy."""

    def forward(self, x, w, b, geometry, groups):
        self.geometry, self.groups, self.x_shape, self.w_shape = geometry, groups, x.shape, w.shape
        self.x = x if self.needs_grad[1] else None
        self.w = w if self.needs_grad[0] else None
        c_in = w.shape[-2] * groups
        y_shape = (x.shape[0], *geometry.in_size, c_in)
        y, _, _ = kernels.backward(x, None, w, geometry, groups, y_shape, w.shape, True,
                                   False)
        if b is not None:
            ChannelMap(shift=b).over(y, y)
        return y

    def backward(self, dy):
        need_dx, need_dw, need_db = self.needs_grad
        dx = kernels.forward(dy, self.w, self.geometry, self.groups) if need_dx else None
        dw = None
        if need_dw:
            _, dw, _ = kernels.backward(self.x, dy, None, self.geometry, self.groups,
                                        dy.shape, self.w_shape, False, True)
        return dx, dw, kernels.bias_grad(dy) if need_db else None


class LocallyConnected(Op):
    """Unshared weights (`reference.conv.locally_connected`): y[n, o, f] = b[o, f] +
    sum_{k,c} patches[n, o, k, c] * w[o, k, c, f], one product per output position over the
    patches (`kernels.conv.im2col`)."""

    def forward(self, x, w, b, geometry):
        self.geometry, self.x_shape, self.w_shape = geometry, x.shape, w.shape
        self.x = x if self.needs_grad[1] else None  # dw rebuilds the patches from x
        self.w = w if self.needs_grad[0] else None
        g = geometry
        if switch.reference():
            return locally_connected(x, w, b, g.stride, g.pads, g.dilation)
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
        if switch.reference():
            args = (g.stride, g.pads, g.dilation)
            return (locally_connected_dx(dy, self.w, self.x_shape, *args)
                    if need_dx else None,
                    locally_connected_dw(dy, self.x, self.w_shape, *args)
                    if need_dw else None,
                    locally_connected_db(dy) if need_db else None)
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
            col2im(dcols, g, dx[..., None, :])
        db = dy.sum(axis=0) if need_db else None
        return dx, dw, db

    def _patches(self, x):
        g = self.geometry
        cols = np.zeros((x.shape[0], *g.out_size, 1, *g.kernel, x.shape[-1]), dtype=x.dtype)
        im2col(x[..., None, :], g, cols)
        return cols.reshape(x.shape[0], math.prod(g.out_size), -1).transpose(1, 0, 2)

    def _weights(self, w):
        return w.reshape(math.prod(self.geometry.out_size), -1, w.shape[-1])  # (P, K*C_in, C_out)


# ===== validation ==============================================================================
def _check_groups(op: str, groups) -> int:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    return int(groups)


def check_bias(op: str, b, shape: tuple[int, ...], dtype, what: str, name: str = "b"):
    """b (or another argument `name` of a fixed shape: the scale, the residual) as a Tensor of
    x's dtype, or None."""
    if b is None:
        return None
    b = as_tensor(b)
    if b.shape != shape:
        raise ValueError(f"{op}: {name} must have shape {shape} ({what}), got {b.shape}")
    return b if b.dtype == dtype else b.astype(dtype)


def check_conv(op: str, n: int, x, w, b, groups, transpose: bool = False):
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
    b = check_bias(op, b, (size,), x.dtype, f"one per {'input' if transpose else 'output'} "
                    f"channel of kernel shape {w.shape}")
    return x, w, b, groups


def _geometry(op: str, n: int, in_size, kernel, stride, padding, dilation, strict=False):
    """The validated `Geometry`, remembered for hashable arguments: a network asks for the
    same few on every call, and working one out takes ~15 us (a list argument is worked out
    each time)."""
    args = (op, n, tuple(in_size), tuple(kernel), stride, padding, dilation, strict)
    try:
        return _known_geometry(*args)
    except TypeError:  # unhashable; a bad argument raises the same error again below
        return _known_geometry.__wrapped__(*args)


@functools.lru_cache(maxsize=1024)
def _known_geometry(op, n, in_size, kernel, stride, padding, dilation, strict) -> Geometry:
    stride = ntuple(stride, n, "stride", op)
    dilation = ntuple(dilation, n, "dilation", op)
    out, pads = conv_geometry(in_size, kernel, stride, padding, dilation, strict, op)
    return Geometry(in_size, out, kernel, stride, dilation, pads)


# ===== public functions ========================================================================
def conv_geometry_of(op: str, n: int, x: Tensor, w: Tensor, stride, padding, dilation,
                     strict=False) -> Geometry:
    """The resolved geometry of an n-d convolution of x with w (checked by `check_conv`)."""
    return _geometry(op, n, x.shape[1:-1], w.shape[:n], stride, padding, dilation, strict)


def _conv(op, n, x, w, b, stride, padding, dilation, groups, flip, strict) -> Tensor:
    x, w, b, groups = check_conv(op, n, x, w, b, groups)
    g = conv_geometry_of(op, n, x, w, stride, padding, dilation, strict)
    return Conv.apply(x, w, b, geometry=g, groups=groups, flip=bool(flip))


def conv1d(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1, flip=False,
           strict=False) -> Tensor:
    """1-D cross-correlation of a batch of sequences with a bank of filters (true convolution,
    the kernel reversed, if flip).

    y[n, i, f] = b[f] + sum_{u,c} w[u, c, f] * xp[n, i*s + u*d, g*C_in/G + c]
    (xp: x zero-padded; g = f // (C_out/G), the group of filter f).

    x: (N, L, C_in); w: (kL, C_in/groups, C_out); b: (C_out,) or None.
    Returns (N, L_out, C_out), L_out = floor((L + p0 + p1 - d*(kL-1) - 1) / s) + 1.
    padding: 'valid' | 'same' | 'full' | int | (int,) | ((start, end),). strict=True rejects a
    stride that leaves the last inputs unused. Definition and gradients: `conv2d`.

    >>> conv1d(np.zeros((2, 100, 3)), np.zeros((5, 3, 8)), stride=2).shape
    (2, 48, 8)
    """
    return _conv("conv1d", 1, x, w, b, stride, padding, dilation, groups, flip, strict)


def conv2d(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1, flip=False,
           strict=False) -> Tensor:
    """2-D cross-correlation of a batch of images with a bank of filters (true convolution, the
    kernel flipped along both axes, if flip).

    y[n, i, j, f] = b[f] + sum_{u,v,c} w[u, v, c, f] * xp[n, i*sH + u*dH, j*sW + v*dW, c']
    (xp: x zero-padded; c' = g*C_in/G + c, g = f // (C_out/G) the group of filter f).

    x: (N, H, W, C_in); w: (kH, kW, C_in/groups, C_out); b: (C_out,) or None.
    Returns (N, H_out, W_out, C_out), H_out = floor((H + pH0 + pH1 - dH*(kH-1) - 1) / sH) + 1,
    W_out likewise. padding: 'valid' | 'same' (TensorFlow: H_out = ceil(H / sH)) | 'full' | int
    | (pH, pW) | ((pH0, pH1), (pW0, pW1)). groups == C_in is depthwise convolution.

    Gradients (dy: (N, H_out, W_out, C_out)):
        dw[u, v, c, f] = sum_{n,i,j} xp[n, i*sH + u*dH, j*sW + v*dW, c'] * dy[n, i, j, f]
        dxp[n, i*sH + u*dH, j*sW + v*dW, c'] += sum_f w[u, v, c, f] * dy[n, i, j, f]
        db[f] = sum_{n,i,j} dy[n, i, j, f]
    The definition, written as these sums (one einsum per kernel tap), is
    `striate.reference.conv.conv` with `conv_dx`, `conv_dw`, `conv_db`; the algorithm that runs
    is chosen by `striate.kernels.conv.table` (`striate.kernels.explain` names it).

    >>> conv2d(np.zeros((2, 8, 8, 3)), np.zeros((3, 3, 3, 4)), padding="same").shape
    (2, 8, 8, 4)
    """
    return _conv("conv2d", 2, x, w, b, stride, padding, dilation, groups, flip, strict)


def conv3d(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1, flip=False,
           strict=False) -> Tensor:
    """3-D cross-correlation of a batch of volumes (video, CT) with a bank of filters (true
    convolution if flip).

    y[n, t, i, j, f] = b[f] + sum_{r,u,v,c} w[r, u, v, c, f] * xp[n, t*sD + r*dD, i*sH + u*dH,
    j*sW + v*dW, c'] (xp: x zero-padded; c' the channel c of filter f's group).

    x: (N, D, H, W, C_in); w: (kD, kH, kW, C_in/groups, C_out); b: (C_out,) or None.
    Returns (N, D_out, H_out, W_out, C_out), each O = floor((I + p0 + p1 - d*(k-1) - 1) / s) + 1.
    Definition and gradients: `conv2d`.

    >>> conv3d(np.zeros((1, 16, 32, 32, 3)), np.zeros((3, 3, 3, 3, 8)), padding=1).shape
    (1, 16, 32, 32, 8)
    """
    return _conv("conv3d", 3, x, w, b, stride, padding, dilation, groups, flip, strict)


def _conv_transpose(op, n, x, w, b, stride, padding, output_padding, dilation, groups) -> Tensor:
    x, w, b, groups = check_conv(op, n, x, w, b, groups, transpose=True)
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
    b = check_bias(op, b, (*g.out_size, w.shape[-1]), x.dtype,
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
        w = kernels.flip(w, n)
    # The patches of an image holding its own flat index (from 1; 0 marks padding) say which
    # input each (output position, tap, channel) reads: row p of M takes w[tap, c] there.
    index = np.arange(1, math.prod(input_shape) + 1).reshape(1, *input_shape[:-1], 1, -1)
    cols = np.zeros((1, *g.out_size, 1, *g.kernel, input_shape[-1]), dtype=index.dtype)
    im2col(index, g, cols)
    cols = cols.reshape(math.prod(g.out_size), math.prod(g.kernel), input_shape[-1])
    position, tap, channel = np.nonzero(cols)
    m = np.zeros((cols.shape[0], w.shape[-1], math.prod(input_shape)), dtype=w.dtype)
    m[position, :, cols[position, tap, channel] - 1] = w.reshape(-1, *w.shape[-2:])[tap, channel]
    return m.reshape(-1, m.shape[-1])
