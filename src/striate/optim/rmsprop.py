"""RMSprop (Hinton, Neural Networks for Machine Learning, lecture 6e), centered as in Graves 2013
(https://arxiv.org/abs/1308.0850)."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, ParamsT, _lerp


class RMSprop(Optimizer):
    """RMSprop, PyTorch's rule exactly.

    For each parameter p with gradient grad (v, mean, b start at 0):

        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g^2
        mean = alpha * mean + (1 - alpha) * g                        (centered only)
        denom = sqrt(v - mean^2) + eps  if centered  else  sqrt(v) + eps
        b = momentum * b + g / denom;  p = p - lr * b                (momentum > 0)
        p = p - lr * g / denom                                       (momentum = 0)

    State per parameter: "step", "square_avg" (v), "grad_avg" (mean, centered only),
    "momentum_buffer" (b, momentum > 0 only).

    >>> from striate import Tensor
    >>> w = Tensor(np.zeros(2, np.float32))
    >>> w.grad = np.array([1.0, -1.0], np.float32)
    >>> RMSprop([w], lr=0.01, alpha=0.75).step()  # v = 0.25 g^2: the step is lr / 0.5
    >>> w.data
    array([-0.02,  0.02], dtype=float32)
    """

    _nonnegative = ("lr", "alpha", "eps", "weight_decay", "momentum")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
        }
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        work, work2 = self._scratch(p, 0), self._scratch(p, 1)

        g = grad
        if weight_decay != 0:
            g = np.multiply(p, weight_decay, out=work)
            g += grad
        v = state["square_avg"]
        v *= alpha
        square = np.multiply(g, 1.0 - alpha, out=work2)  # PyTorch's addcmul order: (c * g) * g
        square *= g
        v += square
        if group["centered"]:
            mean = state["grad_avg"]
            _lerp(mean, g, 1.0 - alpha, work2)
            denom = np.multiply(mean, mean, out=work2)
            np.subtract(v, denom, out=denom)
            np.sqrt(denom, out=denom)
        else:
            denom = np.sqrt(v, out=work2)
        denom += eps

        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += np.divide(g, denom, out=denom)
            update = np.multiply(buf, -lr, out=work)
        else:
            # PyTorch's addcdiv order: p + (-lr * g) / denom.
            update = np.multiply(g, -lr, out=work)
            update /= denom
        p += update
