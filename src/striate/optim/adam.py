"""Adam and AdamW (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980; Loshchilov & Hutter 2019,
https://arxiv.org/abs/1711.05101)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .optimizer import Optimizer, ParamsT, _lerp


class Adam(Optimizer):
    """Adam, PyTorch's rule exactly (weight decay added to the gradient, as L2 regularisation).

    For each parameter p with gradient grad, at step t = 1, 2, ... (m, v, v_max start at 0):

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v);  v = v_max          (amsgrad only)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    State per parameter: "step" (t), "exp_avg" (m), "exp_avg_sq" (v), "max_exp_avg_sq" (v_max,
    amsgrad only).

    >>> from striate import Tensor
    >>> w = Tensor(np.zeros(3, np.float32))
    >>> w.grad = np.array([1.0, -2.0, 0.5], np.float32)
    >>> Adam([w], lr=0.1).step()
    >>> w.data.round(4)  # the first step moves each weight by lr against its gradient's sign
    array([-0.1,  0.1, -0.1], dtype=float32)
    """

    _nonnegative = ("lr", "eps", "weight_decay")
    _decoupled = False  # AdamW: decay the weights directly instead of adding to the gradient

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self._name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
                raise TypeError(f"{self._name}: betas[{i}] must be a number, got {beta!r}")
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{self._name}: betas[{i}] must be in [0, 1), got {beta!r}")

    def _update(self, p, grad, state, group):
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        beta1, beta2 = (float(beta) for beta in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        work, work2 = self._scratch(p, 0), self._scratch(p, 1)

        g = grad
        if weight_decay != 0:
            if self._decoupled:
                p *= 1.0 - lr * weight_decay
            else:
                g = np.multiply(p, weight_decay, out=work)
                g += grad
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp(m, g, 1.0 - beta1, work2)
        v *= beta2
        square = np.multiply(g, 1.0 - beta2, out=work2)  # PyTorch's addcmul order: (c * g) * g
        square *= g
        v += square
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])

        step_size = lr / (1.0 - beta1**t)
        denom = np.sqrt(v, out=work2)
        denom /= (1.0 - beta2**t) ** 0.5
        denom += eps
        # PyTorch's addcdiv order: p + (-step_size * m) / denom. `g` is not needed any more.
        update = np.multiply(m, -step_size, out=work)
        update /= denom
        p += update


class AdamW(Adam):
    """Adam with decoupled weight decay (AdamW), PyTorch's rule exactly.

    As `Adam`, except that the weights decay directly, before the moments are updated:

        p = p * (1 - lr * weight_decay);  g = grad
        m, v, p: as in Adam

    >>> from striate import Tensor
    >>> w = Tensor(np.ones(2, np.float32))
    >>> w.grad = np.zeros(2, np.float32)
    >>> AdamW([w], lr=0.1, weight_decay=0.5).step()  # m = 0: only the decay moves the weights
    >>> w.data
    array([0.95, 0.95], dtype=float32)
    """

    _decoupled = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
