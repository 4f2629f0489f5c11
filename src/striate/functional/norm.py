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

from .._parallel import BLOCK_BYTES, blocks, by_blocks, over_batch
from ..tensor import Op, Tensor, as_tensor, unbroadcast
from .activation import ChannelMap, channel_rows

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
    """Batch normalisation of channels-last x, each channel's statistics over the column of
    the (M, C) matrix view of x, M = N * positions.

    The normalisation and the affine map are one per-channel map y = xc * scale + beta, with
    xc = x - mean and scale = gamma * inv_std, so x_hat is never stored: backward rebuilds what
    it needs from xc. Every per-channel sum is a BLAS product (`_mean`); the elementwise passes
    run along rows of W*C values (`channel_rows`). Training makes five passes over x forward
    and six backward; evaluation, where the statistics are constants, two:
    y = x * scale + shift. A residual (a ResNet block's shortcut) is added and the ReLU taken,
    y = max(0, . + residual), on each block while it is in cache: an add and a ReLU of their
    own would each read and write all of y again. Backward then routes dy where y > 0 first;
    the residual's gradient is that routed dy.
    """

    def forward(self, x, gamma, beta, residual, running_mean, running_var, training, momentum,
                eps, relu):
        self.training = training
        matrix = x.reshape(-1, x.shape[-1])  # (M, C)
        if training:
            mean = _mean(matrix, (0,))[0]  # (C,)
            rows, mean_rows = channel_rows(x, mean)
            xc = np.empty(x.shape, dtype=x.dtype)
            xc_rows = xc.reshape(rows.shape)
            by_blocks(lambda block: np.subtract(rows[block], mean_rows, out=xc_rows[block]),
                      rows)
            xc_matrix = xc.reshape(matrix.shape)
            var = _mean(xc_matrix, (0,), xc_matrix)[0]  # (C,), biased: what normalises
            if running_mean is not None:
                m = matrix.shape[0]
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * m / (m - 1) * var  # unbiased estimate, as PyTorch
        else:
            # The running statistics are constants: cast them so float32 stays float32.
            mean = running_mean.astype(x.dtype, copy=False)
            var = running_var.astype(x.dtype, copy=False)
        self.inv_std = 1 / np.sqrt(var + eps)  # (C,)
        self.scale = self.inv_std if gamma is None else gamma * self.inv_std  # (C,)
        if training:
            self.xc = xc
            y = ChannelMap(self.scale, beta, residual, relu).new(xc)
        else:
            # x - mean is needed only for the gradient of gamma: keep x and the mean for it.
            self.x, self.mean = (x, mean) if self.needs_grad[1] else (None, None)
            shift = -mean * self.scale if beta is None else beta - mean * self.scale
            y = ChannelMap(self.scale, shift, residual, relu).new(x)
        self.y = y if relu and any(self.needs_grad) else None  # ReLU's gradient: where y > 0
        return y

    def backward(self, dy):
        m = dy.size // dy.shape[-1]  # positions per channel
        dx_through_stats = self.training and self.needs_grad[0]
        dx = dgamma = dbeta = None
        xc = None
        if self.needs_grad[1] or dx_through_stats:
            xc = self.xc if self.training else self.x - self.mean  # like x
        # dy routed where y > 0 (the ReLU's gradient), and its sums, in one pass
        dy, sum_dy, sum_dy_xc = _routed_sums(dy, self.y, self.needs_grad[2] or dx_through_stats,
                                             xc)
        if sum_dy is not None:
            mean_dy = sum_dy / m  # (C,)
            dbeta = sum_dy if self.needs_grad[2] else None
        if sum_dy_xc is not None:
            mean_dy_xc = sum_dy_xc / m  # (C,)
            dgamma = sum_dy_xc * self.inv_std if self.needs_grad[1] else None
        if dx_through_stats:
            # With dx_hat = dy * gamma, the compact formula of `Normalize.backward`,
            # dx = inv_std * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)),
            # is per channel dx = scale * (dy - mean(dy) - xc * inv_std^2 * mean(dy * xc)).
            xc_rows, slope, mean_dy, scale = channel_rows(
                xc, self.inv_std**2 * mean_dy_xc, mean_dy, self.scale)
            dy_rows = dy.reshape(xc_rows.shape)
            dx = np.empty(xc.shape, dtype=xc.dtype)
            dx_rows = dx.reshape(xc_rows.shape)

            def rows_of_dx(block):
                part = dx_rows[block]
                np.multiply(xc_rows[block], slope, out=part)
                np.subtract(dy_rows[block], part, out=part)
                part -= mean_dy
                part *= scale

            by_blocks(rows_of_dx, dx_rows)
        elif self.needs_grad[0]:
            dx = ChannelMap(self.scale).new(dy)
        return dx, dgamma, dbeta, dy if self.needs_grad[3] else None


def _routed_sums(dy: np.ndarray, y: np.ndarray | None, sum_dy: bool, xc: np.ndarray | None):
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


def batch_norm(
    x,
    gamma=None,
    beta=None,
    running_mean=None,
    running_var=None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    relu: bool = False,
    residual=None,
) -> Tensor:
    """Batch normalisation over every axis but the last (channels-last), plus a residual if
    given, then a ReLU if relu, all in one pass: relu(batch_norm(...) + residual) without the
    passes over the output that an add and a ReLU of their own would take (a ResNet block's
    ending: its shortcut added and the sum rectified).

    y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel. In training the statistics
    are the batch's (biased variance) and the running estimates move in place:
    running = (1 - momentum) * running + momentum * batch (unbiased variance, PyTorch's rule;
    Keras's momentum 0.99 is momentum 0.01 here). In evaluation the running estimates are used.

    x: (N, ..., C); gamma, beta: (C,) or None; running_mean, running_var: (C,) ndarrays or
    None (training only); residual: the shape of x, or None. Returns the shape of x.

    >>> batch_norm(np.random.randn(8, 4, 4, 3), np.ones(3), np.zeros(3)).shape
    (8, 4, 4, 3)
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: x must be (N, ..., C), got shape {x.shape}")
    channels = x.shape[-1]
    if channels == 0:
        raise ValueError(f"batch_norm: x has no channels (shape {x.shape})")
    gamma = _channel_vector("batch_norm", "gamma", gamma, channels)
    beta = _channel_vector("batch_norm", "beta", beta, channels)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    if running_mean is not None:
        running_mean = _running_stat("running_mean", running_mean, channels)
        running_var = _running_stat("running_var", running_var, channels)
    elif not training:
        raise ValueError(
            "batch_norm: evaluation (training=False) needs running_mean and running_var"
        )
    if training and x.size // channels < 2:
        raise ValueError(
            f"batch_norm: training needs more than one value per channel, got input shape "
            f"{x.shape}"
        )
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) \
            or not 0 <= momentum <= 1:
        raise ValueError(f"batch_norm: momentum must be in [0, 1], got {momentum!r}")
    if residual is not None:
        residual = as_tensor(residual)
        if residual.shape != x.shape:
            raise ValueError(f"batch_norm: residual has shape {residual.shape} but x has "
                             f"{x.shape}; they must be equal")
    return BatchNorm.apply(
        x, gamma, beta, residual, running_mean=running_mean, running_var=running_var,
        training=bool(training), momentum=float(momentum),
        eps=_non_negative("batch_norm", "eps", eps), relu=bool(relu),
    )


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
