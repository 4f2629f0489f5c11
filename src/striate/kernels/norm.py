"""Batch normalisation kernels: `reference.norm.batch_norm_train` / `batch_norm_eval` and their
gradients, on the (M, C) matrix view of channels-last x (M = N * positions).

The normalisation and the affine map are one per-channel map y = xc * scale + beta, with
xc = x - mean and scale = gamma * inv_std, so x_hat is never stored: backward rebuilds what it
needs from xc. Every per-channel sum is a BLAS product (`channel_mean`); the elementwise passes
run along rows of W*C values (`channelwise.channel_rows`), block by block over the threads.
Training makes five passes over x forward and six backward; evaluation two. A fused ending
(`striate.fused.batch_norm_add_relu`) adds a residual and takes the ReLU in the same pass,
y = max(0, . + residual); backward then routes dy where y > 0 first (`routed_sums`).

Where the compiled kernels are there (`striate.kernels.native`, "direct"), each direction is
one compiled pass over the data for the statistics and one for the map: batch norm in training,
forward and backward with its ReLU on (64, 16, 16, 64) float32, 1.8 ms against PyTorch's 4.7 ms
on one thread each (docs/algorithms/direct-conv.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._parallel import BLOCK_BYTES, blocks, by_blocks, over_batch
from ..reference import norm as reference
from . import native, switch
from .channelwise import ChannelMap, channel_rows

switch.register("norm", ("direct", "numpy"))


def channel_mean(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Mean over the rows of a (M, C) (or of a * b), as a BLAS matrix-vector product or einsum:
    several times faster than ndarray.mean, and no temporary for the product."""
    m = a.shape[0]
    if b is None:
        return np.full(m, 1 / m, dtype=a.dtype) @ a
    return np.einsum("ij,ij->j", a, b) / m


class Saved(NamedTuple):
    """What the backward of a batch norm needs."""

    training: bool
    x: np.ndarray | None  # the input (evaluation and reference only)
    xc: np.ndarray | None  # x - mean (training only)
    mean: np.ndarray  # (C,)
    var: np.ndarray  # (C,)
    gamma: np.ndarray | None  # (C,)
    scale: np.ndarray  # gamma * inv_std, (C,)
    eps: float
    y: np.ndarray | None  # the output, when a ReLU was taken (its gradient: where y > 0)
    direct: bool = False  # computed by the compiled kernels (x kept instead of xc)


def forward(x, gamma, beta, mean, var, eps, residual=None, relu=False, keep_x=False):
    """(y, saved): y = max?(0, (x - mean) * gamma / sqrt(var + eps) + beta + residual).

    mean and var None: training, the batch's own (biased) statistics, returned in saved; else
    the given constants (evaluation). keep_x: keep x for the gradient of gamma in evaluation."""
    training = mean is None
    if switch.reference():
        switch.ran("norm", "reference")
        if training:
            y, mean, var = reference.batch_norm_train(x, gamma, beta, eps)
        else:
            mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
            y = reference.batch_norm_eval(x, gamma, beta, mean, var, eps)
        y = ChannelMap(residual=residual, relu=relu).plain(y)
        inv_std = 1 / np.sqrt(var + eps)
        scale = inv_std if gamma is None else gamma * inv_std
        return y, Saved(training, x, None, mean, var, gamma, scale, eps, y if relu else None)
    if native.available and switch.compiled_allowed() and switch.preferred() in (None, "direct"):
        switch.ran("norm", "direct")
        x, args = np.ascontiguousarray(x), (gamma, beta, eps, residual, relu)
        if training:
            y, mean, var, inv_std = native.batch_norm_train(x, *args)
        else:
            mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
            y = native.batch_norm_eval(x, mean, var, *args)
            inv_std = 1 / np.sqrt(var + eps)
        return y, Saved(training, x, None, mean, var, gamma, inv_std if gamma is None
                        else gamma * inv_std, eps, y if relu else None, direct=True)
    switch.ran("norm", "numpy")
    matrix = x.reshape(-1, x.shape[-1])  # (M, C)
    xc = None
    if training:
        mean = channel_mean(matrix)  # (C,)
        rows, mean_rows = channel_rows(x, mean)
        xc = np.empty(x.shape, dtype=x.dtype)
        xc_rows = xc.reshape(rows.shape)
        by_blocks(lambda block: np.subtract(rows[block], mean_rows, out=xc_rows[block]), rows)
        xc_matrix = xc.reshape(matrix.shape)
        var = channel_mean(xc_matrix, xc_matrix)  # (C,), biased: what normalises
    else:  # constants: cast them so float32 stays float32
        mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
    inv_std = 1 / np.sqrt(var + eps)
    scale = inv_std if gamma is None else gamma * inv_std
    if training:
        y = ChannelMap(scale, beta, residual, relu).new(xc)
    else:
        shift = -mean * scale if beta is None else beta - mean * scale
        y = ChannelMap(scale, shift, residual, relu).new(x)
    saved = Saved(training, x if keep_x and not training else None, xc, mean, var, gamma,
                  scale, eps, y if relu else None)
    return y, saved


def backward(dy, s: Saved, need_dx: bool, need_dgamma: bool, need_dbeta: bool):
    """(dx, dgamma, dbeta, g) of `forward`, None for what is not needed; g: dy routed through
    the ReLU (where y > 0), the gradient of the residual."""
    if switch.reference():
        g = dy if s.y is None else dy * (s.y > 0)
        if s.training:
            dx, dgamma, dbeta = reference.batch_norm_train_grad(g, s.x, s.gamma, s.eps)
        else:
            dx, dgamma, dbeta = reference.batch_norm_eval_grad(g, s.x, s.gamma, s.mean, s.var,
                                                               s.eps)
        return (dx if need_dx else None, dgamma if need_dgamma else None,
                dbeta if need_dbeta else None, g)
    if s.direct:
        inv_std = (1 / np.sqrt(s.var + s.eps)).astype(s.x.dtype)
        return native.batch_norm_backward(np.ascontiguousarray(dy), s.x, s.mean, inv_std,
                                          s.gamma, s.y, s.training, need_dx, need_dgamma,
                                          need_dbeta, need_dresidual=True)
    m = dy.size // dy.shape[-1]  # positions per channel
    inv_std = 1 / np.sqrt(s.var + s.eps)
    through_stats = s.training and need_dx
    xc = None
    if need_dgamma or through_stats:
        xc = s.xc if s.training else s.x - s.mean  # like x
    # dy routed where y > 0 (the ReLU's gradient), and its sums, in one pass
    g, sum_dy, sum_dy_xc = routed_sums(dy, s.y, need_dbeta or through_stats, xc)
    dx = dgamma = None
    dbeta = sum_dy if need_dbeta else None
    if need_dgamma:
        dgamma = sum_dy_xc * inv_std
    if through_stats:
        # With dx_hat = dy * gamma, dx = inv_std * (dx_hat - mean(dx_hat) - x_hat *
        # mean(dx_hat * x_hat)) (`reference.norm.batch_norm_train_grad`), per channel
        # dx = scale * (dy - mean(dy) - xc * inv_std^2 * mean(dy * xc)).
        xc_rows, slope, mean_dy, scale = channel_rows(
            xc, inv_std**2 * sum_dy_xc / m, sum_dy / m, s.scale)
        dy_rows = g.reshape(xc_rows.shape)
        dx = np.empty(xc.shape, dtype=xc.dtype)
        dx_rows = dx.reshape(xc_rows.shape)

        def rows_of_dx(block):
            part = dx_rows[block]
            np.multiply(xc_rows[block], slope, out=part)
            np.subtract(dy_rows[block], part, out=part)
            part -= mean_dy
            part *= scale

        by_blocks(rows_of_dx, dx_rows)
    elif need_dx:
        dx = ChannelMap(s.scale).new(g)
    return dx, dgamma, dbeta, g


def routed_sums(dy: np.ndarray, y: np.ndarray | None, sum_dy: bool, xc: np.ndarray | None):
    """(g, sum of g, sum of g * xc) over every axis but the channels, g = dy where y > 0 (the
    gradient through a ReLU with output y; dy itself when y is None); a sum not asked for
    (sum_dy False, xc None) is None. One pass over blocks of the (M, C) matrices shared out
    over the threads, the sums of each block taken while it is in cache (three passes of
    their own measured 1.2x slower on (64, 16, 16, 64) float32)."""
    c = dy.shape[-1]
    if y is None and not sum_dy and xc is None:
        return dy, None, None
    g = dy if y is None else np.empty_like(y, dtype=dy.dtype)
    dy_rows, g_rows = dy.reshape(-1, c), g.reshape(-1, c)
    y_rows = None if y is None else y.reshape(-1, c)
    xc_rows = None if xc is None else xc.reshape(-1, c)

    def run(rows: slice):
        parts = blocks(rows, c * dy.itemsize, BLOCK_BYTES)
        ones = np.ones(max((b.stop - b.start for b in parts), default=0), dtype=dy.dtype)
        totals = np.zeros((2, c), dtype=dy.dtype)  # sum of g, sum of g * xc
        for block in parts:
            part = g_rows[block]
            if y_rows is not None:
                np.multiply(dy_rows[block], y_rows[block] > 0, out=part)
            if sum_dy:
                totals[0] += ones[:len(part)] @ part
            if xc_rows is not None:
                totals[1] += np.einsum("ij,ij->j", part, xc_rows[block])
        return totals

    totals = sum(over_batch(run, g_rows.shape[0], g.size * (2 + (xc is not None))))
    return g, totals[0] if sum_dy else None, None if xc is None else totals[1]


def update_running(running_mean, running_var, mean, var, m: int, momentum: float) -> None:
    """The running estimates moved in place (`reference.norm.batch_norm_running`)."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * m / (m - 1) * var  # unbiased estimate, as PyTorch
