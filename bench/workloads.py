"""The registry of benchmark workloads.

A workload builds, from a seeded generator, two callables that do the same work on the same data:
one with striate (channels-last), one with PyTorch (its default NCHW memory format, its default
thread count). Add one with the `workload` decorator:

    @workload("conv2d 3x3 64->64 56x56 b32 forward", flops=...)
    def _(rng):
        ...
        return striate_fn, torch_fn
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import striate.functional as F
from striate import Tensor, no_grad

Pair = tuple[Callable[[], object], Callable[[], object]]


@dataclass(frozen=True)
class Workload:
    name: str
    build: Callable[[np.random.Generator], Pair]  # rng -> (striate_fn, torch_fn)
    flops: float  # floating-point operations of one call (2 per multiply-add)


WORKLOADS: dict[str, Workload] = {}


def workload(name: str, flops: float):
    """Register the decorated builder under `name`."""

    def register(build: Callable[[np.random.Generator], Pair]):
        if name in WORKLOADS:
            raise ValueError(f"bench: workload {name!r} is registered twice")
        WORKLOADS[name] = Workload(name, build, float(flops))
        return build

    return register


# ===== convolution =============================================================================
def _conv2d_data(rng, n, size, c_in, c_out, k):
    """Channels-last x, HWIO w, and the same numbers as torch NCHW / OIHW tensors."""
    x = rng.standard_normal((n, size, size, c_in), dtype=np.float32)
    w = rng.standard_normal((k, k, c_in, c_out), dtype=np.float32)
    w *= np.float32(1 / np.sqrt(k * k * c_in))  # He-like scale keeps activations O(1)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()
    return x, w, xt, wt


def _conv2d_forward(n, size, c_in, c_out, k):
    def build(rng):
        x, w, xt, wt = _conv2d_data(rng, n, size, c_in, c_out, k)

        def ours():
            with no_grad():
                return F.conv2d(x, w, padding="same")

        def theirs():
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, padding=k // 2)

        return ours, theirs

    return build


def _conv2d_train(n, size, c_in, c_out, k):
    def build(rng):
        x, w, xt, wt = _conv2d_data(rng, n, size, c_in, c_out, k)
        dy = rng.standard_normal((n, size, size, c_out), dtype=np.float32)
        dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous()
        xt.requires_grad_(True)
        wt.requires_grad_(True)

        def ours():
            xs, ws = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
            F.conv2d(xs, ws, padding="same").backward(dy)
            return xs.grad, ws.grad

        def theirs():
            xt.grad = wt.grad = None
            torch.nn.functional.conv2d(xt, wt, padding=k // 2).backward(dyt)
            return xt.grad, wt.grad

        return ours, theirs

    return build


def _register_conv2d(n, size, c_in, c_out, k):
    macs = n * size * size * c_in * c_out * k * k
    shape = f"conv2d {k}x{k} {c_in}->{c_out} {size}x{size} b{n}"
    workload(f"{shape} forward", 2 * macs)(_conv2d_forward(n, size, c_in, c_out, k))
    # backward: one product for dx and one for dw, each as large as the forward
    workload(f"{shape} forward+backward", 6 * macs)(_conv2d_train(n, size, c_in, c_out, k))


_register_conv2d(32, 56, 64, 64, 3)
