"""Activations as the lectures define them, each with its derivative: dx = dy * f'(x).

Every function is elementwise (softmax and log_softmax along one axis); x any shape, the result
the same shape. Where f' jumps (ReLU at 0), the value at the jump is PyTorch's.
"""

from __future__ import annotations

import math

import numpy as np


def relu(x):
    """y = max(0, x).

    >>> relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """
    return np.maximum(x, 0)


def relu_dx(dy, x):
    """dx = dy where x > 0, else 0 (also at x = 0)."""
    return dy * (x > 0)


def leaky_relu(x, negative_slope=0.01):
    """y = x if x > 0 else negative_slope * x."""
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_dx(dy, x, negative_slope=0.01):
    """dx = dy if x > 0 else negative_slope * dy."""
    return np.where(x > 0, dy, negative_slope * dy)


def elu(x, alpha=1.0):
    """y = x if x > 0 else alpha * (exp(x) - 1)."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_dx(dy, x, alpha=1.0):
    """dx = dy if x > 0 else dy * alpha * exp(x)."""
    return np.where(x > 0, dy, dy * alpha * np.exp(np.minimum(x, 0)))


def relu6(x):
    """y = min(max(0, x), 6)."""
    return np.clip(x, 0, 6)


def relu6_dx(dy, x):
    """dx = dy where 0 < x < 6, else 0."""
    return dy * ((x > 0) & (x < 6))


def sigmoid(x):
    """y = 1 / (1 + exp(-x)), written as exp(x) / (1 + exp(x)) for x < 0 so exp never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_dx(dy, x):
    """dx = dy * y * (1 - y), y = sigmoid(x)."""
    y = sigmoid(x)
    return dy * y * (1 - y)


def tanh(x):
    """y = tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))."""
    return np.tanh(x)


def tanh_dx(dy, x):
    """dx = dy * (1 - tanh(x)^2)."""
    return dy * (1 - np.tanh(x) ** 2)


def silu(x):
    """y = x * sigmoid(x) (swish)."""
    return x * sigmoid(x)


def silu_dx(dy, x):
    """dx = dy * s * (1 + x (1 - s)), s = sigmoid(x)."""
    s = sigmoid(x)
    return dy * s * (1 + x * (1 - s))


def softplus(x, beta=1.0, threshold=20.0):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (PyTorch's rule)."""
    return np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta)


def softplus_dx(dy, x, beta=1.0, threshold=20.0):
    """dx = dy * sigmoid(beta x), and dy where beta x > threshold."""
    return np.where(beta * x > threshold, dy, dy * sigmoid(beta * x))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x, approximate="none"):
    """y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2; with approximate='tanh':
    y = x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2."""
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return (x * 0.5 * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)


def gelu_dx(dy, x, approximate="none"):
    """dx = dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi); with approximate='tanh'
    and u = sqrt(2/pi) (x + 0.044715 x^3): dx = dy ((1 + tanh u) / 2
    + x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2)."""
    if approximate == "tanh":
        c = math.sqrt(2 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x**3))
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))
    cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
    return (dy * (cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))).astype(dy.dtype)


def hardsigmoid(x):
    """y = min(max(x + 3, 0), 6) / 6."""
    return np.clip(x + 3, 0, 6) / 6


def hardsigmoid_dx(dy, x):
    """dx = dy / 6 where -3 < x < 3, else 0."""
    return dy * ((x > -3) & (x < 3)) / 6


def hardswish(x):
    """y = x * min(max(x + 3, 0), 6) / 6."""
    return x * np.clip(x + 3, 0, 6) / 6


def hardswish_dx(dy, x):
    """dx = 0 for x <= -3, dy (x/3 + 1/2) for -3 < x < 3, dy for x >= 3 (PyTorch's rule)."""
    return dy * np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1))


def softmax(x, axis=-1):
    """y_i = exp(x_i - max_j x_j) / sum_k exp(x_k - max_j x_j) along `axis` (the shift by the
    maximum changes nothing mathematically and keeps exp from overflowing).

    >>> softmax(np.array([1000.0, 1000.0]))
    array([0.5, 0.5])
    """
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_dx(dy, x, axis=-1):
    """dy_i/dx_j = y_i (delta_ij - y_j), so dx_j = y_j (dy_j - sum_i dy_i y_i)."""
    y = softmax(x, axis)
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def log_softmax(x, axis=-1):
    """y_i = x_i - m - log sum_k exp(x_k - m), m = max_j x_j, along `axis`."""
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def log_softmax_dx(dy, x, axis=-1):
    """dy_i/dx_j = delta_ij - softmax(x)_j, so dx_j = dy_j - softmax(x)_j sum_i dy_i."""
    return dy - softmax(x, axis) * dy.sum(axis=axis, keepdims=True)
