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
import torch.nn.functional as tF

import striate.functional as F
from striate import Tensor, models, no_grad

Pair = tuple[Callable[[], object], Callable[[], object]]


@dataclass(frozen=True)
class Workload:
    name: str
    build: Callable[[np.random.Generator], Pair]  # rng -> (striate_fn, torch_fn)
    flops: float  # floating-point operations of one call (2 per multiply-add); 0: not counted


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
def _conv2d_data(rng, n, size, c_in, c_out, k, groups):
    """Channels-last x, HWIO w, and the same numbers as torch NCHW / OIHW tensors."""
    x = rng.standard_normal((n, size, size, c_in), dtype=np.float32)
    w = rng.standard_normal((k, k, c_in // groups, c_out), dtype=np.float32)
    w *= np.float32(1 / np.sqrt(k * k * c_in // groups))  # He-like scale keeps outputs O(1)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()
    return x, w, xt, wt


def _conv2d_forward(n, size, c_in, c_out, k, groups):
    def build(rng):
        x, w, xt, wt = _conv2d_data(rng, n, size, c_in, c_out, k, groups)

        def ours():
            with no_grad():
                return F.conv2d(x, w, padding="same", groups=groups)

        def theirs():
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, padding=k // 2, groups=groups)

        return ours, theirs

    return build


def _conv2d_train(n, size, c_in, c_out, k, groups):
    def build(rng):
        x, w, xt, wt = _conv2d_data(rng, n, size, c_in, c_out, k, groups)
        dy = rng.standard_normal((n, size, size, c_out), dtype=np.float32)
        dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous()
        xt.requires_grad_(True)
        wt.requires_grad_(True)

        def ours():
            xs, ws = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
            F.conv2d(xs, ws, padding="same", groups=groups).backward(dy)
            return xs.grad, ws.grad

        def theirs():
            xt.grad = wt.grad = None
            torch.nn.functional.conv2d(xt, wt, padding=k // 2, groups=groups).backward(dyt)
            return xt.grad, wt.grad

        return ours, theirs

    return build


def _register_conv2d(n, size, c_in, c_out, k, groups=1, forward=True, label=""):
    macs = n * size * size * c_in // groups * c_out * k * k
    shape = f"conv2d{label} {k}x{k} {c_in}->{c_out} {size}x{size} b{n}"
    if forward:
        workload(f"{shape} forward", 2 * macs)(_conv2d_forward(n, size, c_in, c_out, k, groups))
    # backward: one product for dx and one for dw, each as large as the forward
    workload(f"{shape} forward+backward", 6 * macs)(
        _conv2d_train(n, size, c_in, c_out, k, groups))


_register_conv2d(32, 56, 64, 64, 3)
# MobileNetV2-sized layers: a 1x1 projection and a depthwise 3x3
_register_conv2d(16, 56, 96, 24, 1, forward=False)
_register_conv2d(16, 56, 144, 144, 3, groups=144, forward=False, label=" depthwise")


# ===== pooling =================================================================================
def _max_pool(n, size, channels, k, stride, padding):
    """Max pooling forward and backward on a (n, size, size, channels) map."""

    def build(rng):
        x = rng.standard_normal((n, size, size, channels), dtype=np.float32)
        out = (size + 2 * padding - k) // stride + 1
        dy = rng.standard_normal((n, out, out, channels), dtype=np.float32)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous()

        def ours():
            xs = Tensor(x, requires_grad=True)
            F.max_pool2d(xs, k, stride=stride, padding=padding).backward(dy)
            return xs.grad

        def theirs():
            xt.grad = None
            torch.nn.functional.max_pool2d(xt, k, stride=stride, padding=padding).backward(dyt)
            return xt.grad

        return ours, theirs

    return build


workload("max_pool2d 3x3/2 112x112x64 b16 forward+backward", flops=0)(
    _max_pool(16, 112, 64, 3, 2, 1))
# LeNet-5's first pooling: a 6-channel map
workload("max_pool2d 2x2 28x28x6 b128 forward+backward", flops=0)(_max_pool(128, 28, 6, 2, 2, 0))


# ===== normalisation ===========================================================================
@workload("batch_norm train 16x16x64 b64 forward+backward", flops=0)
def _batch_norm(rng):
    """A ResNet-sized batch norm in training, forward and backward, with its ReLU."""
    from striate import fused

    x = rng.standard_normal((64, 16, 16, 64), dtype=np.float32)
    dy = rng.standard_normal(x.shape, dtype=np.float32)
    g, b = np.ones(64, np.float32), np.zeros(64, np.float32)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
    gt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (g, b))
    dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous()

    def ours():
        xs, gs, bs = (Tensor(a, requires_grad=True) for a in (x, g, b))
        fused.batch_norm_relu(xs, gs, bs).backward(dy)
        return xs.grad

    def theirs():
        xt.grad = gt.grad = bt.grad = None
        y = torch.relu(torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True))
        y.backward(dyt)
        return xt.grad

    return ours, theirs


# ===== models ==================================================================================
def training_steps(name: str, n: int, shape: tuple[int, ...], classes: int,
                   rng: np.random.Generator) -> Pair:
    """One SGD step (forward, cross-entropy, backward, update) of model `name` on a fixed
    batch, in striate and in torch."""
    from striate.optim import SGD

    from . import torch_models

    model = models.create(name, num_classes=classes).train()
    optimizer = SGD(list(model.parameters()), lr=0.01, momentum=0.9)
    x = rng.standard_normal((n, *shape), dtype=np.float32)
    labels = rng.integers(0, classes, n)
    torch_model = getattr(torch_models, name)(classes).train()
    torch_optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.01, momentum=0.9)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    labels_t = torch.from_numpy(labels)

    def ours():
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def theirs():
        loss = tF.cross_entropy(torch_model(xt), labels_t)
        torch_optimizer.zero_grad()
        loss.backward()
        torch_optimizer.step()
        return loss.item()

    return ours, theirs


def _inference(name: str, n: int, shape: tuple[int, ...]):
    def build(rng):
        from . import torch_models

        model = models.create(name).eval()
        torch_model = getattr(torch_models, name)().eval()
        x = rng.standard_normal((n, *shape), dtype=np.float32)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()

        def ours():
            with no_grad():
                return model(x)

        def theirs():
            with torch.no_grad():
                return torch_model(xt)

        return ours, theirs

    return build


workload("lenet5_modern training step 28x28x1 b128", flops=0)(
    lambda rng: training_steps("lenet5_modern", 128, (28, 28, 1), 10, rng))
workload("resnet18 training step 32x32x3 b64", flops=0)(
    lambda rng: training_steps("resnet18", 64, (32, 32, 3), 10, rng))
workload("resnet50 inference 224x224x3 b1", flops=0)(_inference("resnet50", 1, (224, 224, 3)))
workload("resnet50 inference 224x224x3 b16", flops=0)(_inference("resnet50", 16, (224, 224, 3)))
