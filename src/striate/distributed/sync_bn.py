"""Synchronised batch normalisation: the statistics of the global batch, over every process.

Batch norm in training normalises with the batch's mean and variance. In a data-parallel run
each process holds only its share of the batch; per-rank statistics (plain `nn.BatchNorm`)
normalise with a smaller, different batch, which is a different model: not equivalent to the
single-process run, and worse at small shares. `SyncBatchNorm` makes one allreduce of
[sum x, sum x^2, count] per channel forward and one of [sum dy, sum dy * x_hat] backward, so
the forward, the running statistics and every gradient are those of the global batch.

Forward, with M the count over all processes and the sums over all of them:
    mean = sum x / M,  var = sum x^2 / M - mean^2  (combined in float64; see the op),
    x_hat = (x - mean) / sqrt(var + eps),  y = gamma * x_hat + beta.
Backward (the compact formula of `striate.functional.batch_norm`, with global means):
    dx = gamma / sqrt(var + eps) * (dy - sum dy / M - x_hat * sum(dy * x_hat) / M),
    dgamma = sum(dy * x_hat) and dbeta = sum dy over this process's share (the optimizer sums
    them over the processes with the other gradients).
"""

from __future__ import annotations

import numpy as np

from ..nn import BatchNorm
from ..tensor import Op
from .comm import Communicator, init

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm", "sync_batch_norm"]


def _column_sums(matrix: np.ndarray) -> np.ndarray:
    """Sum over the rows of an (M, C) matrix: a BLAS product, several times ndarray.sum's speed."""
    return np.ones(matrix.shape[0], dtype=matrix.dtype) @ matrix


class SyncBatchNormOp(Op):
    """Batch norm in training over the union of every process's x (see the module docstring).

    Each process centres its share on its own mean m_r first (float32 sums of values near 0
    lose nothing to cancellation) and sends sum x = n m_r + sum xc and
    sum x^2 = n m_r^2 + 2 m_r sum xc + sum xc^2, combined in float64, with xc = x - m_r. The
    output is then one per-channel map of xc: y = xc * scale + shift.
    """

    def forward(self, x, gamma, beta, running_mean, running_var, comm, momentum, eps):
        c = x.shape[-1]
        matrix = x.reshape(-1, c)  # (M_r, C)
        n = matrix.shape[0]
        local_mean = _column_sums(matrix) / max(n, 1)  # (C,), x's dtype
        xc = matrix - local_mean  # (M_r, C)
        sum_xc = _column_sums(xc).astype(np.float64)
        sum_xc2 = np.einsum("ij,ij->j", xc, xc).astype(np.float64)
        m_r = local_mean.astype(np.float64)
        sums = np.concatenate([n * m_r + sum_xc, n * m_r * m_r + 2 * m_r * sum_xc + sum_xc2,
                               [n]])  # sum x, sum x^2, count: one message
        comm.allreduce_(sums)
        m = sums[2 * c]
        mean = sums[:c] / m
        var = np.maximum(sums[c:2 * c] / m - mean * mean, 0.0)  # biased: what normalises
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (m / max(m - 1, 1))  # unbiased, as PyTorch
        inv_std = 1 / np.sqrt(var + eps)
        delta = mean - m_r  # x - mean = xc - delta
        scale = inv_std if gamma is None else gamma * inv_std
        shift = -delta * scale if beta is None else beta - delta * scale
        # Backward needs xc, delta, 1/std, the scale and the global count.
        self.xc, self.m = xc, m
        self.delta, self.inv_std, self.scale = (a.astype(x.dtype) for a in (delta, inv_std,
                                                                             scale))
        self.comm = comm
        y = xc * self.scale
        y += shift.astype(x.dtype)
        return y.reshape(x.shape)

    def backward(self, dy):
        c = dy.shape[-1]
        dy_m, xc = dy.reshape(-1, c), self.xc
        # this process's sum dy and sum dy * x_hat, x_hat = (xc - delta) / std
        sum_dy = _column_sums(dy_m).astype(np.float64)
        sum_dy_xc = np.einsum("ij,ij->j", dy_m, xc).astype(np.float64)
        inv_std, delta = self.inv_std.astype(np.float64), self.delta.astype(np.float64)
        sums = np.concatenate([sum_dy, inv_std * (sum_dy_xc - delta * sum_dy)])
        dgamma = sums[c:].astype(dy.dtype) if self.needs_grad[1] else None
        dbeta = sums[:c].astype(dy.dtype) if self.needs_grad[2] else None
        dx = None
        if self.needs_grad[0]:
            self.comm.allreduce_(sums)  # the global sums, for the statistics' share of dx
            mean_dy, mean_dy_xhat = sums[:c] / self.m, sums[c:] / self.m
            # dx = scale * (dy - mean_dy - x_hat * mean_dy_xhat), x_hat = (xc - delta) * inv_std:
            # a per-channel dy * a + xc * b + d
            scale = self.scale.astype(np.float64)
            b = -scale * inv_std * mean_dy_xhat
            d = -scale * mean_dy - b * delta
            dx = dy_m * self.scale
            dx += xc * b.astype(dy.dtype)
            dx += d.astype(dy.dtype)
            dx = dx.reshape(dy.shape)
        return dx, dgamma, dbeta


def sync_batch_norm(x, gamma=None, beta=None, running_mean=None, running_var=None,
                    comm: Communicator | None = None, momentum: float = 0.1,
                    eps: float = 1e-5):
    """Batch normalisation in training with the statistics of every process's x together.

    x: (N_r, ..., C), this process's share; gamma, beta: (C,) or None; running_mean and
    running_var: (C,) arrays updated in place with the global statistics (the variance
    unbiased over the global count), or None. Returns x's shape. One allreduce forward and,
    when x needs a gradient, one backward; every process must call it in the same order.

    >>> sync_batch_norm(np.random.default_rng(0).standard_normal((8, 4, 4, 3))).shape
    (8, 4, 4, 3)
    """
    comm = comm if comm is not None else init()
    return SyncBatchNormOp.apply(x, gamma, beta, running_mean=running_mean,
                                 running_var=running_var, comm=comm, momentum=momentum,
                                 eps=eps)


class SyncBatchNorm(BatchNorm):
    """`nn.BatchNorm` whose training statistics are the global batch's, `sync_batch_norm`.

    Same parameters, buffers and state-dict names as BatchNorm, so checkpoints are
    interchangeable; evaluation (running statistics, no communication) is BatchNorm's. Usually
    made by `convert_sync_batchnorm(model)`.
    """

    comm: Communicator | None = None

    @property
    def fusable(self) -> bool:
        """False in training: the fused ops of `striate.fused` (conv_bn, conv_bn_add_relu, ...)
        then call this layer instead of computing a per-process batch norm inside their own
        pass. In evaluation (running statistics, nothing to synchronise) they fuse it as
        they fuse BatchNorm."""
        return not self.training

    def forward(self, x, *args, **kwargs):
        if not self.training:
            return super().forward(x, *args, **kwargs)
        self._ensure_built(x)
        if x.ndim < 2 or x.shape[-1] != self.running_mean.shape[0]:
            raise ValueError(f"{self.label}: expected an input (N, ..., "
                             f"{self.running_mean.shape[0]}), got shape {tuple(x.shape)}")
        y = sync_batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            self.comm, self.momentum, self.eps)
        residual = args[0] if args else kwargs.get("residual")
        if residual is not None:  # BatchNorm's optional ending: relu(bn(x) + residual)
            y = y + residual
        if getattr(self, "relu", False):
            from ..functional import relu

            y = relu(y)
        return y


def convert_sync_batchnorm(model, comm: Communicator | None = None):
    """Make every `nn.BatchNorm` of `model` a `SyncBatchNorm` over `comm`, in place; returns
    the model. Parameters, buffers and references to the layers are kept.

    >>> from striate import nn
    >>> model = convert_sync_batchnorm(nn.Sequential(nn.Conv2D(4, 3), nn.BatchNorm()))
    >>> type(model[1]).__name__
    'SyncBatchNorm'
    """
    comm = comm if comm is not None else init()
    for module in model.modules():
        if type(module) is BatchNorm:
            module.__class__ = SyncBatchNorm
        if isinstance(module, SyncBatchNorm):
            object.__setattr__(module, "comm", comm)
    return model
