"""What the tests of striate.reference compare with: PyTorch in float64, central differences,
and striate.functional through Tensor.backward().

Padding is resolved here, independently of striate.arith: the tests pad with
torch.nn.functional.pad and call torch with padding 0, so no striate geometry reaches the
oracle side.
"""

from __future__ import annotations

import numpy as np
import torch

from striate import Tensor


# ===== padding, written out as TensorFlow and the lectures define it ===========================
def same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same': O = ceil(I / S), total padding max((O - 1) S + d (k - 1) + 1 - I, 0),
    half of it at the start, the odd pixel at the END."""
    out = -(-size // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve(padding, spatial, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Any padding form -> one (start, end) pair per spatial axis."""
    n = len(spatial)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        return tuple(same_pads(i, k, s, d)
                     for i, k, s, d in zip(spatial, kernel, stride, dilation, strict=True))
    if padding == "full":
        return tuple((d * (k - 1), d * (k - 1)) for k, d in zip(kernel, dilation, strict=True))
    if isinstance(padding, int):
        return ((padding, padding),) * n
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def out_sizes(spatial, kernel, stride, pads, dilation) -> tuple[int, ...]:
    return tuple((i + p0 + p1 - d * (k - 1) - 1) // s + 1 for i, k, s, (p0, p1), d in
                 zip(spatial, kernel, stride, pads, dilation, strict=True))


# ===== layouts =================================================================================
def channels_first(a) -> torch.Tensor:
    """(N, *spatial, C) ndarray or tensor -> (N, C, *spatial) tensor."""
    t = torch.as_tensor(a)
    return t.permute(0, t.ndim - 1, *range(1, t.ndim - 1))


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return t.permute(0, *range(2, t.ndim), 1)


def torch_pad(t: torch.Tensor, pads, value: float = 0.0) -> torch.Tensor:
    """Pad the spatial axes of a channels-first tensor by (start, end) pairs (first axis first);
    torch.nn.functional.pad takes them last axis first."""
    flat = [p for pair in reversed(pads) for p in pair]
    return torch.nn.functional.pad(t, flat, value=value)


# ===== running the oracles =====================================================================
def torch_run(fn, inputs, dy):
    """fn(*tensors) in float64 with autograd: (y, [gradient of each floating input or None])."""
    tensors = [torch.tensor(a, requires_grad=True) if _floating(a) else a for a in inputs]
    y = fn(*tensors)
    y.backward(torch.as_tensor(dy))
    grads = [t.grad.numpy() if isinstance(t, torch.Tensor) and t.requires_grad else None
             for t in tensors]
    return y.detach().numpy(), grads


def fast_run(fn, inputs, dy):
    """fn(*Tensors) through striate.functional and Tensor.backward(dy): (y, gradients)."""
    tensors = [Tensor(a, requires_grad=True) if _floating(a) else a for a in inputs]
    y = fn(*tensors)
    y.backward(dy)
    return y.data, [t.grad if isinstance(t, Tensor) else None for t in tensors]


def _floating(a) -> bool:
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)


def assert_close(ours, theirs, what: str, rtol: float = 1e-9, atol: float = 1e-10):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape mismatch: ours={ours.shape} " \
                                       f"oracle={theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def numeric_check(f, inputs, analytic, dy, rng, which=None, eps=1e-6, directions=2,
                  rtol=1e-6, atol=1e-8):
    """Central differences along random directions v, for each input i in `which` (default:
    every input with an analytic gradient):

        <dy, (f(.., x_i + eps v, ..) - f(.., x_i - eps v, ..)) / (2 eps)>  ==  <analytic[i], v>
    """
    which = [i for i, g in enumerate(analytic) if g is not None] if which is None else which
    assert which, "no gradient to check"
    for i in which:
        for _ in range(directions):
            v = rng.standard_normal(np.shape(inputs[i]))
            plus, minus = list(inputs), list(inputs)
            plus[i], minus[i] = inputs[i] + eps * v, inputs[i] - eps * v
            numeric = np.sum(dy * (f(*plus) - f(*minus))) / (2 * eps)
            exact = np.sum(analytic[i] * v)
            assert np.isclose(numeric, exact, rtol=rtol, atol=atol), (
                f"input {i}: numeric {numeric!r} != analytic {exact!r}")
