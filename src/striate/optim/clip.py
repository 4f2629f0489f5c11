"""Gradient clipping, in place on the parameters' `.grad` (call between backward and step)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor


def _grads(params: Tensor | Iterable[Tensor], owner: str) -> list[np.ndarray]:
    """The gradients of `params` (a Tensor or an iterable of them) that are not None."""
    params = [params] if isinstance(params, Tensor) else list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(
                f"{owner}: params must be striate Tensors, got {type(p).__name__} at position {i}"
            )
    return [p.grad for p in params if p.grad is not None]


def _check_nonnegative(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    if not value >= 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value!r}")


def clip_grad_norm(
    params: Tensor | Iterable[Tensor], max_norm: float, norm_type: float | str = 2.0
) -> float:
    """Scale all gradients together so that their joint p-norm is at most max_norm.

    total = || (||g_1||_p, ..., ||g_k||_p) ||_p     (the norm of all gradients as one vector)
    g_i <- g_i * min(1, max_norm / (total + 1e-6))

    As `torch.nn.utils.clip_grad_norm_`: norms are computed in the gradients' dtype, parameters
    without a gradient are ignored, p = inf (or "inf") takes the largest |g|, and a non-finite
    total is not an error (a NaN total makes every gradient NaN).
    params: a Tensor or an iterable of Tensors. Returns the total norm before clipping (0.0 when no
    parameter has a gradient).

    >>> w = Tensor(np.zeros(2, np.float32)); w.grad = np.array([3.0, 4.0], np.float32)
    >>> clip_grad_norm([w], max_norm=1.0), w.grad.round(4)
    (5.0, array([0.6, 0.8], dtype=float32))
    """
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        p = math.nan
    if not p > 0:
        raise ValueError(f"clip_grad_norm: norm_type must be > 0 or 'inf', got {norm_type!r}")
    _check_nonnegative("clip_grad_norm", "max_norm", max_norm)
    grads = _grads(params, "clip_grad_norm")
    if not grads:
        return 0.0
    dtype = np.result_type(*grads)
    # ord=2 on a flat vector is sqrt(dot(g, g)): no temporary the size of g.
    norms = np.array([np.linalg.norm(g.ravel(), ord=p) if g.size else 0 for g in grads], dtype)
    total = np.linalg.norm(norms, ord=p)
    # PyTorch evaluates max_norm / tensor as reciprocal(tensor) * max_norm: same rounding here.
    coef = np.reciprocal(total + dtype.type(1e-6)) * dtype.type(max_norm)
    if not coef >= 1:  # a NaN coefficient scales too, as in PyTorch
        # An infinite total gives coef 0 and inf * 0 = NaN, as in PyTorch, which does not warn.
        with np.errstate(invalid="ignore"):
            for g in grads:
                g *= coef
    return float(total)


def clip_grad_value(params: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place.

    g <- min(max(g, -clip_value), clip_value)      (torch.nn.utils.clip_grad_value_)

    params: a Tensor or an iterable of Tensors; those without a gradient are ignored.

    >>> w = Tensor(np.zeros(3, np.float32)); w.grad = np.array([-5.0, 0.5, 2.0], np.float32)
    >>> clip_grad_value([w], 1.0); w.grad
    array([-1. ,  0.5,  1. ], dtype=float32)
    """
    _check_nonnegative("clip_grad_value", "clip_value", clip_value)
    for g in _grads(params, "clip_grad_value"):
        np.clip(g, -clip_value, clip_value, out=g)
