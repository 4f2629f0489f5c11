"""Normalisation: batch, layer and group normalisation, local response normalisation (AlexNet)
and scaled weight standardisation (NF-ResNets).

Batch, layer and group normalisation and weight standardisation are one computation over
different axes: standardise x to x_hat = (x - mean) / sqrt(var + eps), then scale and shift.
Layer and group normalisation and weight standardisation share the op `Normalize` and its compact
backward; batch normalisation, the one on every convolutional network's hot path, has its own op
specialised to the (positions, channels) matrix of channels-last data.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..kernels import norm as kernels
from ..tensor import Op, Tensor, as_tensor, unbroadcast

__all__ = [
    "batch_norm",
    "group_norm",
    "layer_norm",
    "local_response_norm",
    "weight_standardize",
]


def _mean(a: np.ndarray, axes: tuple[int, ...], b: np.ndarray | None = None) -> np.ndarray:
    """Mean of a (or of a * b) over `axes`, keeping them. A matrix reduced along one axis, the
    batch norm case, uses a BLAS matrix-vector product or einsum: several times faster than
    ndarray.mean, and no temporary for the product."""
    if a.ndim == 2 and len(axes) == 1:
        axis = axes[0] % 2
        n = a.shape[axis]
        if b is None:
            weights = np.full(n, 1 / n, dtype=a.dtype)
            total = weights @ a if axis == 0 else a @ weights
        else:
            total = np.einsum("ij,ij->j" if axis == 0 else "ij,ij->i", a, b) / n
        return np.expand_dims(total, axis)
    return np.mean(a if b is None else a * b, axis=axes, keepdims=True)


class Normalize(Op):
    """x_hat = (x - mean) / sqrt(var + eps) with the statistics of x over `axes`, then
    y = x_hat * gamma + beta (gamma and beta broadcast against x; either may be None)."""

    def forward(self, x, gamma, beta, axes, eps):
        xc = x - _mean(x, axes)
        var = _mean(xc, axes, xc)  # biased, as every framework normalises
        # Backward needs only x_hat and inv_std (and gamma, an input): the compact formula.
        self.inv_std = 1 / np.sqrt(var + eps)
        self.xhat = xc
        self.xhat *= self.inv_std
        self.gamma, self.axes, self.beta_shape = gamma, axes, None if beta is None else beta.shape
        if gamma is None:
            return self.xhat if beta is None else self.xhat + beta
        y = self.xhat * gamma
        if beta is not None:
            y += beta
        return y

    def backward(self, dy):
        xhat, gamma, axes = self.xhat, self.gamma, self.axes
        dx = dgamma = dbeta = None
        if self.needs_grad[1]:
            dgamma = unbroadcast(dy * xhat, gamma.shape)
        if self.needs_grad[2]:
            dbeta = unbroadcast(dy, self.beta_shape)
        if self.needs_grad[0]:
            # x_hat depends on x through the mean and the variance too. Differentiating
            # x_hat = (x - mu) * inv_std over the m elements that share the statistics gives
            # dx = inv_std * (dxhat - mean(dxhat) - x_hat * mean(dxhat * x_hat)).
            dxhat = dy if gamma is None else dy * gamma
            dx = xhat * -_mean(dxhat, axes, xhat)
            dx += dxhat
            dx -= _mean(dxhat, axes)
            dx *= self.inv_std
        return dx, dgamma, dbeta


class BatchNorm(Op):
    """Batch normalisation of channels-last x: `reference.norm.batch_norm_train` (the batch's
    statistics) or `batch_norm_eval` (the running ones), with their gradients; the kernels in
    `striate.kernels.norm`. A residual and a ReLU, when given, end it in the same pass
    (`striate.fused.batch_norm_add_relu`)."""

    def forward(self, x, gamma, beta, residual, running_mean, running_var, training, momentum,
                eps, relu):
        mean, var = (None, None) if training else (running_mean, running_var)
        self.relu = relu
        y, self.saved = kernels.forward(x, gamma, beta, mean, var, eps, residual, relu,
                                        keep_x=self.needs_grad[1])
        if training and running_mean is not None:
            kernels.update_running(running_mean, running_var, self.saved.mean, self.saved.var,
                                   x.size // x.shape[-1], momentum)
        return y

    def backward(self, dy):
        need_dx, need_dgamma, need_dbeta, need_dresidual = self.needs_grad
        dx, dgamma, dbeta, g = kernels.backward(dy, self.saved, need_dx, need_dgamma, need_dbeta)
        return dx, dgamma, dbeta, g if need_dresidual else None


def _channel_vector(op: str, name: str, value, channels: int):
    """gamma/beta-like argument: None, or a Tensor of shape (channels,)."""
    if value is None:
        return None
    value = as_tensor(value)
    if value.shape != (channels,):
        raise ValueError(f"{op}: {name} must have shape ({channels},), got {value.shape}")
    return value


def _non_negative(op: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{op}: {name} must be a non-negative number, got {value!r}")
    return float(value)


def _running_stat(name: str, value, channels: int) -> np.ndarray:
    """A running statistic: a floating ndarray of shape (channels,), updated in place."""
    array = value.data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError(
            f"batch_norm: {name} must be a floating ndarray (it is updated in place), "
            f"got {type(value).__name__}"
        )
    if array.shape != (channels,):
        raise ValueError(f"batch_norm: {name} must have shape ({channels},), got {array.shape}")
    return array


def check_batch_norm(op, x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """The validated arguments of a batch norm (`batch_norm`, and the fused ops that end one)."""
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must be (N, ..., C), got shape {x.shape}")
    channels = x.shape[-1]
    if channels == 0:
        raise ValueError(f"{op}: x has no channels (shape {x.shape})")
    gamma = _channel_vector(op, "gamma", gamma, channels)
    beta = _channel_vector(op, "beta", beta, channels)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if running_mean is not None:
        running_mean = _running_stat("running_mean", running_mean, channels)
        running_var = _running_stat("running_var", running_var, channels)
    elif not training:
        raise ValueError(
            f"{op}: evaluation (training=False) needs running_mean and running_var"
        )
    if training and x.size // channels < 2:
        raise ValueError(
            f"{op}: training needs more than one value per channel, got input shape "
            f"{x.shape}"
        )
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) \
            or not 0 <= momentum <= 1:
        raise ValueError(f"{op}: momentum must be in [0, 1], got {momentum!r}")
    return x, gamma, beta, dict(running_mean=running_mean, running_var=running_var,
                                training=bool(training), momentum=float(momentum),
                                eps=_non_negative(op, "eps", eps))


def batch_norm(
    x,
    gamma=None,
    beta=None,
    running_mean=None,
    running_var=None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over every axis but the last (channels-last).

    y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel. In training the statistics
    are the batch's (biased variance) and the running estimates move in place:
    running = (1 - momentum) * running + momentum * batch (unbiased variance, PyTorch's rule;
    Keras's momentum 0.99 is momentum 0.01 here). In evaluation the running estimates are used.
    The definition and its gradients, with the formulas: `striate.reference.norm`
    (`batch_norm_train`, `batch_norm_eval` and their `_grad`s).

    x: (N, ..., C); gamma, beta: (C,) or None; running_mean, running_var: (C,) ndarrays or
    None (training only). Returns the shape of x.

    >>> batch_norm(np.random.randn(8, 4, 4, 3), np.ones(3), np.zeros(3)).shape
    (8, 4, 4, 3)
    """
    x, gamma, beta, options = check_batch_norm("batch_norm", x, gamma, beta, running_mean,
                                               running_var, training, momentum, eps)
    return BatchNorm.apply(x, gamma, beta, None, relu=False, **options)


def layer_norm(x, gamma=None, beta=None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last axis, separately for every position.

    y = (x - mean) / sqrt(var + eps) * gamma + beta, mean and (biased) var over the last axis.

    x: (..., C); gamma, beta: (C,) or None. Returns the shape of x.

    >>> layer_norm(np.random.randn(2, 7, 16), np.ones(16), np.zeros(16)).shape
    (2, 7, 16)
    """
    x = as_tensor(x)
    if x.ndim < 1:
        raise ValueError(f"layer_norm: x must have at least one axis, got shape {x.shape}")
    gamma = _channel_vector("layer_norm", "gamma", gamma, x.shape[-1])
    beta = _channel_vector("layer_norm", "beta", beta, x.shape[-1])
    return Normalize.apply(x, gamma, beta, axes=(-1,), eps=_non_negative("layer_norm", "eps", eps))


def group_norm(x, groups: int, gamma=None, beta=None, eps: float = 1e-5) -> Tensor:
    """Group normalisation: statistics per sample over the spatial axes and a group of channels.

    The C channels split into `groups` consecutive groups of C/groups; each (sample, group) is
    standardised over its spatial positions and channels, then y = x_hat * gamma + beta per channel.
    groups=1 normalises whole samples; groups=C is instance normalisation.

    x: (N, ..., C) with C divisible by groups; gamma, beta: (C,) or None. Returns the shape of x.

    >>> group_norm(np.random.randn(2, 5, 5, 8), 4).shape
    (2, 5, 5, 8)
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"group_norm: x must be (N, ..., C), got shape {x.shape}")
    n, channels = x.shape[0], x.shape[-1]
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1 \
            or channels % groups:
        raise ValueError(
            f"group_norm: groups must be a positive divisor of the {channels} channels, "
            f"got {groups!r}"
        )
    gamma = _channel_vector("group_norm", "gamma", gamma, channels)
    beta = _channel_vector("group_norm", "beta", beta, channels)
    per_group = (groups, channels // groups)
    y = Normalize.apply(
        x.reshape(n, -1, *per_group),  # (N, positions, G, C/G)
        None if gamma is None else gamma.reshape(per_group),
        None if beta is None else beta.reshape(per_group),
        axes=(1, 3),
        eps=_non_negative("group_norm", "eps", eps),
    )
    return y.reshape(x.shape)


def weight_standardize(w, gain=None, eps: float = 1e-6) -> Tensor:
    """Scaled weight standardisation (NF-ResNets): each output channel's weights get zero mean
    and variance 1/fan_in, times a learnable gain.

    w_hat = gain * (w - mean) / (sqrt(var + eps) * sqrt(fan_in)), mean and (biased) var over
    every axis but the last; fan_in = product of those axes (as timm's ScaledStdConv2d).
    Brock et al. 2021, https://arxiv.org/abs/2101.08692

    w: (*kernel, C_in/groups, C_out) (or (in, out) for a dense layer); gain: (C_out,) or None.
    Returns the shape of w.

    >>> weight_standardize(np.random.randn(3, 3, 16, 32), np.ones(32)).shape
    (3, 3, 16, 32)
    """
    w = as_tensor(w)
    if w.ndim < 2:
        raise ValueError(f"weight_standardize: w must be (..., C_in, C_out), got shape {w.shape}")
    gain = _channel_vector("weight_standardize", "gain", gain, w.shape[-1])
    scale = np.asarray(1 / math.sqrt(w.size // w.shape[-1]), dtype=w.dtype)  # 1/sqrt(fan_in)
    gamma = scale if gain is None else gain * scale
    return Normalize.apply(
        w, gamma, None, axes=tuple(range(w.ndim - 1)),
        eps=_non_negative("weight_standardize", "eps", eps),
    )


# ===== local response normalisation ============================================================
def _window_sum(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """s[..., c] = sum of a[..., c - before : c + after + 1] over the last axis (zero outside)."""
    pads = [(0, 0)] * (a.ndim - 1) + [(before, after)]
    padded = np.pad(a, pads)
    channels = a.shape[-1]
    s = padded[..., :channels].copy()
    for offset in range(1, before + after + 1):  # the window is a few channels: slice-adds
        s += padded[..., offset:offset + channels]
    return s


class LocalResponseNorm(Op):
    def forward(self, x, size, alpha, beta, k):
        before, after = size // 2, (size - 1) // 2
        # d = k + alpha/size * sum of squares over the window of channels around c.
        d = k + (alpha / size) * _window_sum(x * x, before, after)
        self.x, self.d, self.params = x, d, (size, alpha, beta)
        return x * d**-beta

    def backward(self, dy):
        x, d = self.x, self.d
        size, alpha, beta = self.params
        scale = d**-beta
        # y_c = x_c d_c^-beta and d_c depends on x_j for every j in c's window, so
        # dx_j = dy_j d_j^-beta - (2 alpha beta / size) x_j sum_{c: j in window(c)} dy_c y_c / d_c,
        # the sum running over the mirrored window.
        back = _window_sum(dy * x * scale / d, (size - 1) // 2, size // 2)
        return (dy * scale - (2 * alpha * beta / size) * x * back,)


def local_response_norm(x, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
    """Local response normalisation across channels (AlexNet), with PyTorch's definition.

    y_c = x_c / (k + alpha/size * sum_{c'} x_{c'}^2)^beta, c' from c - size//2 to
    c + (size-1)//2 (channels outside [0, C) count as zero).

    Note that alpha is divided by the window size. AlexNet's paper writes the sum without the
    division, with k=2, n=5, alpha=1e-4, beta=0.75: the same layer here is
    local_response_norm(x, size=5, alpha=5e-4, beta=0.75, k=2.0) (alpha = 1e-4 * 5).

    x: (N, ..., C). Returns the shape of x.

    >>> local_response_norm(np.random.randn(2, 27, 27, 96), 5, alpha=5e-4, k=2.0).shape
    (2, 27, 27, 96)
    """
    x = as_tensor(x)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    if x.ndim < 2:
        raise ValueError(f"local_response_norm: x must be (N, ..., C), got shape {x.shape}")
    for name, value in (("alpha", alpha), ("beta", beta), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"local_response_norm: {name} must be a real number, got {value!r}")
    return LocalResponseNorm.apply(
        x, size=int(size), alpha=float(alpha), beta=float(beta), k=float(k)
    )
