"""Pooling over sliding windows: max, average, L_p-norm and Gaussian-weighted pooling. (Global
and adaptive pooling and maxout: `global_pool.py`.)

Each op here checks its arguments, resolves the windows (`arith.conv_geometry` with dilation 1)
and records itself on the tape. The definitions, forward and gradients with their formulas, are
`striate.reference.pool`; the kernels, which walk the windows offset by offset without building
the padding, are `striate.kernels.pool`. Under `kernels.use("reference")` every op runs its
definition (`Pool`).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import NamedTuple

import numpy as np

from ..arith import conv_geometry, ntuple, resolve_padding
from ..kernels import pool as kernels
from ..kernels import switch
from ..kernels.pool import (
    Windows,
    is_padded,
    real_weight,
    scatter,
    spans,
    window_sum,
)
from ..reference import pool as reference
from ..tensor import Op, Tensor, as_tensor

__all__ = [
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "gaussian_pool1d",
    "gaussian_pool2d",
    "gaussian_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
]

_AXES = {1: "L", 2: "HW", 3: "DHW"}
_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}


# ===== validation ==============================================================================

def _fmt(values: tuple[int, ...]):
    """A per-axis tuple as users write it: a bare int in 1-D."""
    return values[0] if len(values) == 1 else values


def check_rank(op: str, x: Tensor, n: int) -> None:
    if x.ndim != n + 2:
        raise ValueError(f"{op}: expected a {n + 2}-D input {_LAYOUTS[n]}, got shape {x.shape}")


def _geometry(op: str, x: Tensor, n: int, size, stride, padding) -> Windows:
    """Validated windows of a sliding-window pool over x.

    Every window must hold at least one input element: a window of padding alone has no maximum
    and no average.
    """
    check_rank(op, x, n)
    size = ntuple(size, n, "size", op)
    stride = size if stride is None else ntuple(stride, n, "stride", op)
    spatial = x.shape[1:-1]
    pads = resolve_padding(padding, spatial, size, stride, (1,) * n, op)
    for axis, i, k, (p0, p1) in zip(_AXES[n], spatial, size, pads, strict=True):
        if i + p0 + p1 < k:
            padded = f" padded by ({p0}, {p1})" if p0 or p1 else ""
            raise ValueError(
                f"{op}: size {_fmt(size)} with stride {_fmt(stride)} gives {axis}_out=0 for "
                f"{axis}={i}{padded}; pad the input or use a smaller window"
            )
    out, pads = conv_geometry(spatial, size, stride, pads, (1,) * n, op=op)
    for axis, i, k, s, (p0, _), o in zip(_AXES[n], spatial, size, stride, pads, out,
                                         strict=True):
        if p0 >= k or (o - 1) * s - p0 >= i:
            raise ValueError(
                f"{op}: padding {padding!r} leaves windows along {axis} that hold only padding "
                f"(size {_fmt(size)}, {axis}={i}); use less padding than the window size"
            )
    return Windows(size, stride, pads, out)


def _real(op: str, name: str, value, minimum: float, inclusive: bool) -> float:
    """A real hyper-parameter as a Python float (NumPy scalars would upcast float32 data)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    value = float(value)
    if not (value >= minimum if inclusive else value > minimum) or math.isnan(value):
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{op}: {name} must be {bound} {minimum:g}, got {value!r}")
    return value


class Definition(NamedTuple):
    """A pooling's definition in `striate.reference.pool`: forward(x) -> y, dx(dy, x) -> dx."""

    forward: object
    dx: object


class Pool(Op):
    """A pooling op: its kernel (`compute`, `compute_dx`), or under `kernels.use("reference")`
    its definition."""

    def forward(self, x, definition: Definition, **params):
        self.definition = definition if switch.reference() else None
        if self.definition is not None:
            kernels.choose()  # recorded as "reference"
            self.x = x
            return definition.forward(x)
        return self.compute(x, **params)

    def backward(self, dy):
        if self.definition is not None:
            return (self.definition.dx(dy, self.x),)
        return (self.compute_dx(dy),)


def _sliding(fn, dx, windows: Windows, **args) -> Definition:
    """The definition of a sliding-window pool: reference fn(x, size, stride, padding, **args)
    and dx(dy, x, size, stride, padding, **args)."""
    geometry = dict(size=windows.size, stride=windows.stride, padding=windows.pads)
    return Definition(functools.partial(fn, **geometry, **args),
                       lambda dy, x: dx(dy, x, **geometry, **args))


# ===== max pooling =============================================================================
class MaxPool(Pool):
    """y = max over the window of x padded with -inf; dy goes to the first maximum
    (`reference.pool.max_pool`, `max_pool_dx`)."""

    def compute(self, x, windows):
        y, self.state = kernels.max_pool(x, windows, self.needs_grad[0])
        return y

    def compute_dx(self, dy):
        return kernels.max_pool_dx(dy, self.state)


def _max_pool(op: str, n: int, x, size, stride, padding) -> Tensor:
    x = as_tensor(x)
    windows = _geometry(op, x, n, size, stride, padding)
    definition = _sliding(reference.max_pool, reference.max_pool_dx, windows)
    return MaxPool.apply(x, definition=definition, windows=windows)


def max_pool1d(x, size, stride=None, padding="valid") -> Tensor:
    """1-D max pooling: the largest value in each window; padding never wins.

    y[n, i, c] = max_{u<k} xp[n, i*s + u, c]   (xp: x padded with -inf)

    x: (N, L, C); size, stride (default: size): int; padding: any form of `arith`.
    Returns (N, L_out, C), L_out = floor((L + p0 + p1 - k) / s) + 1.

    >>> max_pool1d(np.zeros((2, 9, 3)), 3, stride=2).shape
    (2, 4, 3)
    """
    return _max_pool("max_pool1d", 1, x, size, stride, padding)


def max_pool2d(x, size, stride=None, padding="valid") -> Tensor:
    """2-D max pooling: the largest value in each window; padding never wins.

    y[n, i, j, c] = max_{u<kH, v<kW} xp[n, i*sH + u, j*sW + v, c]   (xp: x padded with -inf)

    The gradient goes to the window's maximum, the first one in window order on ties.
    x: (N, H, W, C); size, stride (default: size): int or (kH, kW); padding: 'valid', 'same'
    (TensorFlow), 'full', an int, (pH, pW) or ((pH0, pH1), (pW0, pW1)).
    Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1.

    >>> max_pool2d(np.zeros((2, 8, 8, 3)), 2).shape
    (2, 4, 4, 3)
    """
    return _max_pool("max_pool2d", 2, x, size, stride, padding)


def max_pool3d(x, size, stride=None, padding="valid") -> Tensor:
    """3-D max pooling: the largest value in each window; padding never wins.

    y[n, d, i, j, c] = max_{t<kD, u<kH, v<kW} xp[n, d*sD + t, i*sH + u, j*sW + v, c]

    x: (N, D, H, W, C); size, stride (default: size): int or (kD, kH, kW).
    Returns (N, D_out, H_out, W_out, C), D_out = floor((D + pD0 + pD1 - kD) / sD) + 1.

    >>> max_pool3d(np.zeros((1, 4, 6, 6, 2)), 2).shape
    (1, 2, 3, 3, 2)
    """
    return _max_pool("max_pool3d", 3, x, size, stride, padding)

# ===== average and Gaussian-weighted pooling ===================================================
class WeightedAverage(Pool):
    """y = sum_o w[o] * xp[window element o] / norm; xp is x padded with zeros
    (`reference.pool.avg_pool`, `gaussian_pool`).

    Average pooling has w = 1 and norm = the element count; Gaussian pooling has normalised
    distance weights. weights: one per window offset, or None for all ones; norm: a number or
    an array (1, *out, 1) when padding is excluded from it.
    """

    def compute(self, x, windows, weights, norm, count_include_pad=None):
        self.shape, self.windows, self.weights, self.norm = x.shape, windows, weights, norm
        # a plain average (count_include_pad given) may take the compiled kernel
        self.count_include_pad = count_include_pad
        self.direct = kernels.choose(windows if count_include_pad is not None else None) \
            == "direct"
        if self.direct:
            return kernels.average(x, windows, count_include_pad)
        self.spans = spans(windows, x.shape[1:-1])
        y = window_sum(x, windows, self.spans, weights)
        y /= norm
        return y

    def compute_dx(self, dy):
        if self.direct:
            return kernels.average_dx(dy, self.shape, self.windows, self.count_include_pad)
        g = dy / self.norm
        weights = self.weights

        def parts(rows):
            gr = g[rows]
            if weights is None:
                return (gr[span.out] for span in self.spans)
            return (gr[span.out] * weights[span.index] for span in self.spans)

        return scatter(self.shape, dy.dtype, self.windows, self.spans, parts)


def _avg_pool(op: str, n: int, x, size, stride, padding, count_include_pad) -> Tensor:
    x = as_tensor(x)
    windows = _geometry(op, x, n, size, stride, padding)
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"{op}: count_include_pad must be True or False, got {count_include_pad!r}")
    if count_include_pad or not is_padded(windows.pads):
        norm = math.prod(windows.size)
    else:
        ones = [np.ones(k) for k in windows.size]
        norm = real_weight(ones, x.shape[1:-1], windows, x.dtype)
    definition = _sliding(reference.avg_pool, lambda dy, x, **a: reference.avg_pool_dx(
        dy, x.shape, **a), windows, count_include_pad=count_include_pad)
    return WeightedAverage.apply(x, definition=definition, windows=windows, weights=None,
                                 norm=norm, count_include_pad=count_include_pad)


def avg_pool1d(x, size, stride=None, padding="valid", count_include_pad=False) -> Tensor:
    """1-D average pooling: the mean of each window.

    y[n, i, c] = sum_{u<k} xp[n, i*s + u, c] / count   (xp: x padded with zeros)

    count is the number of input elements in the window (k when count_include_pad, PyTorch's
    default). x: (N, L, C). Returns (N, L_out, C), L_out = floor((L + p0 + p1 - k) / s) + 1.

    >>> avg_pool1d(np.zeros((2, 9, 3)), 3, stride=2, padding="same").shape
    (2, 5, 3)
    """
    return _avg_pool("avg_pool1d", 1, x, size, stride, padding, count_include_pad)


def avg_pool2d(x, size, stride=None, padding="valid", count_include_pad=False) -> Tensor:
    """2-D average pooling: the mean of each window.

    y[n, i, j, c] = sum_{u<kH, v<kW} xp[n, i*sH + u, j*sW + v, c] / count   (xp: zero padded)

    count is the number of input elements in the window: padding is left out by default
    (TensorFlow, Keras); count_include_pad=True counts it (kH*kW, PyTorch's default).
    x: (N, H, W, C); size, stride (default: size): int or (kH, kW); padding as `max_pool2d`.
    Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1.

    >>> avg_pool2d(np.zeros((2, 8, 8, 3)), 2).shape
    (2, 4, 4, 3)
    """
    return _avg_pool("avg_pool2d", 2, x, size, stride, padding, count_include_pad)


def avg_pool3d(x, size, stride=None, padding="valid", count_include_pad=False) -> Tensor:
    """3-D average pooling: the mean of each window.

    y[n, d, i, j, c] = sum_{t, u, v} xp[n, d*sD + t, i*sH + u, j*sW + v, c] / count

    x: (N, D, H, W, C). Returns (N, D_out, H_out, W_out, C),
    D_out = floor((D + pD0 + pD1 - kD) / sD) + 1; count as `avg_pool2d`.

    >>> avg_pool3d(np.zeros((1, 4, 6, 6, 2)), 2).shape
    (1, 2, 3, 3, 2)
    """
    return _avg_pool("avg_pool3d", 3, x, size, stride, padding, count_include_pad)


def _gaussian_pool(op: str, n: int, x, size, stride, padding, sigma) -> Tensor:
    x = as_tensor(x)
    windows = _geometry(op, x, n, size, stride, padding)
    sigma = _real(op, "sigma", sigma, 0, inclusive=False)
    # exp(-d^2 / 2 sigma^2) of the distance d from the window centre factors into one Gaussian
    # per axis; each is normalised to sum 1, so their product is too.
    axis_weights = []
    for k in windows.size:
        w = np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * sigma**2))
        axis_weights.append(w / w.sum())
    # (kH*kW,) in window order
    weights = functools.reduce(np.multiply.outer, axis_weights).ravel().astype(x.dtype)
    norm = 1
    if is_padded(windows.pads):
        norm = real_weight(axis_weights, x.shape[1:-1], windows, x.dtype)
    definition = _sliding(reference.gaussian_pool, lambda dy, x, **a: reference.gaussian_pool_dx(
        dy, x.shape, **a), windows, sigma=sigma)
    return WeightedAverage.apply(x, definition=definition, windows=windows, weights=weights,
                                 norm=norm)


def gaussian_pool1d(x, size, stride=None, padding="valid", sigma=1.0) -> Tensor:
    """1-D Gaussian-weighted average pooling (weights fall with the distance from the centre).

    y[n, i, c] = sum_u w[u] xp[n, i*s + u, c] / sum_{u on input} w[u],
    w[u] = exp(-(u - (k-1)/2)^2 / (2 sigma^2)); padding carries no weight.

    x: (N, L, C). Returns (N, L_out, C), L_out = floor((L + p0 + p1 - k) / s) + 1.

    >>> gaussian_pool1d(np.zeros((2, 9, 3)), 3, stride=2).shape
    (2, 4, 3)
    """
    return _gaussian_pool("gaussian_pool1d", 1, x, size, stride, padding, sigma)


def gaussian_pool2d(x, size, stride=None, padding="valid", sigma=1.0) -> Tensor:
    """2-D Gaussian-weighted average pooling: a weighted average based on the distance from the
    central pixel (Goodfellow et al., ch. 9.3).

    y[n, i, j, c] = sum_{u,v} w[u, v] xp[n, i*sH + u, j*sW + v, c] / sum_{(u,v) on input} w[u, v]
    w[u, v] = exp(-((u - (kH-1)/2)^2 + (v - (kW-1)/2)^2) / (2 sigma^2))

    Weights on padding are left out of the normalisation, so sigma -> inf gives `avg_pool2d`.
    x: (N, H, W, C). Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1.

    >>> gaussian_pool2d(np.zeros((2, 8, 8, 3)), 3, stride=2, padding="same").shape
    (2, 4, 4, 3)
    """
    return _gaussian_pool("gaussian_pool2d", 2, x, size, stride, padding, sigma)


def gaussian_pool3d(x, size, stride=None, padding="valid", sigma=1.0) -> Tensor:
    """3-D Gaussian-weighted average pooling.

    y = sum_{t,u,v} w[t, u, v] xp[window] / sum_{on input} w, w = exp(-d^2 / (2 sigma^2)) with
    d the distance of (t, u, v) from the window centre.

    x: (N, D, H, W, C). Returns (N, D_out, H_out, W_out, C),
    D_out = floor((D + pD0 + pD1 - kD) / sD) + 1.

    >>> gaussian_pool3d(np.zeros((1, 5, 5, 5, 2)), 3).shape
    (1, 1, 1, 1, 2)
    """
    return _gaussian_pool("gaussian_pool3d", 3, x, size, stride, padding, sigma)


# ===== L_p-norm pooling ========================================================================
class LpPool(Pool):
    """y = (sum over the window of |x|^p)^(1/p); padding adds nothing to the sum."""

    def compute(self, x, p, windows):
        kernels.choose()  # the windows (recorded)
        powered = x * x if p == 2 else np.abs(x) ** p
        self.spans = spans(windows, x.shape[1:-1])
        total = window_sum(powered, windows, self.spans)
        y = np.sqrt(total) if p == 2 else total ** (1 / p)
        self.windows, self.x, self.y, self.p = windows, x, y, p
        return y

    def compute_dx(self, dy):
        # y = S^(1/p) with S = sum |x|^p, so dy/dx = (1/p) S^(1/p - 1) * p |x|^(p-1) sign(x)
        # = y^(1-p) * |x|^(p-1) sign(x). A window of zeros (y = 0) gets the subgradient 0
        # instead of inf * 0.
        x, y, p = self.x, self.y, self.p
        g = np.divide(dy, y if p == 2 else y ** (p - 1), out=np.zeros_like(dy), where=y > 0)
        dx = scatter(x.shape, dy.dtype, self.windows, self.spans,
                      lambda rows: (g[rows][span.out] for span in self.spans))
        return dx * x if p == 2 else dx * (np.abs(x) ** (p - 1) * np.sign(x))


def _lp_pool(op: str, n: int, x, p, size, stride, padding) -> Tensor:
    x = as_tensor(x)
    windows = _geometry(op, x, n, size, stride, padding)
    p = _real(op, "p", p, 1, inclusive=True)
    if math.isinf(p):
        raise ValueError(f"{op}: p must be finite, got {p!r}; use max pooling for p = inf")
    definition = _sliding(reference.lp_pool, reference.lp_pool_dx, windows, p=p)
    return LpPool.apply(x, definition=definition, p=p, windows=windows)


def lp_pool1d(x, p, size, stride=None, padding="valid") -> Tensor:
    """1-D L_p-norm pooling: the p-norm of each window.

    y[n, i, c] = (sum_{u<k} |xp[n, i*s + u, c]|^p)^(1/p)   (xp: x padded with zeros; p >= 1)

    x: (N, L, C). Returns (N, L_out, C), L_out = floor((L + p0 + p1 - k) / s) + 1.

    >>> lp_pool1d(np.ones((2, 9, 3)), 2, 3).shape
    (2, 3, 3)
    """
    return _lp_pool("lp_pool1d", 1, x, p, size, stride, padding)


def lp_pool2d(x, p, size, stride=None, padding="valid") -> Tensor:
    """2-D L_p-norm pooling; p = 2 is the L2-norm pooling of Goodfellow et al., ch. 9.3.

    y[n, i, j, c] = (sum_{u<kH, v<kW} |xp[n, i*sH + u, j*sW + v, c]|^p)^(1/p)   (p >= 1)

    NOTE: PyTorch's lp_pool2d sums x^p without the absolute value; the two agree for p = 2 and
    for non-negative input. A window of zeros gets the gradient 0.
    x: (N, H, W, C). Returns (N, H_out, W_out, C), H_out = floor((H + pH0 + pH1 - kH) / sH) + 1.

    >>> lp_pool2d(np.ones((2, 8, 8, 3)), 2, 2).shape
    (2, 4, 4, 3)
    """
    return _lp_pool("lp_pool2d", 2, x, p, size, stride, padding)


def lp_pool3d(x, p, size, stride=None, padding="valid") -> Tensor:
    """3-D L_p-norm pooling: the p-norm of each window.

    y[n, d, i, j, c] = (sum_{t,u,v} |xp[n, d*sD + t, i*sH + u, j*sW + v, c]|^p)^(1/p)

    x: (N, D, H, W, C). Returns (N, D_out, H_out, W_out, C),
    D_out = floor((D + pD0 + pD1 - kD) / sD) + 1.

    >>> lp_pool3d(np.ones((1, 4, 6, 6, 2)), 2, 2).shape
    (1, 2, 3, 3, 2)
    """
    return _lp_pool("lp_pool3d", 3, x, p, size, stride, padding)
