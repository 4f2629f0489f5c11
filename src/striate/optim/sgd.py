"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._parallel import over_batch
from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule exactly.

    For each parameter p with gradient grad, at step t:

        g = grad + weight_decay * p
        b = g                                      (t = 1)
        b = momentum * b + (1 - dampening) * g     (t > 1)
        g = g + momentum * b  if nesterov  else  b     (only when momentum != 0)
        p = p - lr * g

    AlexNet's recipe: `SGD(params, lr=1e-2, momentum=0.9, weight_decay=5e-4)`, dividing lr by 10
    when the validation accuracy stops improving (`ReduceLROnPlateau`).
    State per parameter: "momentum_buffer" (b), once momentum != 0.

    >>> from striate import Tensor
    >>> w = Tensor(np.ones((2, 3), np.float32))
    >>> w.grad = np.ones((2, 3), np.float32)
    >>> SGD([w], lr=0.5).step()
    >>> w.data
    array([[0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5]], dtype=float32)
    """

    _nonnegative = ("lr", "momentum", "dampening", "weight_decay")

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update(self, p, grad, state, group):
        first = group["momentum"] != 0 and "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = np.empty_like(p)  # b = g: `_update_part` fills it in
        needs_spare = group["nesterov"] or group["dampening"] != 0
        arrays = (p, grad, state.get("momentum_buffer"), self._scratch(p, 0),
                  self._scratch(p, 1) if needs_spare else None)
        if not all(a is None or a.flags.c_contiguous for a in arrays):
            self._update_part(*arrays, first, group)
            return
        # The update is memory-bound elementwise work: a large parameter's flat halves go to
        # both cores. Each part touches only its own elements of every array.
        flat = [None if a is None else a.reshape(-1) for a in arrays]

        def part(rows: slice) -> None:
            self._update_part(*(None if a is None else a[rows] for a in flat), first, group)

        over_batch(part, p.size, work=p.size * len(arrays))

    @staticmethod
    def _update_part(p, grad, buf, work, spare, first: bool, group) -> None:
        """The rule on matching parts of p, its gradient, momentum buffer and two scratch
        arrays (`spare` is None unless dampening or Nesterov momentum needs it)."""
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay, dampening = float(group["weight_decay"]), float(group["dampening"])
        # `g` is either the caller's grad (read only) or `work`, a scratch array we may overwrite.
        g = grad
        if weight_decay != 0:
            g = np.multiply(p, weight_decay, out=work)
            g += grad
        if momentum != 0:
            if first:
                buf[...] = g
            else:
                buf *= momentum
                if dampening == 0:
                    buf += g
                else:
                    buf += np.multiply(g, 1.0 - dampening, out=spare)
            if group["nesterov"]:
                if g is work:
                    g += np.multiply(buf, momentum, out=spare)
                else:
                    g = np.multiply(buf, momentum, out=work)
                    g += grad
            else:
                g = buf
        if g is work:
            g *= lr
        else:
            g = np.multiply(g, lr, out=work)
        p -= g
