"""Normalisation as the papers define it: batch normalisation (Ioffe & Szegedy, 2015) and local
response normalisation (AlexNet, with PyTorch's constants).

Data are channels-last, x (N, *spatial, C): batch norm takes each channel's statistics over the
m = N * positions values of that channel, LRN normalises across neighbouring channels.
"""

from __future__ import annotations

import numpy as np


def _per_channel(x: np.ndarray) -> np.ndarray:
    """The (m, C) matrix view of channels-last x: one column per channel."""
    return x.reshape(-1, x.shape[-1])


def _affine(gamma, beta, channels, dtype):
    gamma = np.ones(channels, dtype) if gamma is None else gamma
    beta = np.zeros(channels, dtype) if beta is None else beta
    return gamma, beta


def batch_norm_train(x, gamma, beta, eps):
    """Batch normalisation with the batch's own statistics.

    mean[c] = (1/m) sum_i x[i, c];   var[c] = (1/m) sum_i (x[i, c] - mean[c])^2   (biased)
    x_hat = (x - mean) / sqrt(var + eps);   y = gamma * x_hat + beta

    i runs over the m = N * positions values of channel c. x: (N, ..., C); gamma, beta: (C,)
    or None (1 and 0). Returns (y, mean, var): y like x, mean and var (C,).

    >>> y, mean, var = batch_norm_train(np.array([[1.], [3.]]), None, None, 0.0)
    >>> y.ravel(), mean, var
    (array([-1.,  1.]), array([2.]), array([1.]))
    """
    gamma, beta = _affine(gamma, beta, x.shape[-1], x.dtype)
    mean = _per_channel(x).mean(axis=0)
    var = ((_per_channel(x) - mean) ** 2).mean(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    return gamma * x_hat + beta, mean, var


def batch_norm_train_grad(dy, x, gamma, eps):
    """Gradients of `batch_norm_train`; the statistics depend on x, so dx has three terms.

    dbeta[c] = sum_i dy[i, c];   dgamma[c] = sum_i dy[i, c] x_hat[i, c]
    dx[i, c] = gamma[c] / (m sqrt(var[c] + eps)) * (m dy[i, c] - dbeta[c] - x_hat[i, c] dgamma[c])

    (from x_hat = (x - mean) / sqrt(var + eps): d mean/dx = 1/m, d var/dx = 2 (x - mean) / m).
    Returns (dx, dgamma, dbeta): dx like x, dgamma and dbeta (C,).
    """
    gamma, _ = _affine(gamma, None, x.shape[-1], x.dtype)
    m = x.size // x.shape[-1]
    mean = _per_channel(x).mean(axis=0)
    var = ((_per_channel(x) - mean) ** 2).mean(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    dbeta = _per_channel(dy).sum(axis=0)
    dgamma = _per_channel(dy * x_hat).sum(axis=0)
    dx = gamma / (m * np.sqrt(var + eps)) * (m * dy - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


def batch_norm_running(running_mean, running_var, mean, var, m, momentum):
    """The running estimates after one training step (PyTorch's rule), as new arrays:

    running_mean' = (1 - momentum) running_mean + momentum mean
    running_var'  = (1 - momentum) running_var + momentum * m / (m - 1) * var   (unbiased)

    mean, var: the batch's, from `batch_norm_train`; m: values per channel (N * positions).
    """
    return ((1 - momentum) * running_mean + momentum * mean,
            (1 - momentum) * running_var + momentum * m / (m - 1) * var)


def batch_norm_eval(x, gamma, beta, mean, var, eps):
    """Batch normalisation with fixed statistics (the running estimates, in evaluation).

    y = gamma * (x - mean) / sqrt(var + eps) + beta: a per-channel scale and shift.
    x: (N, ..., C); gamma, beta: (C,) or None; mean, var: (C,). Returns the shape of x.
    """
    gamma, beta = _affine(gamma, beta, x.shape[-1], x.dtype)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def batch_norm_eval_grad(dy, x, gamma, mean, var, eps):
    """Gradients of `batch_norm_eval` (mean and var are constants here):

    dx = dy * gamma / sqrt(var + eps);  dgamma[c] = sum_i dy[i, c] (x[i, c] - mean[c]) /
    sqrt(var[c] + eps);  dbeta[c] = sum_i dy[i, c].   Returns (dx, dgamma, dbeta).
    """
    gamma, _ = _affine(gamma, None, x.shape[-1], x.dtype)
    inv_std = 1 / np.sqrt(var + eps)
    dgamma = _per_channel(dy * (x - mean) * inv_std).sum(axis=0)
    return dy * gamma * inv_std, dgamma, _per_channel(dy).sum(axis=0)


def _lrn_window(c: int, size: int, channels: int) -> slice:
    """Channels c - size//2 .. c + (size-1)//2, cut to [0, C) (PyTorch's window)."""
    return slice(max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1))


def _lrn_denominator(x, size, alpha, k):
    """d[..., c] = k + alpha/size * sum_{c' in window(c)} x[..., c']^2."""
    d = np.empty_like(x)
    for c in range(x.shape[-1]):
        d[..., c] = k + alpha / size * (x[..., _lrn_window(c, size, x.shape[-1])] ** 2).sum(-1)
    return d


def local_response_norm(x, size, alpha, beta, k):
    """Local response normalisation across channels, PyTorch's definition.

    y[..., c] = x[..., c] / d[..., c]^beta,  d[..., c] = k + alpha/size * sum_{c'} x[..., c']^2

    c' from c - size//2 to c + (size-1)//2 (channels outside [0, C) count as zero). alpha is
    divided by the window size: AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75) is size=5,
    alpha=5e-4 here. x: (N, ..., C). Returns the shape of x.

    >>> local_response_norm(np.ones((1, 3)), 3, 3.0, 1.0, 1.0)
    array([[0.33333333, 0.25      , 0.33333333]])
    """
    return x * _lrn_denominator(x, size, alpha, k) ** -beta


def local_response_norm_dx(dy, x, size, alpha, beta, k):
    """Gradient of `local_response_norm`: d[c] depends on every x[j] in c's window, so

    dx[j] = dy[j] d[j]^-beta - (2 alpha beta / size) x[j] sum_{c: j in window(c)} dy[c] x[c]
    d[c]^(-beta-1).
    """
    d = _lrn_denominator(x, size, alpha, k)
    g = dy * x * d ** (-beta - 1)
    dx = dy * d**-beta
    for c in range(x.shape[-1]):
        dx[..., _lrn_window(c, size, x.shape[-1])] -= (2 * alpha * beta / size) \
            * x[..., _lrn_window(c, size, x.shape[-1])] * g[..., c:c + 1]
    return dx
