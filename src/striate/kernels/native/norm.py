"""The per-channel pass and batch normalisation, forward and backward: the wrappers of the
compiled kernels."""

from __future__ import annotations

import numpy as np

from .boundary import _DTYPES, _array, _native, _need, _output, _rows, _shape


# ===== per-channel passes ======================================================================
def _vector(op: str, name: str, v, c: int, dtype) -> np.ndarray | None:
    """A per-channel vector (C,) as a contiguous array of dtype, or None."""
    if v is None:
        return None
    v = np.asarray(v)
    if v.shape != (c,):
        raise ValueError(f"{op}: {name} must have shape ({c},), got {v.shape}")
    return np.ascontiguousarray(v, dtype=dtype)


def _sums(dt: int, m: int, c: int, x=None, y=None, dy=None, center=None) -> np.ndarray:
    """(2, C) float64: the sums of `channel_sums` over all m rows, each part's added up."""
    rows = _rows(m, m * c)
    sums = np.empty((rows[2], 2, c), dtype=np.float64)
    _native.channel_sums(dt, x, y, dy, center, sums, m, c, *rows)
    return sums.sum(axis=0)


def _map(dt, m, c, x, out, center=None, scale=None, shift=None, residual=None, relu=False):
    _native.channel_map(dt, x, center, scale, shift, residual, bool(relu), out, m, c,
                        *_rows(m, m * c))


def _grad(dt, m, c, dy, y=None, x=None, center=None, scale=None, offset=None, slope=None,
          dx=None, dres=None):
    _native.channel_grad(dt, dy, y, x, center, scale, offset, slope, dx, dres, m, c,
                         *_rows(m, m * c))


def _channels_last(op: str, x: np.ndarray) -> tuple[int, int]:
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"{op}: x must have a channel axis (..., C), got shape {x.shape}")
    return x.size // x.shape[-1], x.shape[-1]


def _residual(op, residual, x):
    if residual is not None:
        _shape(op, "residual", _array(op, "residual", residual, x.dtype), x.shape)
    return residual


def channel_map(x: np.ndarray, scale=None, shift=None, residual=None, relu: bool = False,
                out: np.ndarray | None = None) -> np.ndarray:
    """The per-channel pass that follows a convolution (its bias, an evaluation batch norm, a
    ResNet block's shortcut), in one pass:

    y[..., c] = max(0, x[..., c] * scale[c] + shift[c] + residual[..., c])   (max if relu)

    x, residual: (..., C); scale, shift: (C,) or None (1 and 0). out may be x (in place).
    Returns an array like x.
    """
    op = "native.channel_map"
    _need()
    x = _array(op, "x", x)
    m, c = _channels_last(op, x)
    scale, shift = _vector(op, "scale", scale, c, x.dtype), _vector(op, "shift", shift, c, x.dtype)
    residual = _residual(op, residual, x)
    y = _output(op, "out", out, x.shape, x.dtype, (x, residual), may_alias=(x,))
    _map(_DTYPES[x.dtype], m, c, x, y, None, scale, shift, residual, relu)
    return y


def channel_map_backward(dy: np.ndarray, x: np.ndarray | None = None, scale=None,
                         y: np.ndarray | None = None, need_dx: bool = True,
                         need_dscale: bool = False, need_dshift: bool = False,
                         need_dresidual: bool = False):
    """Gradients of `channel_map`, with g = dy * (y > 0) if y (its output with relu) is given,
    else dy:

    dx = g * scale;  dscale[c] = sum g[..., c] x[..., c];  dshift[c] = sum g[..., c];
    dresidual = g.

    x is needed for dscale only. Returns (dx, dscale, dshift, dresidual), None where not asked.
    """
    op = "native.channel_map_backward"
    _need()
    dy = _array(op, "dy", dy)
    m, c = _channels_last(op, dy)
    if y is not None:
        _shape(op, "y", _array(op, "y", y, dy.dtype), dy.shape)
    if need_dscale:
        if x is None:
            raise ValueError(f"{op}: the gradient of scale needs x")
        _shape(op, "x", _array(op, "x", x, dy.dtype), dy.shape)
    scale = _vector(op, "scale", scale, c, dy.dtype)
    dt = _DTYPES[dy.dtype]
    dx = np.empty(dy.shape, dy.dtype) if need_dx else None
    dres = np.empty(dy.shape, dy.dtype) if need_dresidual else None
    dscale = dshift = None
    if need_dscale or need_dshift:
        s = _sums(dt, m, c, x=x if need_dscale else None, y=y, dy=dy)
        dshift = s[0].astype(dy.dtype) if need_dshift else None
        dscale = s[1].astype(dy.dtype) if need_dscale else None
    if need_dx or need_dresidual:
        _grad(dt, m, c, dy, y, scale=scale, dx=dx, dres=dres)
    return dx, dscale, dshift, dres


def batch_norm_train(x: np.ndarray, gamma=None, beta=None, eps: float = 1e-5, residual=None,
                     relu: bool = False, out: np.ndarray | None = None):
    """Batch normalisation with the batch's statistics, computing
    `striate.reference.norm.batch_norm_train`, plus a residual and a ReLU in the same pass:

    mean[c] = (1/m) sum_i x[i, c];  var[c] = (1/m) sum_i (x[i, c] - mean[c])^2   (biased)
    y = max(0, (x - mean) * gamma / sqrt(var + eps) + beta + residual)        (max if relu)

    i runs over the m = N * positions values of channel c. x, residual: (..., C); gamma, beta:
    (C,) or None. Returns (y, mean, var, inv_std), the last three (C,) of x's dtype,
    inv_std = 1 / sqrt(var + eps). The running statistics are the caller's.
    """
    op = "native.batch_norm_train"
    _need()
    x = _array(op, "x", x)
    m, c = _channels_last(op, x)
    if m == 0:
        raise ValueError(f"{op}: x has no values per channel (shape {x.shape})")
    dt = _DTYPES[x.dtype]
    gamma, beta = _vector(op, "gamma", gamma, c, x.dtype), _vector(op, "beta", beta, c, x.dtype)
    residual = _residual(op, residual, x)
    y = _output(op, "out", out, x.shape, x.dtype, (x, residual), may_alias=(x,))
    # Sums of x - s, s = the first row: one pass, accumulated in double, and no cancellation
    # as long as s is a value of the channel (it is near the mean on the scale of the spread).
    shift = x.reshape(m, c)[0].copy()
    s = _sums(dt, m, c, x=x, center=shift)
    d = s[0] / m
    mean = (shift + d).astype(x.dtype)
    var = np.maximum(s[1] / m - d * d, 0).astype(x.dtype)
    inv_std = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype)
    scale = inv_std if gamma is None else gamma * inv_std
    _map(dt, m, c, x, y, mean, scale, beta, residual, relu)
    return y, mean, var, inv_std


def batch_norm_eval(x: np.ndarray, mean, var, gamma=None, beta=None, eps: float = 1e-5,
                    residual=None, relu: bool = False, out: np.ndarray | None = None):
    """Batch normalisation with fixed statistics (`striate.reference.norm.batch_norm_eval`),
    plus a residual and a ReLU: y = max(0, x * scale + shift + residual) with
    scale = gamma / sqrt(var + eps), shift = beta - mean * scale. Returns an array like x."""
    op = "native.batch_norm_eval"
    _need()
    x = _array(op, "x", x)
    m, c = _channels_last(op, x)
    mean, var = _vector(op, "mean", mean, c, x.dtype), _vector(op, "var", var, c, x.dtype)
    if mean is None or var is None:
        raise ValueError(f"{op}: mean and var are required")
    gamma, beta = _vector(op, "gamma", gamma, c, x.dtype), _vector(op, "beta", beta, c, x.dtype)
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    scale = inv_std if gamma is None else gamma * inv_std
    shift = -mean * scale if beta is None else beta - mean * scale
    residual = _residual(op, residual, x)
    y = _output(op, "out", out, x.shape, x.dtype, (x, residual), may_alias=(x,))
    _map(_DTYPES[x.dtype], m, c, x, y, None, scale, shift, residual, relu)
    return y


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, mean, inv_std, gamma=None,
                        y: np.ndarray | None = None, training: bool = True,
                        need_dx: bool = True, need_dgamma: bool = True, need_dbeta: bool = True,
                        need_dresidual: bool = False, dx_out: np.ndarray | None = None):
    """Gradients of `batch_norm_train` (training) or `batch_norm_eval`, with g = dy * (y > 0)
    if y (the output with relu) is given, else dy; computing
    `striate.reference.norm.batch_norm_train_grad` / `batch_norm_eval_grad`:

    dbeta[c] = sum_i g[i, c];  dgamma[c] = inv_std[c] * sum_i g[i, c] (x[i, c] - mean[c])
    training:   dx = gamma * inv_std * (g - dbeta/m - (x - mean) * inv_std * dgamma/m)
    evaluation: dx = gamma * inv_std * g;          dresidual = g

    dy, x, y: (..., C); mean, inv_std (from the forward), gamma: (C,).
    Returns (dx, dgamma, dbeta, dresidual), None for each one not asked for; dx written into
    dx_out when given (it may be dy itself: each element is read before it is written).
    """
    op = "native.batch_norm_backward"
    _need()
    x = _array(op, "x", x)
    m, c = _channels_last(op, x)
    _shape(op, "dy", _array(op, "dy", dy, x.dtype), x.shape)
    if y is not None:
        _shape(op, "y", _array(op, "y", y, x.dtype), x.shape)
    mean = _vector(op, "mean", mean, c, x.dtype)
    inv_std = _vector(op, "inv_std", inv_std, c, x.dtype)
    if mean is None or inv_std is None:
        raise ValueError(f"{op}: mean and inv_std are required")
    gamma = _vector(op, "gamma", gamma, c, x.dtype)
    dt = _DTYPES[x.dtype]
    scale = inv_std if gamma is None else gamma * inv_std
    through_stats = training and need_dx
    dgamma = dbeta = None
    sum_g = sum_gxc = None
    if need_dgamma or need_dbeta or through_stats:
        s = _sums(dt, m, c, x=x if need_dgamma or through_stats else None, y=y, dy=dy,
                  center=mean)
        sum_g, sum_gxc = s[0], s[1]
        dbeta = sum_g.astype(x.dtype) if need_dbeta else None
        dgamma = (sum_gxc * inv_std).astype(x.dtype) if need_dgamma else None
    dx = _output(op, "dx_out", dx_out, x.shape, x.dtype, (x, dy, y), may_alias=(dy,)) \
        if need_dx else None
    dres = np.empty(x.shape, x.dtype) if need_dresidual else None
    if need_dx or need_dresidual:
        if through_stats:
            offset = (sum_g / m).astype(x.dtype)
            slope = (inv_std.astype(np.float64) ** 2 * sum_gxc / m).astype(x.dtype)
            _grad(dt, m, c, dy, y, x, mean, scale, offset, slope, dx, dres)
        else:
            _grad(dt, m, c, dy, y, scale=scale, dx=dx, dres=dres)
    return dx, dgamma, dbeta, dres
